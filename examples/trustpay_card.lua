-- A TrustPay card payment from start to end, against the sandbox:
--   1. the shop builds the pop-up URL with the SCA fields TrustPay needs since 2020,
--   2. the customer pays (the sandbox plays the customer, with a test card),
--   3. TrustPay notifies the shop (examples/trustpay_shop.lua verifies it inside nginx),
--   4. the shop refunds part of the payment with a background call.
-- Run from the repository root:
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/trustpay_card.lua
local core = require "luapay.core"
local http = require "luapay.http"
local money = require "luapay.money"
local sandbox = require "luapay.sandbox"
local trustpay = require "luapay.trustpay"

-- The sandbox's TrustPay knows this test account and secret.
local ACCOUNT, SECRET = "4107111111", "123456"

local sb = assert(sandbox.start{
    routes = { ["/trustpay/"] = "luapay.sandbox.trustpay", ["/shop/"] = "trustpay_shop" },
    lua_path = "examples/?.lua",
    config = { shop = { account_id = ACCOUNT, secret = SECRET } },
})
local browser = core.http_client{}

local function step(what, value) print(("%-38s %s"):format(what, tostring(value))) end

local function shop_events(n)
    for _ = 1, 500 do
        -- core.json_decode: amounts stay integers (lua-cjson gives Lua 5.4 floats)
        local list = core.json_decode(browser:request{ url = sb.url .. "/shop/events" }.body)
        if #list >= n then return list end
        core.sleep(0.01)
    end
    error("the shop received no notification")
end

local ok, failure = pcall(function()
    local tp = trustpay.new{ account_id = ACCOUNT, secret = SECRET, base_url = sb.url .. "/trustpay" }

    -- 1. The order: 25.00 EUR, with the cardholder's billing details.
    local url = assert(tp:card_payment_url{
        Amount = 2500, Currency = "EUR", Reference = "ORD-1001",
        CardHolder = "Eva Černá", Email = "eva@example.cz",
        BillingStreet = "Náměstí Svobody 1", BillingCity = "Brno", BillingPostcode = "602 00", BillingCountry = "CZ",
        NotificationUrl = sb.url .. "/shop/trustpay/notify",
        ReturnUrl = "https://shop.example/thanks", ErrorUrl = "https://shop.example/sorry",
        Localization = "cs", Description = "Order 1001",
    })
    step("pop-up URL", url:sub(1, 72) .. "...")

    -- A bad field is refused before anything is sent, with every problem listed.
    local _, err = tp:card_payment_url{ Amount = 25.0, Currency = "EUR", Reference = "ORD/1001" }
    step("a bad request", err)

    -- 2. The customer opens the pop-up and pays with a test card.
    local page = assert(browser:request{ url = url })
    local id = page.headers["x-sandbox-payment-id"]
    local paid = http.decode_json(browser:request{ method = "POST", body = "",
        url = sb.url .. "/trustpay/_sandbox/pay?card=4200000000001234&id=" .. id }.body)
    local back = tp:redirect_result(paid.redirect)
    step("the browser comes back (unverified)", ("%s: ResultCode %d %s"):format(back.Reference, back.ResultCode, back.result.name))

    -- 3. Only the signed notification counts.
    local event = shop_events(1)[1]
    step("notification, verified by the shop", ("%s %s %s, card %s"):format(event.order, event.status,
        money.format(event.amount, event.currency), event.card_mask))

    -- 4. Refund 10.00 EUR of it.
    local refund = assert(tp:refund{ Amount = 1000, Currency = "EUR", Reference = "ORD-1001-R1",
        PaymentRequestId = event.payment_request_id })
    step("refund (background call)", ("ResultCode %d %s, acquirer %s"):format(refund.result_code, refund.result.name,
        refund.acquirer_response_id))
    event = shop_events(2)[2]
    step("refund notification", ("%s %s %s"):format(event.kind, event.status, money.format(event.amount, event.currency)))

    -- More than what is left is declined by TrustPay.
    local none, declined = tp:refund{ Amount = 2000, Currency = "EUR", Reference = "ORD-1001-R2",
        PaymentRequestId = event.payment_request_id }
    step("refunding too much", none or declined)
end)

browser:close()
local problems = sb:errors()
sb:stop()
if not ok then error(failure) end
assert(#problems == 0, table.concat(problems, "\n"))
