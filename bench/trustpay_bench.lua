-- TrustPay bench: what a merchant's server does per payment, through the
-- public API (no network). Prints "name ops_per_second":
--   tp_hmac         the bare core.hmac over a card purchase message (the floor)
--   tp_card_url     card_payment_url: validation, message, HMAC, query string
--   tp_notification client:notification on a card notification query string
--   tp_orders_100   trustpay.orders_xml of 100 pain.001 orders (documents/s)
local core = require "luapay.core"
local http = require "luapay.http"
local trustpay = require "luapay.trustpay"
local bench = require "util"
local rate = bench.rate

local tp = trustpay.new{ account_id = "4107111111", secret = "123456", transport = function() end }
local params = {
    Amount = 123456, Currency = "EUR", Reference = "ORD-2026-004711", NotificationUrl = "https://shop.example/trustpay/notify",
    CardHolder = "Eva Černá", Email = "eva@example.cz", BillingStreet = "Náměstí Svobody 1", BillingCity = "Brno",
    BillingPostcode = "602 00", BillingCountry = "CZ", Localization = "cs",
}
local message = table.concat(assert(trustpay.message("card_purchase", (function()
    local p = {}
    for k, v in pairs(params) do p[k] = v end
    p.AccountId = "4107111111"
    return p
end)())), "/")

local note = { AccountId = "4107111111", Amount = "1234.56", Currency = "EUR", Reference = "ORD-2026-004711", Type = "CRDT",
    ResultCode = "3", PaymentRequestId = "846487", CardMask = "420000******1234", CardExpiration = "1230", AuthNumber = "198159" }
note.Signature = assert(trustpay.sign("123456", "card_notification", note))
local query = http.encode_query(note)

local orders = {}
for i = 1, 100 do
    orders[i] = {
        Amount = 1000 + i, Currency = "EUR", MessageId = "MSG-BENCH", DebtorAccount = "4107111111", DebtorName = "Shop s.r.o.",
        CreditorName = "Creditor & Sons " .. i, CreditorAccount = "SK3399520000002107425307", CreditorBankBic = "TPAYSKBX",
        CreditorBankName = "TrustPay", CreditorBankAddress = "Za kasarnou 1", CreditorBankCity = "Bratislava",
        CreditorBankCountry = "SK", RequestedExecutionDate = os.date("!%Y-%m-%d", os.time() + 86400),
        Description = "Invoice <" .. i .. ">", CreationDateTime = "2026-01-01T10:00:00",
    }
end

assert(tp:card_payment_url(params))
assert(tp:notification(query))
assert(trustpay.orders_xml(orders))

print("tp_hmac", rate(function() return core.hmac("sha256", "123456", message, "HEX") end))
print("tp_card_url", rate(function() return tp:card_payment_url(params) end))
print("tp_notification", rate(function() return tp:notification(query) end))
print("tp_orders_100", rate(function() return trustpay.orders_xml(orders) end))
