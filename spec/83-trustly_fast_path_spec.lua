-- The Trustly notification's fast path (issue 15), each piece checked
-- against what it replaced: core.trustly_verify against key:verify over
-- method .. uuid .. trustly_serialize(data) and base64_decode(sig);
-- provider.plain_owned against provider.plain; core.base64_decode's quad
-- loop against a Lua decoder. Seeded: a failure names its seed.
local core = require "luapay.core"
local provider = require "luapay.provider"
local trustly = require "luapay.trustly"
local property = require "support.property"
local RUNS, rng, pick = property.RUNS, property.rng, property.pick

local read = require("support.util").read

-- A random Trustly-like data object, as text.
local SHAPE = {
    numbers = { "0", "1.50", "-7", "1e2", "12.340" },
    strings = { '"a"', '"ü/\\n"', '""', "null", '"49.90"' },
    string_max = 40, leaf_depth = 2, array_max = 4, object_odds = 1,
}
local function json(R, depth) return property.json_text(R, SHAPE, depth) end
local same = property.same

local LEXEMES = { numbers = "lexeme" }

describe("core.trustly_verify", function()
    local priv = assert(core.pkey(read("spec/fixtures/keys/merchant_private.pem")))
    local pub = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))

    local function slow(key, method, uuid, data, sig_b64)
        local sig = core.base64_decode(sig_b64)
        if not sig then return nil end
        return key:verify(method .. uuid .. core.trustly_serialize(data), sig, "sha1")
    end

    it("answers as key:verify over the serialization and the decoded signature", function()
        for run = 1, math.max(20, math.floor(RUNS / 5)) do
            local seed = 8300 + run
            local R = rng(seed)
            local data = core.json_decode("{" .. '"d":' .. json(R, 1) .. "}", LEXEMES).d
            local method, uuid = pick(R, { "credit", "debit", "" }), ("u"):rep(R(0, 36))
            local good = core.base64_encode(priv:sign(method .. uuid .. core.trustly_serialize(data), "sha1"))
            local sigs = { good, core.base64_encode(property.mutate(R, core.base64_decode(good))), "", "AAAA", "A===",
                good:sub(2), good .. "=", property.mutate(R, good), ("QUFB"):rep(R(300, 500)) }
            for _, sig in ipairs(sigs) do
                local want = slow(pub, method, uuid, data, sig)
                assert.equal(want, core.trustly_verify(pub, method, uuid, data, sig), "seed " .. seed)
            end
            assert.is_true(core.trustly_verify(pub, method, uuid, data, good), "seed " .. seed)
        end
    end)

    it("raises as the serialization does, naming the caller's function, and on a closed key", function()
        local sig = core.base64_encode(priv:sign("x", "sha1"))
        assert.has_error(function() core.trustly_verify(pub, "m", "u", { a = print }, sig, "trustly.verify", 3) end,
            "trustly.verify: bad argument #3 'data' (a: a function cannot be serialized)")
        assert.is_nil(core.trustly_verify(pub, "m", "u", { a = print }, "!!!!", "trustly.verify", 3))
        local k = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))
        k:close()
        assert.has_error(function() core.trustly_verify(k, "m", "u", {}, sig) end, "luapay.pkey: key is closed")
    end)

    it("is what trustly.verify_notification checks: an altered notification is refused", function()
        local credit = { amount = "49.90", currency = "SEK", messageid = "deposit-0001", notificationid = "9876543210",
            orderid = "1234567890", enduserid = "12345", attributes = {} }
        local raw = trustly.notification("credit", "5f0c6a51-8d2e-4c7b-9a3e-1b2c3d4e5f60", credit, priv)
        assert.is_table(trustly.verify_notification(raw, nil, { trustly_public_key = pub }))
        local altered = raw:gsub('"49.90"', '"49.91"')
        local ev, err = trustly.verify_notification(altered, nil, { trustly_public_key = pub })
        assert.is_nil(ev)
        assert.equal("signature", err.type)
    end)
end)

describe("provider.plain_owned", function()
    it("gives provider.plain's values in the table itself", function()
        for run = 1, RUNS do
            local seed = 8400 + run
            local text = "[" .. json(rng(seed), 1) .. "]"
            for _, as_text in ipairs({ false, true }) do
                local want = provider.plain(core.json_decode(text, LEXEMES), as_text)
                local doc = core.json_decode(text, LEXEMES)
                local got = provider.plain_owned(doc, as_text)
                assert.equal(doc, got, "seed " .. seed)
                assert.is_true(same(want, got), "seed " .. seed)
            end
        end
    end)

    it("leaves deep nesting to provider.plain, with the same answer", function()
        local text = ("["):rep(120) .. "1.5" .. ("]"):rep(120)
        local got = provider.plain_owned(core.json_decode(text, LEXEMES))
        assert.is_true(same(provider.plain(core.json_decode(text, LEXEMES)), got))
    end)
end)

describe("core.base64_decode", function()
    local A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    local function lua_decode(s) -- the reference: strict, canonical padding
        if #s % 4 ~= 0 then return nil end
        local out, bits = {}, {}
        local pad = s:match("=*$")
        if #pad > 2 then return nil end
        local body = s:sub(1, #s - #pad)
        if body:find("[^%w+/]") then return nil end
        for i = 1, #body do bits[#bits + 1] = A:find(body:sub(i, i), 1, true) - 1 end
        for i = 1, #bits, 4 do
            local a, b, c, d = bits[i], bits[i + 1], bits[i + 2] or 0, bits[i + 3] or 0
            local v = ((a * 64 + b) * 64 + c) * 64 + d
            out[#out + 1] = string.char(math.floor(v / 65536))
            if bits[i + 2] then out[#out + 1] = string.char(math.floor(v / 256) % 256) elseif v % 65536 ~= 0 then return nil end
            if bits[i + 3] then out[#out + 1] = string.char(v % 256) elseif bits[i + 2] and v % 256 ~= 0 then return nil end
        end
        return table.concat(out)
    end

    it("decodes as the reference, and refuses what it refuses", function()
        for run = 1, RUNS do
            local seed = 8500 + run
            local R = rng(seed)
            local bytes = {}
            for i = 1, R(0, 40) do bytes[i] = string.char(R(0, 255)) end
            local enc = core.base64_encode(table.concat(bytes))
            local inputs = { enc, property.mutate(R, enc), enc .. pick(R, { "=", "A", "AA==", "!" }) }
            for _, s in ipairs(inputs) do
                local got = core.base64_decode(s)
                assert.equal(lua_decode(s), got, "seed " .. seed .. " " .. s)
            end
            assert.equal(table.concat(bytes), core.base64_decode(enc), "seed " .. seed)
        end
    end)
end)

-- core.trustly_notification against the general path it stands in for:
-- core.json_decode with lexemes, core.trustly_verify over the tree,
-- provider.plain_owned, and the event's members read from the plain data.
describe("core.trustly_notification", function()
    local priv = assert(core.pkey(read("spec/fixtures/keys/merchant_private.pem")))
    local pub = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))
    local function pack(...) return { n = select("#", ...), ... } end
    local function str(v) return type(v) == "string" and v or nil end

    local function general(raw)
        local doc = core.json_decode(raw, LEXEMES)
        local params = type(doc) == "table" and doc.params
        if type(params) ~= "table" or type(doc.method) ~= "string" or type(params.uuid) ~= "string"
            or type(params.signature) ~= "string" then
            return "refused"
        end
        local ok = core.trustly_verify(pub, doc.method, params.uuid, params.data, params.signature)
        if not ok then return ok end
        local data = type(params.data) == "table" and provider.plain_owned(params.data) or {}
        local currency = str(data.currency)
        return true, doc.method, params.uuid, data, currency and str(data.amount) and core.to_minor(data.amount, currency)
            or nil, currency, str(data.orderid), str(data.messageid), str(data.notificationid), str(data.enduserid)
    end

    -- "fast" (answered by the C pass, as the general path answers) or
    -- "general" (left to it); raises where the two differ.
    local function compare(raw, label)
        local fast = pack(core.trustly_notification(pub, raw, trustly.NOTIFICATION_PLAN))
        if fast.n == 0 then return "general" end
        local ok, slow = pcall(function() return pack(general(raw)) end)
        assert(ok, label .. ": the general path raised on a text the C pass took: " .. tostring(slow))
        if fast[1] ~= true then
            assert.equal(1, fast.n, label)
            assert.equal(slow[1], fast[1], label)
            return "fast"
        end
        assert.equal(true, slow[1], label)
        assert.equal(10, fast.n, label)
        for i = 2, 10 do assert.is_true(same(slow[i], fast[i]), label .. ": value " .. i) end
        return "fast"
    end

    local function json_string(s) return (core.json_encode({ s }):sub(2, -2)) end

    -- A signed notification: data's text as given, params' members in any
    -- order, the signature's slashes escaped or not.
    local function signed(R, method, uuid, data_text)
        local data = assert(core.json_decode(data_text, LEXEMES))
        local sig = core.base64_encode(priv:sign(method .. uuid .. core.trustly_serialize(data), "sha1"))
        if R(0, 1) == 1 then sig = sig:gsub("/", "\\/") end
        local members = { '"data":' .. data_text, '"signature":"' .. sig .. '"', '"uuid":' .. json_string(uuid) }
        for i = #members, 2, -1 do
            local j = R(1, i)
            members[i], members[j] = members[j], members[i]
        end
        return ('{"method":%s,"params":{%s},"version":"1.1"}'):format(json_string(method), table.concat(members, ","))
    end

    local KEYS = { "amount", "currency", "orderid", "messageid", "notificationid", "enduserid", "timestamp",
        "attributes", "refund", "verified", '"a\\"b"', '"\\u00e9t\\u00e9"', '"ü"', '"\\ud83d\\ude00"', '"a\\/b"', '""',
        '"amo\\u0075nt"', '"AMOUNT"', '"k\\u0000"', '"x y"' }
    local VALUES = { '"49.90"', '"SEK"', '"1234567890"', '"0"', "null", "49.90", "-0", "1e2", "12345678901234567890",
        '"\\u00e9\\n\\t\\"q\\""', '"Ek \\ud83d\\ude00"', "true", "false", "[]", "{}", '"3.5"', '"JPY"', '"100"' }

    local function data_text(R)
        local parts, used = {}, {}
        for _ = 1, R(0, 12) do
            local k = pick(R, KEYS)
            if k:sub(1, 1) ~= '"' then k = '"' .. k .. '"' end
            if not used[k] or R(1, 10) == 1 then -- a key twice now and then
                used[k] = true
                local v = R(1, 3) == 1 and json(R, 1) or pick(R, VALUES)
                parts[#parts + 1] = k .. (R(0, 1) == 1 and " : " or ":") .. v
            end
        end
        return "{" .. table.concat(parts, R(0, 1) == 1 and ", " or ",") .. "}"
    end

    it("answers as the general path for every notification it takes, and takes the usual ones", function()
        local taken, runs = 0, math.max(40, RUNS)
        for run = 1, runs do
            local seed = 8600 + run
            local R = rng(seed)
            local raw = signed(R, pick(R, { "credit", "debit", "pending", "account", "cancel", "kyc" }),
                pick(R, { "5f0c6a51-8d2e-4c7b-9a3e-1b2c3d4e5f60", "u\\u00e9", "" }), data_text(R))
            if compare(raw, "seed " .. seed) == "fast" then taken = taken + 1 end
            compare(property.mutate(R, raw), "seed " .. seed .. " mutated")
        end
        assert.is_true(taken > runs / 2, ("the C pass took %d of %d"):format(taken, runs))
    end)

    it("takes keys and strings with escapes, unicode, numbers, null, nested data and attributes", function()
        local R = rng(8700)
        for _, data in ipairs({
            '{"amount":"49.90","currency":"SEK","attributes":{"directdebitmandate":"1","b":[1,{"z":null,"a":"\\u00e9"}]}}',
            '{"a\\"b":"\\"","\\u00e9":"ü","\\ud83d\\ude00":"\\ud83d\\ude00","a\\/b":"\\/","":"","k\\u0000":"\\u0000"}',
            '{"n":[1.50,-0,1e2,12345678901234567890,0.1,-7,1E+2],"t":true,"f":false,"z":null,"e":{},"a":[]}',
            '{"amo\\u0075nt":"10.00","currency":"EUR","orderid":1234,"messageid":null,"enduserid":["x"]}',
            '{"zeta":"1","alpha":"2","Alpha":"3","alph":"4","alphabet":"5"}',
        }) do
            local raw = signed(R, "credit", "5f0c6a51-8d2e-4c7b-9a3e-1b2c3d4e5f60", data)
            assert.equal("fast", compare(raw, data))
            assert.is_true((core.trustly_notification(pub, raw, trustly.NOTIFICATION_PLAN)), data)
        end
    end)

    it("says false for a signature that does not match and nil for one that is not base64, as the general path", function()
        local R = rng(8701)
        local raw = signed(R, "credit", "u-1", '{"amount":"1.00","currency":"EUR"}')
        local wrong = raw:gsub('"1%.00"', '"1.01"')
        assert.equal("fast", compare(wrong, "altered"))
        assert.is_false(core.trustly_notification(pub, wrong, trustly.NOTIFICATION_PLAN))
        local not_b64 = raw:gsub('"signature":"[^"]*"', '"signature":"!!!!"')
        assert.equal("fast", compare(not_b64, "not base64"))
        assert.is_nil((core.trustly_notification(pub, not_b64, trustly.NOTIFICATION_PLAN)))
        assert.equal(1, select("#", core.trustly_notification(pub, not_b64, trustly.NOTIFICATION_PLAN)))
    end)

    it("picks the members the plan names (luapay.trustly's: the C core knows no provider's field names)", function()
        local R = rng(8703)
        local plan = core.trustly_notification_plan({ "sum", "cur", "ref" }, { "note" })
        local raw = signed(R, "credit", "u-2", '{"sum":"12.50","cur":"EUR","ref":"R-1","note":"n","amount":"9.00"}')
        local got = { core.trustly_notification(pub, raw, plan) }
        assert.same({ true, "credit", "u-2", { sum = "12.50", cur = "EUR", ref = "R-1", note = "n", amount = "9.00" },
            1250, "EUR", "R-1" }, got)
        assert.equal(7, select("#", core.trustly_notification(pub, raw, plan)))
        -- luapay.trustly's own plan reads "amount" and "currency": no currency here, no amount
        local own = { core.trustly_notification(pub, raw, trustly.NOTIFICATION_PLAN) }
        assert.is_true(own[1])
        assert.is_nil(own[5]) -- the amount
        assert.is_nil(own[6]) -- the currency
        assert.has_error(function() core.trustly_notification_plan({ "amount" }, {}) end,
            "trustly_notification_plan: bad argument #1 'picks' (2 to 16 names expected)")
        assert.has_error(function() core.trustly_notification_plan({ "amount", "amount" }, {}) end,
            "trustly_notification_plan: bad argument #1 'picks' (a name given twice)")
        assert.has_error(function() core.trustly_notification_plan({ "amount", "currency" }, { "" }) end,
            "trustly_notification_plan: bad argument #2 'others' (field names (non-empty strings) expected)")
        assert.has_error(function() core.trustly_notification(pub, raw, {}) end)
    end)

    it("leaves to the general path what is out of its reach, which still answers", function()
        local R = rng(8702)
        local sig = signed(R, "credit", "u", "{}"):match('"signature":"([^"]*)"')
        local deep = ('{"a":'):rep(40) .. '"x"' .. ("}"):rep(40)
        local many = "[" .. ("1,"):rep(600) .. "1]"
        for label, raw in pairs({
            ["a key of data twice"] = signed(R, "credit", "u", '{"amount":"1.00","amount":"2.00","currency":"EUR"}'),
            ["a key of a nested object twice"] = signed(R, "credit", "u", '{"attributes":{"a":"1","a":"2"}}'),
            ["method twice"] = signed(R, "credit", "u", "{}"):gsub('^{"method":"credit",', '{"method":"debit","method":"credit",'),
            ["uuid twice"] = (signed(R, "credit", "u", "{}"):gsub('"uuid":', '"uuid":"v","uuid":', 1)),
            ["data twice"] = (signed(R, "credit", "u", "{}"):gsub('"data":', '"data":{"a":"1"},"data":', 1)),
            ["nesting past the C pass's depth"] = signed(R, "credit", "u", deep),
            ["more values than it keeps"] = signed(R, "credit", "u", '{"a":' .. many .. "}"),
            ["data an array"] = signed(R, "credit", "u", "[1,2]"),
            ["data a string"] = signed(R, "credit", "u", '"x"'),
            ["no data"] = '{"method":"credit","params":{"signature":"' .. sig .. '","uuid":"u"}}',
            ["no signature"] = '{"method":"credit","params":{"data":{},"uuid":"u"}}',
            ["uuid a number"] = '{"method":"credit","params":{"data":{},"signature":"' .. sig .. '","uuid":1}}',
            ["not an object"] = '["credit"]',
            ["a trailing comma"] = '{"method":"credit","params":{"data":{},"signature":"' .. sig .. '","uuid":"u",}}',
            ["text after the value"] = '{"method":"credit","params":{"data":{},"signature":"' .. sig .. '","uuid":"u"}} x',
            ["a raw control character"] = '{"method":"cre\1dit","params":{"data":{},"signature":"' .. sig .. '","uuid":"u"}}',
            ["invalid UTF-8"] = '{"method":"cr\255edit","params":{"data":{},"signature":"' .. sig .. '","uuid":"u"}}',
            ["a lone surrogate"] = '{"method":"\\ud800","params":{"data":{},"signature":"' .. sig .. '","uuid":"u"}}',
            ["a bad number"] = '{"method":"credit","params":{"data":{"a":01},"signature":"' .. sig .. '","uuid":"u"}}',
            ["a long signature"] = '{"method":"credit","params":{"data":{},"signature":"' .. ("QUFB"):rep(400)
                .. '","uuid":"u"}}',
        }) do
            assert.equal(0, select("#", core.trustly_notification(pub, raw, trustly.NOTIFICATION_PLAN)), label)
        end
        -- and the general path reads those it can: the last of a key given twice
        local twice = signed(R, "credit", "u", '{"amount":"1.00","amount":"2.00","currency":"EUR"}')
        local event = assert(trustly.verify_notification(twice, nil, { trustly_public_key = pub }))
        assert.equal(200, event.amount)
        assert.is_table(trustly.verify_notification(signed(R, "credit", "u", deep), nil, { trustly_public_key = pub }))
    end)

    -- luapay.trustly loaded again with the C pass switched off: the general path alone.
    local function general_trustly()
        local saved, fast = package.loaded["luapay.trustly"], core.trustly_notification
        package.loaded["luapay.trustly"] = nil
        core.trustly_notification = function() end
        local ok, mod = pcall(require, "luapay.trustly")
        core.trustly_notification, package.loaded["luapay.trustly"] = fast, saved
        assert(ok, mod)
        return mod
    end

    -- LuaJIT: the trace stitched at the C call runs to the event (a tail
    -- call to setmetatable there aborted it: NYI, return to lower frame)
    local jit_it = rawget(_G, "jit") and it or pending
    jit_it("leaves verify_notification's traces whole under LuaJIT", function()
        local R = rng(8799)
        local raw = signed(R, "credit", "5f0c6a51-8d2e-4c7b-9a3e-1b2c3d4e5f60",
            '{"amount":"49.90","currency":"SEK","orderid":"1","messageid":"m","notificationid":"n","enduserid":"e"}')
        local keys = { trustly_public_key = pub }
        local vmdef, funcinfo = require("jit.vmdef"), require("jit.util").funcinfo
        local aborts, started = {}, {}
        -- An abort counts where it happens in luapay's trustly.lua or
        -- provider.lua, or in a built-in (no source) on a trace started
        -- there; one in busted's code (its environment's lookups, a
        -- blacklisted loop of its own) is not the verifier's shape.
        local function ours(source)
            return source:find("luapay/trustly.lua", 1, true) or source:find("luapay/provider.lua", 1, true)
        end
        local function on_trace(what, tr, func, pc, code, info)
            if what == "start" then started[tr] = funcinfo(func, pc).source or "?" end
            if what ~= "abort" then return end
            local source = funcinfo(func, pc).source or "?"
            local why = vmdef.traceerr[code] or tostring(code)
            if type(info) == "number" and why:find("%%d") then why = why:format(info) end
            if not why:find("hook called during recording", 1, true) -- a finalizer ran: not the code's shape
                and (ours(source) or (source == "?" and ours(started[tr] or "?"))) then
                aborts[#aborts + 1] = source .. " (started in " .. (started[tr] or "?") .. "): " .. why
            end
        end
        local verify, check = trustly.verify_notification, assert -- no global lookups through busted in the loop
        jit.flush()
        jit.attach(on_trace, "trace")
        local ok, err = pcall(function()
            for _ = 1, 300 do check(verify(raw, nil, keys)) end
        end)
        jit.attach(on_trace)
        assert(ok, err)
        assert.same({}, aborts)
    end)

    it("gives verify_notification the event and the answer the general path gives", function()
        local slow = general_trustly()
        assert.are_not.equal(slow, trustly)
        local client = trustly.new{ username = "u", password = "p", private_key = priv, trustly_public_key = pub,
            transport = function() end }
        local base = { amount = '"49.90"', currency = '"SEK"', orderid = '"1234567890"', messageid = '"deposit-0001"',
            notificationid = '"9876543210"', enduserid = '"12345"', timestamp = '"2024-05-01 12:34:56.789012+02"' }
        local METHODS = { "credit", "debit", "pending", "cancel", "account", "payoutconfirmation", "kyc" }
        for run = 1, math.max(30, math.floor(RUNS / 4)) do
            local seed = 8800 + run
            local R = rng(seed)
            -- by run: R's first draw is a multiple of 16807 = 7^5, which picked "credit" every time
            local method = METHODS[run % #METHODS + 1]
            local parts = {}
            for k, v in pairs(base) do
                if R(1, 6) > 1 then parts[#parts + 1] = ('"%s":%s'):format(k, v) end
            end
            local extra = pick(R, { '"refund":"1"', '"refund":1', '"verified":"1"', '"attributes":{}',
                '"attributes":{"directdebitmandate":"0"}', '"attributes":{"directdebitmandate":"1"}', '"amount":49.90',
                '"currency":"JPY"', '"x":[1,{"y":null}]' })
            parts[#parts + 1] = extra
            local raw = signed(R, method, "5f0c6a51-8d2e-4c7b-9a3e-1b2c3d4e5f60", "{" .. table.concat(parts, ",") .. "}")
            -- a store that knows a refund on the order, for credits and payout confirmations
            local stores, refunded = {}, R(0, 1) == 1
            for i = 1, 2 do
                stores[i] = trustly.memory_store()
                if refunded then trustly.record_refund(stores[i], "1234567890", 4990, "SEK") end
            end
            if R(0, 1) == 1 then stores = {} end
            local want, werr = slow.verify_notification(raw, nil, { trustly_public_key = pub, store = stores[1] })
            local got, gerr = trustly.verify_notification(raw, nil, { trustly_public_key = pub, store = stores[2] })
            local label = "seed " .. seed .. " " .. raw:sub(1, 200)
            -- without a store, what meaning says with an empty one (verify_notification skips its call
            -- where it has nothing to look at)
            local bare = trustly.verify_notification(raw, nil, { trustly_public_key = pub })
            local empty = trustly.verify_notification(raw, nil, { trustly_public_key = pub, store = trustly.memory_store() })
            assert.is_true(same(empty, bare), label)
            if want then
                assert.is_true(same(want, got), label)
                -- built without provider.make_event: the event it builds, its checks holding
                for _, e in ipairs({ want, got }) do
                    local ok, made = pcall(provider.make_event, "trustly", e.kind, e.status, e.merchant_ref,
                        e.provider_ref, e.amount, e.currency, raw, e.extra)
                    assert(ok, label .. ": " .. tostring(made))
                    assert.equal(provider.event_mt, getmetatable(e))
                    assert.is_true(same(made, e), label)
                end
                assert.same(client:notification_response(want, true), client:notification_response(got, true))
            else
                assert.is_nil(got, label)
                assert.equal(werr.type, gerr.type, label)
                assert.equal(werr.message, gerr.message, label)
            end
        end
    end)
end)
