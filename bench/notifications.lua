--- One signed notification of each provider, as it reaches a merchant's
-- nginx, and the options of the client that verifies it (test keys from
-- spec/fixtures): for bench/jit_bench.lua, which sends each to the
-- sandbox's /b/notify/<provider> (bench/handlers.lua).
--   notifications.build() -> { [provider] = { client = opts, method, query, body, headers } }
local core = require "luapay.core"
local cjson = require "cjson"
local http = require "luapay.http"
local trustpay = require "luapay.trustpay"
local trustly = require "luapay.trustly"
local read = require("util").read

local notifications = {}

function notifications.build()
    local list = {}

    local vectors = cjson.decode(read("spec/fixtures/vectors/ecommpay.json"))
    for _, v in ipairs(vectors.callback_vectors) do
        if v.name == "callback_root_signature_trustly_sale_success" then
            list.ecommpay = { client = { project_id = 12345, secret = v.secret }, method = "POST", body = v.raw_body,
                headers = { ["Content-Type"] = "application/json" } }
        end
    end

    local note = { AccountId = "4107111111", Amount = "1234.56", Currency = "EUR", Reference = "ORD-2026-004711",
        Type = "CRDT", ResultCode = "3", PaymentRequestId = "846487", CardMask = "420000******1234",
        CardExpiration = "1230", AuthNumber = "198159" }
    note.Signature = assert(trustpay.sign("123456", "card_notification", note))
    list.trustpay = { client = { account_id = "4107111111", secret = "123456" }, method = "GET",
        query = http.encode_query(note) }

    -- Trustly's side signed with the merchant test key pair: the client
    -- verifies with its public half and signs its answer with the private.
    local private_pem = read("spec/fixtures/keys/merchant_private.pem")
    local public_pem = read("spec/fixtures/keys/merchant_public.pem")
    local messages = require "trustly_data"
    list.trustly = { client = { username = "merchant_username", password = "merchant_password",
        private_key = private_pem, trustly_public_key = public_pem }, method = "POST",
        body = trustly.notification("credit", messages.notification_uuid, messages.credit,
            assert(core.pkey(private_pem))),
        headers = { ["Content-Type"] = "application/json" } }

    local tx = { uid = "4107-b1c2d3e4f5", status = "successful", amount = 1000, currency = "EUR", type = "payment",
        tracking_id = "ORD-2026-004712" }
    local shop_id, shop_key = "361", "b8647b68898b084b836474ed8d61ffe117c9a01168d867f24953b776ddcb134d"
    list.begateway = { client = { psp_id = "1", secret = "begateway-dwh-secret", dwh_url = "https://dwh.example",
        shop_id = shop_id, shop_key = shop_key },
        method = "POST", body = assert(core.json_encode{ transaction = tx }),
        headers = { ["Content-Type"] = "application/json", Authorization = http.basic_auth(shop_id, shop_key) } }

    local access_id, access_key = "M8RaHgEjBE54zuFYMRQq", "test-access-key-0001"
    local fields = { merchantId = "1002463580", merchantReference = "cb180040-7210-4ab9-97b7-415824754802",
        paymentType = "2", transactionType = "3", eventId = "1002593570", eventType = "Authorize",
        objectId = "1002593555", objectType = "Transaction", timeZone = "Etc/UTC", createdAt = "1556234040954",
        accessId = access_id, status = "2", statusMessage = "Authorized", amount = "10.00", currency = "USD" }
    local body = http.encode_query(fields)
    local signed = body:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    list.trustly_na = { client = { access_id = access_id, access_key = access_key }, method = "POST", body = body,
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded",
            Authorization = http.basic_auth(access_id, core.hmac("sha1", access_key, signed, "base64")) } }
    return list
end

return notifications
