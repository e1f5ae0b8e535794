--- Genuine notifications of the five providers, signed as each provider
-- signs (with the sandbox's test keys), for the inbox specs and the storm:
-- the same signers the sandbox fakes use.
--
--   notices.client(name)                 -> the client that verifies them
--   notices.make(name, n, stage)         -> {raw, headers, method}
--     n: the payment's number (a positive integer); stage: "pending",
--     "succeeded" (default) or "late" (a pending that comes after it,
--     as a new notification with its own identity where the provider has one)
local core = require "luapay.core"
local keys = require "luapay.sandbox.test_keys"

local M = {}

M.NAMES = { "ecommpay", "trustly", "trustpay", "begateway", "trustly_na" }

M.OPTIONS = {
    ecommpay = { project_id = 200, secret = "s3cret-ecommpay-key" },
    trustly = { username = "merchant", password = "s3cret-trustly-pw", private_key = keys.merchant_private,
                trustly_public_key = keys.provider_public },
    trustpay = { account_id = "4107111111", secret = "s3cret-trustpay-key" },
    begateway = { psp_id = 1, secret = "s3cret-begateway-key", dwh_url = "https://dwh.example.com",
                  public_key = keys.provider_public },
    trustly_na = { access_id = "merchant-na", access_key = "s3cret-trustly-na-key" },
}

function M.client(name)
    return require("luapay." .. name).new(M.OPTIONS[name])
end

local function hmac_b64(alg, key, text) return core.hmac(alg, key, text, "base64") end

local pkey
local function provider_key()
    pkey = pkey or assert(core.pkey(keys.provider_private))
    return pkey
end

local MAKE = {}

function MAKE.ecommpay(n, stage)
    local s = stage == "succeeded" and "success" or "processing"
    local body = {
        project_id = 200,
        payment = { id = "order-" .. n, type = "purchase", status = s, sum = { amount = 1000 + n, currency = "EUR" } },
        operation = { id = 7000000 + n, type = "sale", status = s, request_id = "r" .. n .. stage,
                      sum_initial = { amount = 1000 + n, currency = "EUR" } },
    }
    body.signature = hmac_b64("sha512", "s3cret-ecommpay-key", assert(core.ecommpay_canonical(body)))
    return { raw = assert(core.json_encode(body)), headers = { ["Content-Type"] = "application/json" }, method = "POST" }
end

function MAKE.trustly(n, stage)
    local trustly = require "luapay.trustly"
    local nid = { pending = 1, succeeded = 2, late = 3 }
    local data = { notificationid = tostring(n * 10 + nid[stage]), messageid = "order-" .. n, orderid = tostring(4400000 + n),
                   enduserid = "user-1", timestamp = "2026-12-01 10:00:00.000+00" }
    local method = "pending"
    if stage == "succeeded" then
        method = "credit"
        data.amount, data.currency = ("%d.%02d"):format(10 + math.floor(n / 100), n % 100), "EUR"
    end
    return { raw = trustly.notification(method, ("2f4f6fe6-1ad1-4b8e-9d2b-%012d"):format(n * 10 + nid[stage]), data,
                                         keys.provider_private),
             headers = { ["Content-Type"] = "application/json" }, method = "POST" }
end

function MAKE.trustpay(n, stage)
    local trustpay = require "luapay.trustpay"
    local f = { AccountId = "4107111111", Type = "CRDT", Amount = "10.00", Currency = "EUR",
                ResultCode = stage == "succeeded" and "0" or (stage == "late" and "2" or "1"),
                PaymentId = tostring(5500000 + n), Reference = "order-" .. n }
    local sig = assert(trustpay.sign("s3cret-trustpay-key", "wire_notification", f))
    local q = {}
    for _, k in ipairs { "AccountId", "Type", "Amount", "Currency", "ResultCode", "PaymentId", "Reference" } do
        q[#q + 1] = k .. "=" .. f[k]
    end
    q[#q + 1] = "Signature=" .. sig
    return { raw = table.concat(q, "&"), headers = {}, method = "GET" }
end

function MAKE.begateway(n, stage)
    local body = assert(core.json_encode { transaction = {
        uid = "tx-" .. n, type = "payment",
        status = stage == "succeeded" and "successful" or (stage == "late" and "incomplete" or "pending"),
        amount = 1000, currency = "EUR", tracking_id = "order-" .. n, test = false } })
    return { raw = body, method = "POST", headers = { ["Content-Type"] = "application/json",
             ["Content-Signature"] = core.base64_encode(provider_key():sign(body, "sha256")) } }
end

function MAKE.trustly_na(n, stage)
    local body = ("merchantId=1002&merchantReference=order-%d&transactionId=%d&objectId=%d"
        .. "&transactionType=2&eventType=%s&status=%d&amount=10.00&currency=USD"):format(
        n, 6600000 + n, 6600000 + n, stage == "late" and "Update" or "Capture", stage == "succeeded" and 4 or 1)
    return { raw = body, method = "POST", headers = {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        Authorization = "Basic " .. core.base64_encode("merchant-na:" .. hmac_b64("sha1", "s3cret-trustly-na-key", body)) } }
end

function M.make(name, n, stage)
    return MAKE[name](n, stage or "succeeded")
end

return M
