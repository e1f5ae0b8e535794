-- Instruction-count bench (`make bench` with BENCH_MODE=icount): one
-- operation of issue 15's table run N times after a warm-up, for callgrind.
-- bench/icount.sh runs it at N and at 0 and takes (Ir(N) - Ir(0)) / N, so
-- everything but the N calls (start-up, loading, the warm-up) cancels out.
--
--   icount.lua OP N          run OP N times (nothing printed)
--   icount.lua --write DIR   the bytes the plain-C side (icount_limit.c)
--                            hashes or verifies for each operation: DIR/OP.msg
--
-- The data are the bench's usual ones: the gate_trustly_sale_request_unicode
-- vector, the 858 B callback_root_signature_trustly_sale_success callback,
-- the payment_page_url_php_style vector, bench/trustpay_bench.lua's card
-- pop-up and card notification, bench/trustly_bench.lua's Deposit and credit
-- notification (one key pair for both sides).
local cjson = require "cjson"
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local trustpay = require "luapay.trustpay"
local trustly = require "luapay.trustly"
local http = require "luapay.http"
local read = require("util").read

local WARM = 50

local vectors = cjson.decode(read("spec/fixtures/vectors/ecommpay.json"))
local function vector(list, name)
    for _, v in ipairs(vectors[list]) do if v.name == name then return v end end
    error("no vector " .. name)
end
local sale = vector("vectors", "gate_trustly_sale_request_unicode")
local callback = vector("callback_vectors", "callback_root_signature_trustly_sale_success")
local page = vector("payment_page_url_vectors", "payment_page_url_php_style")

local sale_params = assert(core.json_decode(sale.params_json))
local page_params = assert(core.json_decode(page.params_json))
local callback_keys = { secret = callback.secret }
local callback_body = cjson.decode(callback.raw_body)

-- TrustPay (as bench/trustpay_bench.lua)
local tp = trustpay.new{ account_id = "4107111111", secret = "123456", transport = function() end }
local tp_params = {
    Amount = 123456, Currency = "EUR", Reference = "ORD-2026-004711", NotificationUrl = "https://shop.example/trustpay/notify",
    CardHolder = "Eva Černá", Email = "eva@example.cz", BillingStreet = "Náměstí Svobody 1", BillingCity = "Brno",
    BillingPostcode = "602 00", BillingCountry = "CZ", Localization = "cs",
}
local tp_message = {}
for k, v in pairs(tp_params) do tp_message[k] = v end
tp_message.AccountId = "4107111111"
local note = { AccountId = "4107111111", Amount = "1234.56", Currency = "EUR", Reference = "ORD-2026-004711", Type = "CRDT",
    ResultCode = "3", PaymentRequestId = "846487", CardMask = "420000******1234", CardExpiration = "1230", AuthNumber = "198159" }
local note_values = assert(trustpay.message("card_notification", note))
note.Signature = assert(trustpay.sign("123456", "card_notification", note))
local tp_query = http.encode_query(note)

-- Trustly (as bench/trustly_bench.lua), loaded only for its operations:
-- checking a private key signs with RSA blinding, whose instruction count
-- is random (about 1M either way) and would swing the other figures.
local priv, pub, uuid, deposit, credit, notification_uuid, trustly_note, trustly_keys
if arg[1] == "--write" or tostring(arg[1]):find("^trustly_") then
    priv = assert(core.pkey(read("spec/fixtures/keys/merchant_private.pem")))
    pub = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))
    local messages = require "trustly_data"
    uuid, deposit, credit, notification_uuid = messages.uuid, messages.deposit, messages.credit,
        messages.notification_uuid
    trustly_note = trustly.notification("credit", notification_uuid, credit, priv)
    trustly_keys = { trustly_public_key = pub }
end

-- Each operation once; each must give the expected answer, or the figures mean nothing.
local OPS = {
    ecommpay_sign = function() return ecommpay.signature(sale_params, sale.secret) end,
    ecommpay_verify = function() return assert(ecommpay.verify_notification(callback.raw_body, nil, callback_keys)) end,
    ecommpay_page_url = function() return ecommpay.payment_page_url(page_params, page.secret) end,
    trustpay_card_url = function() return assert(tp:card_payment_url(tp_params)) end,
    trustpay_notification = function() return assert(tp:notification(tp_query)) end,
    trustly_sign = function() return trustly.sign("Deposit", uuid, deposit, priv) end,
    trustly_notification = function() return assert(trustly.verify_notification(trustly_note, nil, trustly_keys)) end,
    json_encode = function() return core.json_encode(callback_body) end,
    cjson_encode = function() return cjson.encode(callback_body) end,
}
assert(OPS.ecommpay_sign() == sale.signature, "ecommpay_sign: wrong signature")
assert(OPS.ecommpay_page_url() == page.url, "ecommpay_page_url: wrong URL")
assert(cjson.decode(OPS.json_encode()).signature == callback_body.signature)

-- The floor under the two verifications: the event each returns, built
-- from values already at hand (no parse, no check, no signature; a value
-- string is not even made), for icount.sh's floor lines. The body's tree
-- is core.json_decode's, the cheapest reader here (half lua-cjson's count
-- under 5.4). Each must build the shape the call returns, key for key.
-- Made only when asked for: what a run allocates at load moves the other
-- figures (ecommpay sign under 5.4 by 2.5%).
local function add_floors()
    local cb_event, tp_event = OPS.ecommpay_verify(), OPS.trustpay_notification()
    local event_mt = getmetatable(cb_event)
    function OPS.ecommpay_verify_floor()
        local e, x = cb_event, cb_event.extra
        return setmetatable({ provider = e.provider, kind = e.kind, status = e.status, merchant_ref = e.merchant_ref,
            provider_ref = e.provider_ref, amount = e.amount, currency = e.currency, raw = e.raw,
            extra = { project_id = x.project_id, payment_status = x.payment_status, payment_type = x.payment_type,
                payment_amount = x.payment_amount, operation_type = x.operation_type,
                operation_status = x.operation_status, request_id = x.request_id, code = x.code, message = x.message,
                customer_id = x.customer_id, body = core.json_decode(e.raw) } }, event_mt)
    end
    function OPS.trustpay_notification_floor()
        local e, x = tp_event, tp_event.extra
        local p, card, result = x.params, x.card, x.result
        return setmetatable({ provider = e.provider, kind = e.kind, status = e.status, merchant_ref = e.merchant_ref,
            provider_ref = e.provider_ref, amount = e.amount, currency = e.currency, raw = e.raw,
            extra = { method = x.method, type = x.type, result_code = x.result_code,
                result = { name = result.name, description = result.description },
                card = { CardMask = card.CardMask, CardExpiration = card.CardExpiration, AuthNumber = card.AuthNumber },
                params = { AccountId = p.AccountId, Amount = p.Amount, AuthNumber = p.AuthNumber,
                    CardExpiration = p.CardExpiration, CardMask = p.CardMask, Currency = p.Currency,
                    PaymentRequestId = p.PaymentRequestId, Reference = p.Reference, ResultCode = p.ResultCode,
                    Signature = p.Signature, Type = p.Type } } }, event_mt)
    end
    -- Every key of every table the same, and nothing more.
    local function same_shape(a, b, path)
        for k, v in pairs(a) do
            assert(b[k] ~= nil, path .. "." .. tostring(k) .. " missing from the floor")
            if type(v) == "table" then same_shape(v, b[k], path .. "." .. tostring(k)) end
        end
        for k in pairs(b) do assert(a[k] ~= nil, path .. "." .. tostring(k) .. " not in the event") end
    end
    same_shape(cb_event, OPS.ecommpay_verify_floor(), "ecommpay_verify")
    same_shape(tp_event, OPS.trustpay_notification_floor(), "trustpay_notification")
end
if tostring(arg[1]):find("_floor$") then add_floors() end

if arg[1] == "--write" then
    local function write(name, text)
        local f = assert(io.open(arg[2] .. "/" .. name .. ".msg", "wb"))
        f:write(text)
        f:close()
    end
    write("ecommpay_sign", core.ecommpay_canonical(sale_params))
    write("ecommpay_verify", core.ecommpay_canonical(cjson.decode(callback.raw_body), { callback = true }))
    write("ecommpay_page_url", page.string_to_sign)
    write("trustpay_card_url", table.concat(assert(trustpay.message("card_purchase", tp_message)), "/"))
    write("trustpay_notification", table.concat(note_values, "/"))
    write("trustly_sign", trustly.plaintext("Deposit", uuid, deposit))
    write("trustly_notification", trustly.plaintext("credit", notification_uuid, credit))
    return
end

-- Growth (ecommpay): OP@BYTES runs OP on a body of about BYTES bytes, grown
-- the way bodies grow: a list of receipt positions in the signed request
-- and in the callback (objects of a few keys each), a longer description
-- in the Payment Page URL.
local function ecommpay_grown(name, bytes)
    local position = { description = "Kaffe – 250 g", amount = 4900, quantity = 2, vat = "25", sku = "SKU-000000" }
    local function positions(params, size)
        local list = {}
        params.receipt = { positions = list }
        while #assert(core.json_encode(params)) < size do
            for _ = 1, math.max(1, math.floor((size - #core.json_encode(params)) / 90)) do
                local p = {}
                for k, v in pairs(position) do p[k] = v end
                p.sku = ("SKU-%06d"):format(#list)
                list[#list + 1] = p
            end
        end
        return params
    end
    if name == "ecommpay_sign" then
        local params = positions(assert(core.json_decode(sale.params_json)), bytes)
        return function() return ecommpay.signature(params, sale.secret) end
    elseif name == "ecommpay_verify" then
        local body = positions(cjson.decode(callback.raw_body), bytes)
        body.signature = nil
        body.signature = ecommpay.signature(body, callback.secret)
        local raw = assert(core.json_encode(body))
        return function() return assert(ecommpay.verify_notification(raw, nil, callback_keys)) end
    elseif name == "ecommpay_page_url" then
        local params = assert(core.json_decode(page.params_json))
        local word = "Köp #42 & mer "
        params.payment_description = word:rep(math.max(1, math.floor((bytes - 200) / #word)))
        return function() return ecommpay.payment_page_url(params, page.secret) end
    end
end
local grown_name, grown_bytes = tostring(arg[1]):match("^(ecommpay_[%w_]+)@(%d+)$")
if grown_name then
    OPS[arg[1]] = assert(ecommpay_grown(grown_name, tonumber(grown_bytes)), arg[1])
    WARM = 2 -- a few megabytes are warm enough
end

local op = OPS[arg[1]] or error("unknown operation " .. tostring(arg[1]))
local n = assert(tonumber(arg[2]), "N expected")
for _ = 1, WARM do op() end
-- The collector stopped during the calls and run once, whole, after them:
-- their garbage is freed in one cycle whose marking (the live heap) is the
-- same at N and at 0, so it cancels out; left running, a cycle that happens
-- to fall inside one run and not the other would swing the figure by 10%.
collectgarbage()
collectgarbage("stop")
for _ = 1, n do op() end
collectgarbage()
