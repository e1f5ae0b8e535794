-- A Trustly purchase through ecommpay's Gate, from the merchant's side,
-- against the sandbox (a fake ecommpay on loopback): the purchase request,
-- the callback that sends the customer to their bank, the final callback,
-- a status check, a partial refund, a forged callback, and a Payment Page
-- link. Run from the repository root:
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/ecommpay_trustly.lua
local cjson = require "cjson"
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local money = require "luapay.money"
local sandbox = require "luapay.sandbox"
local fake = require "luapay.sandbox.ecommpay" -- only for its test credentials

local function say(fmt, ...) print((fmt):format(...)) end

-- 0. The sandbox: ecommpay's Gate, plus an inbox standing in for the
--    merchant's callback endpoint (in production: your web server).
local sb = assert(sandbox.start { routes = { ["/ecommpay/"] = "luapay.sandbox.ecommpay" } })
local inbox = sb.url .. "/ecommpay/sandbox/inbox/shop"
local http_client = core.http_client {}

-- Waits for the n-th callback the merchant received and returns its raw body.
local function nth_callback(n)
    for _ = 1, 500 do
        local list = cjson.decode(assert(http_client:request { url = inbox }).body)
        if #list >= n then return list[n] end
        core.sleep(0.01)
    end
    error("no callback arrived")
end

-- 1. The client: your project ID and secret key from ecommpay.
local gate = ecommpay.new {
    project_id = fake.PROJECT_ID,
    secret = fake.SECRET,
    base_url = sb.url .. "/ecommpay", -- default: https://api.ecommpay.com
    callback_url = inbox,             -- general.merchant_callback_url of every request
}

-- 2. A purchase: POST /v2/payment/online-banking/trustly/sale. Amounts are
--    integers in minor units: 25.00 EUR is 2500.
local payment_id = "order-" .. core.hex_encode(core.random_bytes(4))
local res, err = gate:sale("trustly", {
    general = { payment_id = payment_id },
    payment = { amount = 2500, currency = "EUR", description = "Order 42: two mugs" },
    customer = {
        id = "customer-42", ip_address = "198.51.100.7",
        first_name = "Åsa", last_name = "Lindqvist", email = "asa@example.se", country = "SE", language = "sv",
    },
    return_url = { success = "https://shop.example/thanks", decline = "https://shop.example/try-again" },
})
assert(res, tostring(err))
say("1. sale accepted:          status=%s request_id=%s", res.status, res.request_id)

-- A request that breaks the Trustly rules is refused before it is sent.
local _, verr = gate:sale("trustly", { general = { payment_id = "x" }, payment = { amount = 50, currency = "USD" } })
say("   an invalid one:         %s", tostring(verr))

-- 3. The first callback: verify it (the raw body, as it arrived), then send
--    the customer to Trustly as redirect_data says.
local event = assert(gate:notification(nth_callback(1)))
local redirect = event.extra.redirect -- ecommpay's own fields are under extra
say("2. callback:               kind=%s (%s) status=%s -> redirect the customer: %s %s",
    event.kind, event.extra.operation_type, event.status, redirect.method, redirect.url)

-- (The customer approves at their bank; the sandbox simulates it.)
local form = { decision = "approve" }
for k, v in pairs(redirect.body) do form[k] = v end
local page = assert(http_client:request { method = "POST", url = redirect.url,
    body = require("luapay.http").encode_query(form),
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
say("   the customer returns to %s", page.headers.location)

-- 4. The final callback. Record it, then answer ecommpay with
--    gate:notification_response (received: 200 "OK", ecommpay stops sending it).
local final = assert(gate:notification(nth_callback(2)))
local answer = gate:notification_response(final, true)
say("3. final callback:         %s %s, %s, operation %s -> answer %d %s",
    final.kind, final.status, money.format(final.amount, final.currency), final.provider_ref, answer.status, answer.body)

-- 5. The payment's state, whenever you need it (POST /v2/payment/status).
local status = assert(gate:status(payment_id))
say("4. status:                 %s (%s)", status.status, status.extra.payment_status)

-- 6. A partial refund of 10.00 EUR: amount and currency; a full one sends neither.
assert(gate:refund("trustly", {
    general = { payment_id = payment_id },
    payment = { amount = 1000, currency = "EUR", description = "One mug broke", merchant_refund_id = payment_id .. "-r1" },
    customer = { ip_address = "198.51.100.7" },
}))
local refund = assert(gate:notification(nth_callback(3)))
say("5. refund callback:        %s %s, %s refunded, %s left", refund.kind, refund.status,
    money.format(refund.amount, refund.currency), money.format(refund.extra.payment_amount, refund.currency))

-- 7. A forged callback (amount changed after signing) is refused.
local forged = nth_callback(2):gsub('"amount":2500', '"amount":250000')
local bad, ferr = gate:notification(forged)
say("6. forged callback:        %s -> answer %d", tostring(bad or ferr), gate:notification_response(bad, false).status)

-- 8. Or let ecommpay's Payment Page take the customer to Trustly directly.
local url = assert(gate:payment_page {
    payment_id = payment_id .. "-pp", payment_amount = 1500, payment_currency = "SEK", customer_id = "customer-42",
    force_payment_method = "online-banking-trustly", language_code = "sv",
})
say("7. Payment Page link:      %s...", url:sub(1, 96))

http_client:close()
assert(sb:stop())
