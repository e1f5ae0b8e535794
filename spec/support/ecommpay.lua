--- Helpers for the ecommpay specs: the sandbox with the fake ecommpay and a
-- merchant endpoint, a Gate client for it, callbacks read back, and the
-- customer's and the bank's part.
local cjson = require "cjson"
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local sandbox = require "luapay.sandbox"

local H = {}

H.PROJECT_ID = 1625
H.SECRET = "spec-ecommpay-secret-7f3a"

function H.start(extra)
    local config = { ecommpay = { project_id = H.PROJECT_ID, secret = H.SECRET } }
    for k, v in pairs(extra or {}) do config.ecommpay[k] = v end
    local sb = assert(sandbox.start {
        routes = { ["/ecommpay/"] = "luapay.sandbox.ecommpay", ["/merchant/"] = "support.ecommpay_merchant" },
        config = config, lua_path = "spec/?.lua",
    })
    return sb
end

function H.gate(sb, opts)
    local o = { project_id = H.PROJECT_ID, secret = H.SECRET, base_url = sb.url .. "/ecommpay" }
    for k, v in pairs(opts or {}) do o[k] = v end
    return ecommpay.new(o)
end

local seq = 0
--- A fresh name for a payment and its callback channel.
function H.unique(prefix)
    seq = seq + 1
    return ("%s-%s-%d"):format(prefix, core.hex_encode(core.random_bytes(4)), seq)
end

function H.callback_url(sb, name)
    return sb.url .. "/merchant/callback/" .. name
end

local function get(url)
    local c = core.http_client {}
    local res = assert(c:request { url = url })
    c:close()
    return res
end

--- Waits until the merchant has received n callbacks on a channel; returns
-- them ({body, answered}), or fails after a few seconds.
function H.callbacks(sb, name, n)
    local deadline = core.monotime() + 10
    local list
    repeat
        list = cjson.decode(get(sb.url .. "/merchant/callbacks/" .. name).body)
        if #list >= n then return list end
        core.sleep(0.02)
    until core.monotime() > deadline
    error(("expected %d callbacks on %s, got %d"):format(n, name, #list), 2)
end

--- The customer's choice at Trustly: POSTs the redirect form of an event.
function H.customer(event, decision)
    local form = { decision = decision }
    for k, v in pairs(event.extra.redirect.body) do form[k] = v end
    local c = core.http_client {}
    local res = assert(c:request { method = event.extra.redirect.method, url = event.extra.redirect.url,
        body = require("luapay.http").encode_query(form),
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    c:close()
    return res
end

function H.post(sb, path)
    local c = core.http_client {}
    local res = assert(c:request { method = "POST", url = sb.url .. path, body = "" })
    c:close()
    return res
end

function H.requests(sb)
    return cjson.decode(get(sb.url .. "/ecommpay/sandbox/requests").body).requests
end

function H.state(sb, payment_id)
    return cjson.decode(get(("%s/ecommpay/sandbox/payment/%d/%s"):format(sb.url, H.PROJECT_ID, payment_id)).body)
end

--- A complete Trustly purchase request.
function H.sale_request(payment_id, callback_url, amount, currency)
    return {
        general = { payment_id = payment_id, merchant_callback_url = callback_url },
        payment = { amount = amount or 2000, currency = currency or "EUR", description = "Order " .. payment_id },
        customer = {
            id = "customer-1", ip_address = "198.51.100.7", first_name = "Åsa", last_name = "Lindqvist",
            email = "asa@example.se", country = "SE", language = "sv",
        },
        return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" },
    }
end

return H
