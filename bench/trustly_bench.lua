-- Trustly through luapay: requests signed and notifications verified per
-- second, to set against plain C doing only the RSA operation over the same
-- plaintext (bench/crypto_bench.c name=file). Prints "name ops_per_second".
--
--   trustly_bench.lua private.pem public.pem            the figures
--   trustly_bench.lua private.pem public.pem --write DIR  the plaintexts for the C side:
--                                                        DIR/deposit.msg, DIR/notification.msg
--
-- One key pair signs and checks everything (the notification as if Trustly
-- had signed it with it): RSA-2048 with e = 65537 costs the same with any key.
local core = require "luapay.core"
local trustly = require "luapay.trustly"
local bench = require "util"
local rate = bench.rate

local read = bench.read

local priv = assert(core.pkey(read(arg[1])))
local pub = assert(core.pkey(read(arg[2])))

-- The Deposit of the vectors (13 attributes, 3 levels).
local messages = require "trustly_data"
local uuid, deposit, credit, notification_uuid = messages.uuid, messages.deposit, messages.credit,
    messages.notification_uuid
local notification = trustly.notification("credit", notification_uuid, credit, priv)

if arg[3] == "--write" then
    local function write(name, text)
        local f = assert(io.open(arg[4] .. "/" .. name, "wb"))
        f:write(text)
        f:close()
    end
    write("deposit.msg", trustly.plaintext("Deposit", uuid, deposit))
    write("notification.msg", trustly.plaintext("credit", notification_uuid, credit))
    return
end

-- A Deposit as the client builds it before sending: validated, converted,
-- signed, encoded (everything but the network).
local caller_data = {
    NotificationURL = deposit.NotificationURL, EndUserID = "12345", MessageID = "deposit-0001",
    Attributes = {},
}
for k, v in pairs(deposit.Attributes) do caller_data.Attributes[k] = v end
caller_data.Attributes.Amount = 10300

local sign, serialize, prepare, request, verify_notification =
    trustly.sign, trustly.serialize, trustly.prepare, trustly.request, trustly.verify_notification
local notification_keys = { trustly_public_key = pub }

print(("trustly_serialize %.0f"):format(rate(function() return serialize(deposit) end)))
print(("trustly_sign %.0f"):format(rate(function() return sign("Deposit", uuid, deposit, priv) end)))
print(("trustly_request %.0f"):format(rate(function()
    local data = assert(prepare("Deposit", caller_data, "merchant_username", "merchant_password"))
    return request("Deposit", uuid, data, priv)
end)))
print(("trustly_notification %.0f"):format(rate(function()
    return assert(verify_notification(notification, nil, notification_keys))
end)))
