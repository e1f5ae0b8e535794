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
