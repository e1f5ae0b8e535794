-- Property tests over random data (issue 16), second part: TrustPay's
-- payment-order XML read back by a real XML parser (lua-expat) and
-- compared field for field with the order; the callback verifiers of
-- beGateway, Trustly NA and Trustly fed random mutations of a genuine
-- message (only one that signs the same text may verify, and it reads the
-- same); Trustly NA's form reading. Seeded: a failure names its seed.
-- LUAPAY_PROPERTY_RUNS sets the count.
local core = require "luapay.core"
local begateway = require "luapay.begateway"
local dataset = require "luapay.sandbox.dataset"
local http = require "luapay.http"
local trustly = require "luapay.trustly"
local trustly_na = require "luapay.trustly_na"
local trustpay = require "luapay.trustpay"
local util = require "support.util"

local property = require "support.property"
local RUNS, rng, pick, mutate = property.RUNS, property.rng, property.pick, property.mutate



local function for_seeds(f, runs)
    for seed = 1, runs or RUNS do
        local ok, err = pcall(f, rng(seed), seed)
        if not ok then error(("seed %d: %s"):format(seed, tostring(err)), 0) end
    end
end


-- An event's own fields but raw (the body as received), for comparing two readings.
local function meaning(event)
    local t = {}
    for k, v in pairs(event) do if k ~= "raw" then t[k] = v end end
    return t
end

describe("trustpay payment-order XML read back by lua-expat", function()
    local has_lxp, lxp = pcall(require, "lxp")
    if not has_lxp then
        -- never skipped silently
        io.stderr:write("spec 69: lua-expat (require 'lxp') missing under " .. _VERSION
            .. (jit and " (" .. jit.version .. ")" or "") .. ": the payment-order XML test does not run\n")
        pending("lua-expat is not installed for " .. _VERSION)
        return
    end

    -- Element tree: { name, attrs, text, children }.
    local function parse(xml)
        local root = { children = {} }
        local stack = { root }
        local p = lxp.new({
            StartElement = function(_, name, attrs)
                local e = { name = name, attrs = attrs, text = {}, children = {} }
                local top = stack[#stack]
                top.children[#top.children + 1] = e
                stack[#stack + 1] = e
            end,
            EndElement = function() stack[#stack] = nil end,
            CharacterData = function(_, s) local t = stack[#stack].text; t[#t + 1] = s end,
        })
        local ok, msg, line, col = p:parse(xml)
        if ok then ok, msg, line, col = p:parse() end
        p:close()
        assert(ok, ("not well-formed XML: %s at %s:%s"):format(tostring(msg), tostring(line), tostring(col)))
        assert(#root.children == 1)
        return root.children[1]
    end
    local function children(e, name)
        local out = {}
        for _, c in ipairs(e.children) do if c.name == name then out[#out + 1] = c end end
        return out
    end
    -- The element at path "A/B/C" (at most one), or nil.
    local function at(e, path)
        for name in path:gmatch("[^/]+") do
            local cs = children(e, name)
            assert(#cs <= 1, "more than one " .. name)
            e = cs[1]
            if not e then return nil end
        end
        return e
    end
    local function text(e, path)
        local x = at(e, path)
        if x == nil then return nil end
        assert(#x.children == 0, path .. " has child elements")
        return table.concat(x.text)
    end

    -- The order as a bank reading the document sees it: independent of
    -- payment_order.lua, from the pain.001.001.03 paths.
    local function read_payment(p)
        local o = {
            RequestedExecutionDate = text(p, "ReqdExctnDt"),
            DebtorName = text(p, "Dbtr/Nm"), CityCode = text(p, "Dbtr/PstlAdr/TwnNm"), Address = text(p, "Dbtr/PstlAdr/AdrLine"),
            DebtorAccount = text(p, "DbtrAcct/Id/Othr/Id"), Currency = text(p, "DbtrAcct/Ccy"),
        }
        local tx = children(p, "CdtTrfTxInf")
        assert(#tx == 1)
        tx = tx[1]
        o.EndToEndReference = text(tx, "PmtId/EndToEndId")
        local amt = at(tx, "Amt/InstdAmt")
        o.amount, o.amount_currency = table.concat(amt.text), amt.attrs.Ccy
        o.CorrespondentBank = text(tx, "IntrmyAgt1/FinInstnId/Nm")
        o.CreditorBankBic = text(tx, "CdtrAgt/FinInstnId/BIC")
        o.CreditorBankName = text(tx, "CdtrAgt/FinInstnId/Nm")
        o.CreditorBankCity = text(tx, "CdtrAgt/FinInstnId/PstlAdr/TwnNm")
        o.CreditorBankCountry = text(tx, "CdtrAgt/FinInstnId/PstlAdr/Ctry")
        o.CreditorBankAddress = text(tx, "CdtrAgt/FinInstnId/PstlAdr/AdrLine")
        local sys = text(tx, "CdtrAgt/FinInstnId/ClrSysMmbId/ClrSysId/Cd")
        if sys then
            o[({ USABA = "AbaCode", AUBSB = "BsbCode", CACPA = "TransitCode" })[sys]] = text(tx, "CdtrAgt/FinInstnId/ClrSysMmbId/MmbId")
        end
        o.CreditorName = text(tx, "Cdtr/Nm")
        o.CreditorCity = text(tx, "Cdtr/PstlAdr/TwnNm")
        o.CreditorCountry = text(tx, "Cdtr/PstlAdr/Ctry")
        o.CreditorAddress = text(tx, "Cdtr/PstlAdr/AdrLine")
        o.CreditorAccount = text(tx, "CdtrAcct/Id/IBAN") or text(tx, "CdtrAcct/Id/Othr/Id")
        o.Description = text(tx, "RmtInf/Ustrd")
        for _, s in ipairs(children(at(tx, "RmtInf") or { children = {} }, "Strd")) do
            local ref, add = text(s, "CdtrRefInf/Ref"), text(s, "AddtlRmtInf")
            if ref then
                o.SymbolVariable = ref:match("/VS(%d+)")
                o.SymbolSpecific = ref:match("/SS(%d+)")
                o.SymbolConstant = ref:match("/KS(%d+)")
            end
            if add then o.ClientReference = assert(add:match("^CREF:(.*)$"), "AddtlRmtInf without CREF:") end
        end
        return o
    end

    -- Text the bank would have to carry: XML's specials, quotes, white
    -- space (tab, LF, CR), non-ASCII (2-4 bytes), and at times a control
    -- character the document cannot carry (the order must be refused).
    local PIECES = { "&", "<", ">", '"', "'", "&amp;", "]]>", "<x/>", " ", "  ", "\t", "\n", "\r", "\r\n",
        "é", "Müller", "Žilina", "☃", "€", "𝄞", "日本", "a", "Z", "0", "-", "/", ";", "=", "%", "#" }
    local function text_value(R, max)
        local t, n = {}, 0
        for _ = 1, R(1, max) do
            local piece = R(1, 3) == 1 and string.char(R(0x21, 0x7E)) or pick(R, PIECES)
            local _, chars = piece:gsub("[^\128-\191]", "")
            if n + chars > max then break end
            t[#t + 1], n = piece, n + chars
        end
        local s = table.concat(t)
        if s == "" then s = "x" end
        return s
    end

    local function digits(R, n)
        local t = {}
        for i = 1, n do t[i] = tostring(R(0, 9)) end
        return table.concat(t)
    end

    -- amounts are integers (Lua 5.4's 2^31 is a float)
    local whole = math.tointeger or function(x) return x end
    local AMOUNTS = { 1, 2, 9, 10, 99, 100, 101, 12345, 2 ^ 31 - 1, 2 ^ 31, 2 ^ 32 + 1, 99999999999999 }
    local function random_order(R, single)
        local sepa = R(1, 2) == 1
        local o = {
            Amount = whole(R(1, 2) == 1 and pick(R, AMOUNTS) or R(1, 10 ^ R(1, 13))),
            Currency = sepa and "EUR" or pick(R, { "USD", "CZK", "GBP", "EUR" }),
            MessageId = text_value(R, 35), DebtorAccount = digits(R, 10), DebtorName = text_value(R, 35),
            CreditorName = text_value(R, 35), CreditorBankBic = pick(R, { "TPAYSKBX", "DEUTDEFF", "CHASUS33XXX" }),
            CreditorBankName = text_value(R, 35), CreditorBankAddress = text_value(R, 35),
            CreditorBankCity = text_value(R, 35), CreditorBankCountry = pick(R, { "SK", "CZ", "DE", "GB", "US", "AU", "CA" }),
            CreditorAccount = sepa and pick(R, { "SK3399520000002107425307", "DE89370400440532013000" }) or text_value(R, 34),
            RequestedExecutionDate = os.date("!%Y-%m-%d", os.time() + 86400 * R(1, 400)),
        }
        local c = o.CreditorBankCountry
        if c == "US" then o.AbaCode = digits(R, 9) end
        if c == "AU" then o.BsbCode = digits(R, 6) end
        if c == "CA" then o.TransitCode = "0" .. digits(R, 8) end
        if not sepa or R(1, 2) == 1 then
            o.CreditorAddress, o.CreditorCity = text_value(R, 35), text_value(R, 35)
            o.CreditorCountry = pick(R, { "SK", "US", "JP" })
        end
        local optional = { Address = 60, ClientReference = 30, CorrespondentBank = 35, Description = 140, EndToEndReference = 35 }
        for _, k in ipairs({ "Address", "ClientReference", "CorrespondentBank", "Description", "EndToEndReference" }) do
            if R(1, 2) == 1 then o[k] = text_value(R, optional[k]) end
        end
        if single then
            o.CityCode = text_value(R, 35)
            if R(1, 2) == 1 then o.SymbolVariable = digits(R, R(1, 10)) end
            if R(1, 3) == 1 then o.SymbolSpecific = digits(R, R(1, 10)) end
            if R(1, 3) == 1 then o.SymbolConstant = digits(R, R(1, 4)) end
        end
        if R(1, 4) == 1 then o.CreationDateTime = os.date("!%Y-%m-%dT%H:%M:%S", R(0, 2 ^ 31 - 1)) end
        return o
    end

    local function decimal2(minor)
        local s = ("%.0f"):format(minor)
        s = ("0"):rep(3 - #s) .. s
        return s:sub(1, -3) .. "." .. s:sub(-2)
    end
    local TEXT = { "MessageId", "DebtorName", "CreditorName", "CreditorBankName", "CreditorBankAddress",
        "CreditorBankCity", "CreditorAccount", "CreditorAddress", "CreditorCity", "Address", "ClientReference",
        "CorrespondentBank", "Description", "EndToEndReference", "CityCode" }

    local function check(R, list, single)
        -- now and then a control character, which the document cannot carry
        local bad = false
        if R(1, 8) == 1 then
            local o, k = list[R(1, #list)], pick(R, TEXT)
            if o[k] and not (k == "CreditorAccount" and o.Currency == "EUR") then
                o[k] = o[k] .. string.char(pick(R, { 0, 1, 8, 11, 12, 27, 31, 127 }))
                bad = true
            end
        end
        local xml, err
        if single then xml, err = trustpay.order_xml(list[1]) else xml, err = trustpay.orders_xml(list) end
        local too_big = false
        for _, o in ipairs(list) do if o.Amount >= 10 ^ 13 then too_big = true end end
        if bad or too_big then
            assert(xml == nil, "an order the document cannot carry was written")
            assert(err and err.type == "validation")
            return
        end
        if not xml then
            local why = {}
            for _, v in ipairs(err.fields or {}) do why[#why + 1] = tostring(v.path) .. ":" .. tostring(v.code) end
            error(err.message .. " " .. table.concat(why, ","))
        end
        local doc = parse(xml)
        assert.equal("Document", doc.name)
        assert.equal("urn:iso:std:iso:20022:tech:xsd:pain.001.001.03", doc.attrs.xmlns)
        local init = at(doc, "CstmrCdtTrfInitn")
        local first = list[1]
        assert.equal(first.MessageId, text(init, "GrpHdr/MsgId"))
        if first.CreationDateTime then assert.equal(first.CreationDateTime, text(init, "GrpHdr/CreDtTm")) end
        assert.equal(tostring(#list), text(init, "GrpHdr/NbOfTxs"))
        local total = 0
        for _, o in ipairs(list) do total = total + o.Amount end
        assert.equal(decimal2(total), text(init, "GrpHdr/CtrlSum"))
        assert.equal(first.DebtorName, text(init, "GrpHdr/InitgPty/Nm"))
        local payments = children(init, "PmtInf")
        assert.equal(#list, #payments)
        for i, o in ipairs(list) do
            local got = read_payment(payments[i])
            assert.equal(tostring(i), text(payments[i], "PmtInfId"))
            assert.equal(decimal2(o.Amount), text(payments[i], "CtrlSum"))
            assert.equal(decimal2(o.Amount), got.amount)
            assert.equal(o.Currency, got.amount_currency)
            got.amount, got.amount_currency = nil, nil
            local want = {}
            for k, v in pairs(o) do want[k] = v end
            want.Amount, want.MessageId, want.CreationDateTime = nil, nil, nil
            want.EndToEndReference = o.EndToEndReference or "NOTPROVIDED"
            for k in pairs(want) do assert.equal(want[k], got[k], k) end
            for k in pairs(got) do assert.equal(want[k], got[k], k) end
        end
    end

    it("gives back every field of one random order, or refuses it", function()
        for_seeds(function(R) check(R, { random_order(R, true) }, true) end)
    end)

    it("gives back every field of a random list of orders, or refuses it", function()
        for_seeds(function(R)
            local list = { random_order(R, false) }
            for i = 2, R(1, 4) do
                local o = random_order(R, false)
                o.MessageId, o.DebtorName, o.CreationDateTime = list[1].MessageId, list[1].DebtorName, list[1].CreationDateTime
                list[i] = o
            end
            check(R, list, false)
        end)
    end)
end)

describe("callback verifiers fed mutations of a genuine message", function()
    local provider_key = assert(core.pkey(util.fixture("keys/provider_private.pem")))
    local provider_public = util.fixture("keys/provider_public.pem")
    local ds = dataset.new()

    it("beGateway with a public key: only the untouched body, and a signature that decodes the same, verify", function()
        local keys = { public_key = provider_public }
        for_seeds(function(R)
            local body = assert(core.json_encode{ transaction = ds:begateway(R(1, 500)) })
            local sig = core.base64_encode(provider_key:sign(body, "sha256"))
            local genuine = meaning(assert(begateway.verify_notification(body, { ["Content-Signature"] = sig }, keys)))
            for _ = 1, 4 do
                local m = mutate(R, body)
                local event, err = begateway.verify_notification(m, { ["Content-Signature"] = sig }, keys)
                if m ~= body then
                    assert(event == nil and err.type == "signature", "a mutated body verified: " .. m)
                end
                local msig = mutate(R, sig)
                event, err = begateway.verify_notification(body, { ["Content-Signature"] = msig }, keys)
                if event then
                    assert.equal(core.base64_decode(sig), core.base64_decode((msig:gsub("%s+", ""))))
                    assert.same(genuine, meaning(event))
                else
                    assert.equal("signature", err.type)
                end
            end
        end, math.max(1, math.floor(RUNS / 4)))
    end)

    it("beGateway with Basic credentials: only credentials that decode to the shop's verify", function()
        local keys = { shop_id = "361", shop_key = "b8647b68898b084b836474ed8d61ffe117c9a01168d867f24953b776ddcb134d" }
        for_seeds(function(R)
            local body = assert(core.json_encode{ transaction = ds:begateway(R(1, 500)) })
            local auth = http.basic_auth(keys.shop_id, keys.shop_key)
            local genuine = meaning(assert(begateway.verify_notification(body, { Authorization = auth }, keys)))
            for _ = 1, 8 do
                local m = mutate(R, auth)
                local event, err = begateway.verify_notification(body, { Authorization = m }, keys)
                if event then
                    local b64 = m:match("^[Bb]asic%s+(%S+)%s*$")
                    assert(b64 and core.base64_decode(b64) == keys.shop_id .. ":" .. keys.shop_key,
                        "mutated credentials verified: " .. m)
                    assert.same(genuine, meaning(event))
                else
                    assert.equal("signature", err.type)
                end
            end
        end)
    end)

    it("Trustly NA: a mutated body or Authorization verifies only if it signs the same text, and reads the same", function()
        local keys = { access_id = "M8RaHgEjBE54zuFYMRQq", access_key = "test-access-key-0001" }
        local function percent_decode(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
        for_seeds(function(R)
            local f = { merchantId = tostring(R(1, 10 ^ 9)), merchantReference = "ref-" .. R(1, 99999),
                transactionType = tostring(R(1, 8)), status = tostring(R(0, 12)), objectId = tostring(R(1, 10 ^ 9)),
                amount = ("%d.%02d"):format(R(0, 9999), R(0, 99)), currency = "USD", statusMessage = "Authorized ok",
                timeZone = "Etc/UTC", eventType = pick(R, { "Authorize", "Capture", "Refund" }) }
            local body = http.encode_query(f)
            local md = pick(R, { "sha1", "sha512" })
            local sig = core.hmac(md, keys.access_key, percent_decode(body), "base64")
            local auth = "Basic " .. core.base64_encode(keys.access_id .. ":" .. (md == "sha512" and "HmacSHA512:" or "") .. sig)
            local genuine = meaning(assert(trustly_na.verify_notification(body, auth, keys)))
            assert.same(f, genuine.extra.fields)
            for _ = 1, 4 do
                local m = mutate(R, body)
                local event, err = trustly_na.verify_notification(m, auth, keys)
                if event then
                    local as_space = percent_decode((m:gsub("%+", " ")))
                    assert(percent_decode(m) == percent_decode(body) or as_space == percent_decode(body),
                        "a body that signs another text verified: " .. m)
                    assert.same(genuine, meaning(event))
                else
                    assert.equal("signature", err.type)
                end
                local ma = mutate(R, auth)
                event, err = trustly_na.verify_notification(body, ma, keys)
                if event then
                    local b64 = ma:match("^[Bb]asic%s+(%S+)%s*$")
                    assert(b64 and core.base64_decode(b64) == core.base64_decode(auth:sub(7)),
                        "a mutated Authorization verified: " .. ma)
                    assert.same(genuine, meaning(event))
                else
                    assert.equal("signature", err.type)
                end
            end
        end)
    end)

    it("Trustly: a mutated notification verifies only if it signs the same method, uuid and data, and reads the same", function()
        local keys = { trustly_public_key = provider_public }
        for_seeds(function(R, seed)
            local method = pick(R, { "credit", "debit", "pending", "cancel", "payoutconfirmation" })
            local data = { amount = ("%d.%02d"):format(R(0, 99999), R(0, 99)), currency = pick(R, { "SEK", "EUR" }),
                messageid = "m-" .. R(1, 10 ^ 6), orderid = tostring(R(1, 10 ^ 9)), enduserid = "u" .. R(1, 999),
                notificationid = tostring(R(1, 10 ^ 9)), timestamp = "2024-05-01 12:34:56.789012+02",
                attributes = R(1, 2) == 1 and { x = "y" .. R(1, 9) } or nil }
            local uuid = ("%08x-0000-4000-8000-%012x"):format(R(0, 2 ^ 31 - 1), seed)
            local text = trustly.notification(method, uuid, data, provider_key)
            local genuine = meaning(assert(trustly.verify_notification(text, nil, keys)))
            local signed = method .. uuid .. trustly.serialize(data)
            for _ = 1, 8 do
                local m = mutate(R, text)
                local event, err = trustly.verify_notification(m, nil, keys)
                if event then
                    local doc = core.json_decode(m, { numbers = "lexeme" })
                    local p = doc.params
                    assert(doc.method .. p.uuid .. trustly.serialize(p.data) == signed,
                        "a notification that signs another text verified: " .. m)
                    assert.same(genuine, meaning(event))
                else
                    assert.equal("signature", err.type)
                end
            end
        end, math.max(1, math.floor(RUNS / 2)))
    end)
end)

describe("Trustly NA's form reading (verify_notification, http.query_pairs, http.decode_query)", function()
    local keys = { access_id = "id-1", access_key = "k-0001" }
    local PIECES = { "a", "Z", "9", ".", "_", "-", "~", " ", "+", "%", "%2", "%41", "&", "=", "/", "?", "#", ";",
        "é", "☃", "\0", "\n", "%%", "*" }
    local function piece_text(R, min, max)
        local t = {}
        for i = 1, R(min, max) do t[i] = R(1, 2) == 1 and string.char(R(0x21, 0x7E)) or pick(R, PIECES) end
        return table.concat(t)
    end
    -- percent-encodes s, leaving some safe characters as they are and
    -- writing a space as "+" or %20
    local function encode(R, s, plus)
        return (s:gsub("[^%w]", function(c)
            if c == " " and plus then return "+" end
            if c:match("^[%.%-_~]$") and R(1, 2) == 1 then return c end
            return ("%%%02X"):format(c:byte())
        end))
    end

    it("gives back exactly the fields that were sent, or refuses an ambiguous form", function()
        for_seeds(function(R, seed)
            local pairs_list = {}
            for i = 1, R(1, 6) do
                local k = piece_text(R, 1, 6)
                if R(1, 6) == 1 and i > 1 then k = pairs_list[R(1, i - 1)][1] end -- a repeated name
                pairs_list[i] = { k, R(1, 5) == 1 and "" or piece_text(R, 0, 10) }
            end
            local plus = R(1, 2) == 1
            local raw, signed = {}, {}
            for i, p in ipairs(pairs_list) do
                raw[i] = encode(R, p[1], plus) .. "=" .. encode(R, p[2], plus)
                signed[i] = p[1] .. "=" .. p[2]
            end
            local body, text = table.concat(raw, "&"), table.concat(signed, "&")
            local auth = "Basic " .. core.base64_encode(keys.access_id .. ":" .. core.hmac("sha1", keys.access_key, text, "base64"))
            -- what was sent, if it can be told apart in the signed text
            local want, ambiguous = {}, false
            for _, p in ipairs(pairs_list) do
                local k, v = p[1], p[2]
                if k:find("[&=]") or v:find("&", 1, true) or k == "" then ambiguous = true end
                if want[k] ~= nil and want[k] ~= v then ambiguous = true end
                want[k] = v
            end
            local ok, event, err = pcall(trustly_na.verify_notification, body, auth, keys)
            assert(ok, event)
            local why = ("seed %d: body %q"):format(seed, body)
            if ambiguous then
                assert(event == nil, "an ambiguous form was read: " .. why)
                assert.equal("signature", err.type)
            else
                assert(event, tostring(err) .. " " .. why)
                assert.same(want, event.extra.fields, why)
            end
            -- http.decode_query reads the body as the verifier does (no raw "+"
            -- but a space: encode writes "+" as %2B)
            if not ambiguous then assert.same(want, http.decode_query(body), why) end
        end)
    end)
end)
