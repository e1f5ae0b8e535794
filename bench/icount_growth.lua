-- Linear growth (issue 15: "cost grows linearly with body size from 1 KB to
-- 1 MB"), for bench/icount_growth.sh: one operation on a body of SIZE
-- bytes, run N times after a warm-up, as bench/icount.lua runs its table.
--
--   icount_growth.lua OP SIZE N
--
-- The bodies: a card pop-up whose Description holds SIZE bytes (the schema
-- refuses it past 140 characters: what grows is the check that says so); a
-- card notification whose Reference holds SIZE bytes (signed, accepted); a
-- Trustly credit notification and a Deposit with an attribute of SIZE bytes.
local op_name, size, n = arg[1], assert(tonumber(arg[2]), "SIZE expected"), assert(tonumber(arg[3]), "N expected")
local WARM = 3

local function filler(len) -- a text of len bytes with some bytes to escape
    return ("Zahlung für Bestellung 42 / "):rep(math.ceil(len / 29)):sub(1, len)
end

local OPS = {}

function OPS.trustpay_card_url()
    local trustpay = require "luapay.trustpay"
    local tp = trustpay.new{ account_id = "4107111111", secret = "123456", transport = function() end }
    local params = { Amount = 123456, Currency = "EUR", Reference = "ORD-2026-004711", CardHolder = "Eva Cerna",
        Email = "eva@example.cz", BillingStreet = "Namesti Svobody 1", BillingCity = "Brno", BillingPostcode = "60200",
        BillingCountry = "CZ", Description = filler(size) }
    return function() local url, err = tp:card_payment_url(params); assert(not url and err.type == "validation") end
end

function OPS.trustpay_notification()
    local trustpay = require "luapay.trustpay"
    local http = require "luapay.http"
    local tp = trustpay.new{ account_id = "4107111111", secret = "123456", transport = function() end }
    local note = { AccountId = "4107111111", Amount = "1234.56", Currency = "EUR", Reference = filler(size), Type = "CRDT",
        ResultCode = "3", PaymentRequestId = "846487", CardMask = "420000******1234" }
    note.Signature = assert(trustpay.sign("123456", "card_notification", note))
    local query = http.encode_query(note)
    return function() assert(tp:notification(query)) end
end

local function trustly_setup()
    local core = require "luapay.core"
    local read = require("util").read
    local messages = require "trustly_data"
    local priv = assert(core.pkey(read("spec/fixtures/keys/merchant_private.pem")))
    local pub = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))
    return require "luapay.trustly", messages, priv, pub
end

function OPS.trustly_notification()
    local trustly, messages, priv, pub = trustly_setup()
    local credit = {}
    for k, v in pairs(messages.credit) do credit[k] = v end
    credit.attributes = { note = filler(size) }
    local raw = trustly.notification("credit", messages.notification_uuid, credit, priv)
    local keys = { trustly_public_key = pub }
    return function() assert(trustly.verify_notification(raw, nil, keys)) end
end

function OPS.trustly_sign()
    local trustly, messages, priv = trustly_setup()
    local deposit = {}
    for k, v in pairs(messages.deposit) do deposit[k] = v end
    deposit.Attributes = { Note = filler(size), Country = "SE", Currency = "SEK", Amount = "103.00" }
    return function() return trustly.sign("Deposit", messages.uuid, deposit, priv) end
end

local op = (OPS[op_name] or error("unknown operation " .. tostring(op_name)))()
for _ = 1, WARM do op() end
collectgarbage()
collectgarbage("stop") -- as bench/icount.lua: the garbage is freed once, after the calls
for _ = 1, n do op() end
collectgarbage()
