--- The merchant's web endpoints for examples/merchant_day.lua: what a shop
-- exposes to its payment providers, as it would run in OpenResty. The
-- sandbox serves it at /shop/, next to the fake providers (inside nginx,
-- LuaJIT, cosockets). Each endpoint verifies what arrives with luapay,
-- answers the provider the way it expects, and keeps the verified event
-- in the shared dict, the stand-in for the shop's database:
--
--   POST /shop/ecommpay/<payment_id>  an ecommpay callback: gate:notification, then
--                                     gate:notification_response (200 "OK" or 400)
--   POST /shop/trustly/<token>        a Trustly notification: client:notification,
--                                     processed once per notificationid, answered
--                                     with client:notification_response (signed "OK");
--                                     400 and nothing signed when it does not verify
--   POST /shop/trustly/refund/<orderid>?amount=<minor units>&currency=SEK
--                                     the back office refunds through the shop's
--                                     client (its store then knows the refund)
--   GET  /shop/trustpay?<query>       a TrustPay notification: client:notification,
--                                     answered with client:notification_response
--                                     (200 "OK"; 500, to be called again, when it
--                                     does not verify)
--   GET  /shop/inbox/<provider>/<ref> what the shop has recorded for an order, in
--                                     arrival order (JSON array; ecommpay: the raw
--                                     bodies, for the merchant's script to read)
--
-- config.shop: ecommpay = {project_id, secret}, trustly = {username, password,
-- private_key, trustly_public_key} (PEM texts), trustpay = {account_id, secret}.
local cjson = require "cjson.safe"
local ecommpay = require "luapay.ecommpay"
local trustly = require "luapay.trustly"
local trustpay = require "luapay.trustpay"

local shop = {}

local clients = {} -- one client per provider and nginx worker

local function client(config, name)
    if not clients[name] then
        local c = config.shop[name]
        if name == "ecommpay" then
            clients[name] = ecommpay.new{ project_id = c.project_id, secret = c.secret }
        elseif name == "trustly" then
            -- The store is shared by every worker: it tells the credit of a
            -- failed refund (made below) from money received.
            clients[name] = trustly.new{ username = c.username, password = c.password, private_key = c.private_key,
                                         trustly_public_key = c.trustly_public_key, environment = "test",
                                         store = ngx.shared.luapay_sandbox,
                                         -- against Trustly: leave out (the environment's URL)
                                         base_url = ("http://127.0.0.1:%d/trustly/api/1"):format(config.ports.http) }
        else
            clients[name] = trustpay.new{ account_id = c.account_id, secret = c.secret }
        end
    end
    return clients[name]
end

local function db() return ngx.shared.luapay_sandbox end

-- Appends to an order's record (a worker runs one handler at a time between
-- I/O calls, so get and set are not interleaved).
local function record(provider, ref, entry)
    local key = "shop:" .. provider .. ":" .. tostring(ref)
    local list = cjson.decode(db():get(key) or "[]") or {}
    list[#list + 1] = entry
    db():set(key, cjson.encode(list))
end

local function answer(status, body, ctype)
    ngx.status = status
    ngx.header["Content-Type"] = ctype or "text/plain"
    ngx.print(body)
    return ngx.exit(status)
end

local function raw_body()
    ngx.req.read_body()
    return ngx.req.get_body_data() or ""
end

-- ecommpay: the raw body is what was signed; verify before anything else.
local function ecommpay_callback(config, payment_id)
    local gate = client(config, "ecommpay")
    local raw = raw_body()
    local event, err = gate:notification(raw, ngx.req.get_headers())
    -- Recorded first, then acknowledged (200 "OK"); a forgery gets a 400.
    local reply = gate:notification_response(event, event ~= nil)
    if event then
        record("ecommpay", event.merchant_ref, { body = raw, answered = reply.status })
    else
        ngx.log(ngx.WARN, "shop: ecommpay callback for ", payment_id, " refused: ", tostring(err))
        record("ecommpay", "rejected", { body = raw, answered = reply.status })
    end
    return answer(reply.status, reply.body, reply.headers["Content-Type"])
end

-- Trustly: Pending, Account and Credit come in any order and one may come
-- twice; each notificationid is processed once, a repeat gets the same answer.
local function trustly_notification(config)
    local c = client(config, "trustly")
    local note, err = c:notification(raw_body(), ngx.req.get_headers())
    if not note then
        ngx.log(ngx.WARN, "shop: Trustly notification refused: ", tostring(err))
        local refused = c:notification_response(nil, false) -- 400, nothing signed
        return answer(refused.status, refused.body, refused.headers["Content-Type"])
    end
    local x = note.extra -- Trustly's own fields
    local first = db():add("shop:trustly:seen:" .. x.notificationid, true)
    if first then
        record("trustly", x.orderid, {
            method = x.method, kind = note.kind, status = note.status, amount = note.amount,
            currency = note.currency, notificationid = x.notificationid,
            accountid = note.kind == "account" and x.data.accountid or nil,
        })
    end
    local reply = c:notification_response(note, true) -- recorded: 200 and the signed "OK"
    return answer(reply.status, reply.body, reply.headers["Content-Type"])
end

-- Trustly: the back office refunds through the shop's client, so that the
-- shop's store knows the refund when its notifications come.
local function trustly_refund(config, orderid)
    local args = ngx.req.get_uri_args()
    local refund, err = client(config, "trustly"):refund{
        OrderID = orderid, Amount = tonumber(args.amount), Currency = args.currency,
    }
    if not refund then return answer(502, cjson.encode{ error = tostring(err) }, "application/json") end
    return answer(200, cjson.encode(refund), "application/json")
end

-- TrustPay: the notification is the query string of a GET; the answer
-- says whether to call again.
local function trustpay_notification(config)
    local c = client(config, "trustpay")
    local event, err = c:notification(ngx.var.args or "")
    if event then
        record("trustpay", event.merchant_ref, {
            kind = event.kind, status = event.status, amount = event.amount, currency = event.currency,
            result_code = event.extra.result_code, payment_request_id = event.provider_ref,
            card_mask = event.extra.card and event.extra.card.CardMask or nil,
        })
    else
        ngx.log(ngx.WARN, "shop: TrustPay notification refused: ", tostring(err))
    end
    local reply = c:notification_response(event, event ~= nil)
    return answer(reply.status, reply.body, reply.headers["Content-Type"])
end

function shop.handle(path, config)
    local payment_id = path:match("^ecommpay/(.+)$")
    if payment_id and ngx.req.get_method() == "POST" then return ecommpay_callback(config, payment_id) end
    if path:match("^trustly/[%w_%-]+$") and ngx.req.get_method() == "POST" then return trustly_notification(config) end
    local refund_of = path:match("^trustly/refund/(%d+)$")
    if refund_of and ngx.req.get_method() == "POST" then return trustly_refund(config, refund_of) end
    if path == "trustpay" then return trustpay_notification(config) end
    local provider, ref = path:match("^inbox/(%w+)/(.+)$")
    if provider then
        return answer(200, db():get("shop:" .. provider .. ":" .. ngx.unescape_uri(ref)) or "[]", "application/json")
    end
    return answer(404, "no such shop endpoint: /shop/" .. path)
end

return shop
