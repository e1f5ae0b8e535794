--- The merchant's notification endpoint for examples/trustpay_card.lua, as
-- it would run in OpenResty: a content handler that verifies TrustPay's
-- notification with luapay and records the order's new status. The sandbox
-- mounts it at /shop/ (in a real nginx.conf: `location /trustpay/notify {
-- content_by_lua_block { require("trustpay_shop").notify() } }`).
local cjson = require "cjson"
local trustpay = require "luapay.trustpay"

local shop = {}
local client -- one TrustPay client per nginx worker

local function orders() return ngx.shared.luapay_sandbox end

--- TrustPay calls the NotificationUrl with the result in the query string
-- (a GET); the answer says whether to call again.
function shop.notify(config)
    client = client or trustpay.new(config.shop)
    local event, err = client:notification(ngx.var.args or "")
    local recorded = false
    if not event then
        -- a forged or damaged notification: nothing changes
        ngx.log(ngx.WARN, "shop: notification refused: ", tostring(err))
    else
        local n = orders():incr("shop:events", 1, 0)
        recorded = orders():set("shop:event:" .. n, cjson.encode{
            kind = event.kind, status = event.status, order = event.merchant_ref, amount = event.amount,
            currency = event.currency, payment_request_id = event.provider_ref, result = event.extra.result.name,
            card_mask = event.extra.card and event.extra.card.CardMask or nil,
        })
    end
    -- 200 once recorded; otherwise an answer that makes TrustPay call again
    local answer = client:notification_response(event, recorded)
    ngx.status = answer.status
    for k, v in pairs(answer.headers) do ngx.header[k] = v end
    ngx.print(answer.body)
end

--- What the shop has learnt so far (for the example to print).
function shop.events()
    local list = {}
    for i = 1, orders():get("shop:events") or 0 do list[i] = cjson.decode(orders():get("shop:event:" .. i)) end
    ngx.header["Content-Type"] = "application/json"
    ngx.print(#list == 0 and "[]" or cjson.encode(list))
end

function shop.handle(path, config)
    if path == "trustpay/notify" then return shop.notify(config) end
    if path == "events" then return shop.events() end
    return ngx.exit(ngx.HTTP_NOT_FOUND)
end

return shop
