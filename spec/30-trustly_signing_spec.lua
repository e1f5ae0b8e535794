-- Trustly's signatures: the serialization in the C core, every vector of
-- spec/fixtures/vectors/trustly.json, the envelopes byte for byte, and the
-- public keys luapay ships for Trustly's two environments.
local core = require "luapay.core"
local trustly = require "luapay.trustly"
local util = require "support.util"

local raw_vectors = util.fixture("vectors/trustly.json")
-- Numbers keep their text ("decimal": 12.5 is signed as "12.5").
local V = assert(core.json_decode(raw_vectors, { numbers = "lexeme" }))

local function key_file(vector_path) -- "keys/test/merchant_private.pem" -> fixture text
    return util.fixture("keys/" .. vector_path:match("([^/]+%.pem)$"))
end

local merchant_private = util.fixture("keys/merchant_private.pem")
local merchant_public = util.fixture("keys/merchant_public.pem")
local provider_private = util.fixture("keys/provider_private.pem")
local provider_public = util.fixture("keys/provider_public.pem")

describe("trustly.serialize", function()
    it("emits object keys in byte order, each key then its value", function()
        assert.equal("A1B2_3a4b5", trustly.serialize({ b = "5", a = "4", _ = "3", B = "2", A = "1" }))
        assert.equal("a11a101a92", trustly.serialize({ a9 = "2", a10 = "1", a1 = "1" }))
        -- a prefix sorts before its extensions; bytes above 0x7F after ASCII
        assert.equal("abxabcyzé", trustly.serialize({ ["é"] = "", abc = "y", ab = "x", z = "" }))
    end)

    it("emits arrays in order without indexes, nested to any level", function()
        assert.equal("abc", trustly.serialize({ "a", "b", "c" }))
        assert.equal("k1x2y3z", trustly.serialize({ k = { "1", { x = "2", y = { "3" } }, "z" } }))
        assert.equal("k1x2y3z", trustly.serialize({ k = { "1", { y = { "3" }, x = "2" }, "z" } }))
    end)

    it("turns null, {} and [] into nothing but keeps the member's key", function()
        assert.equal("ab", trustly.serialize({ a = core.null, b = {} }))
        assert.equal("ab", trustly.serialize({ a = setmetatable({}, core.array_mt), b = "" }))
        assert.equal("xy", trustly.serialize({ "x", core.null, "y" }))
        assert.equal("", trustly.serialize({}))
        assert.equal("", trustly.serialize(core.null))
        assert.equal("", trustly.serialize(nil))
    end)

    it("writes numbers as core.json_encode sends them, and number objects as their text", function()
        assert.equal("a616b-42c12.5d0", trustly.serialize({ a = 616, b = -42, c = 12.5, d = 0 }))
        assert.equal("a616", trustly.serialize({ a = 616.0 }))
        assert.equal("m1E+2n100.0", trustly.serialize({ n = core.json_number("100.0"), m = core.json_number("1E+2") }))
        for _, v in ipairs({ 0.1, 1 / 3, -2.5e-7, 123456789012345, 2 ^ 53, 1e300 }) do
            local sent = core.json_encode({ v })
            assert.equal(sent:sub(2, -2), trustly.serialize({ v }))
        end
    end)

    it("writes booleans as true and false (the vectors' convention)", function()
        assert.equal("atruebfalse", trustly.serialize({ a = true, b = false }))
    end)

    it("keeps strings raw: no quotes, escapes or normalisation", function()
        local s = 'q"b\\s/n\nt\tu\0é€😀'
        assert.equal("k" .. s, trustly.serialize({ k = s }))
    end)

    it("raises with the path of a value it cannot serialize", function()
        local cases = {
            { { Attributes = { Amount = print } }, "Attributes%.Amount: a function cannot be serialized" },
            { { a = { "x", { b = 0 / 0 } } }, "a%[2%]%.b: NaN and infinity" },
            { { a = { 1, 2, x = 1 } }, "a: a table mixes array and object keys" },
            { { [1] = "a", [3] = "b" }, "a table mixes array and object keys" },
            { { a = setmetatable({ x = 1 }, core.array_mt) }, "a: a table mixes" },
            { { a = io.stdout }, "a: a userdata cannot be serialized" },
        }
        for _, case in ipairs(cases) do
            local ok, err = pcall(trustly.serialize, case[1])
            assert.is_false(ok)
            assert.matches("^trustly%.serialize: bad argument #1 'data' %(", (err:gsub("^[^\n]-:%d+: ", "", 1)))
            assert.matches(case[2], err)
        end
        local cycle = {}
        cycle.self = cycle
        local ok, err = pcall(trustly.serialize, cycle)
        assert.is_false(ok)
        assert.matches("self: a table contains itself (a cycle)", err, 1, true)
    end)

    it("serializes a large tree exactly like a reference written in Lua", function()
        local function reference(v)
            if v == nil or v == core.null then return "" end
            if type(v) ~= "table" then return tostring(v) end
            if #v > 0 then
                local out = {}
                for i = 1, #v do out[i] = reference(v[i]) end
                return table.concat(out)
            end
            local ks, out = {}, {}
            for k in pairs(v) do ks[#ks + 1] = k end
            table.sort(ks)
            for _, k in ipairs(ks) do out[#out + 1] = k .. reference(v[k]) end
            return table.concat(out)
        end
        local tree = {}
        for i = 1, 300 do
            local k = core.hex_encode(core.random_bytes(1 + i % 7))
            tree[k] = (i % 3 == 0) and { core.hex_encode(core.random_bytes(3)), { z = "1", a = tostring(i) } }
                or (i % 3 == 1) and { ["k" .. i] = "v" .. i, [k] = core.null }
                or core.hex_encode(core.random_bytes(i % 11))
        end
        assert.equal(reference(tree), trustly.serialize(tree))
        -- past the stack a C function may use under LuaJIT and Lua 5.1
        -- (8000 slots: about 4000 kept values), which raised there
        local wide = {}
        for i = 1, 20000 do wide["k" .. i] = (i % 3 == 0) and { a = tostring(i), b = { "x", "y" } } or "v" .. i end
        wide.deep = {}
        for _ = 1, 60 do wide.deep = { d = wide.deep } end
        assert.equal(reference(wide), trustly.serialize(wide))
    end)

    it("reads a notification whose data has thousands of members: an error for a bad signature, not a raise", function()
        local members = {}
        for i = 1, 5000 do members[i] = ('"k%d":"v"'):format(i) end
        local body = '{"method":"credit","params":{"signature":"AAAA","uuid":"u","data":{'
            .. table.concat(members, ",") .. '}},"version":"1.1"}'
        local event, err = trustly.verify_notification(body, nil, { trustly_public_key = merchant_public })
        assert.is_nil(event)
        assert.equal("signature", err.type)
    end)
end)

describe("trustly vectors", function()
    assert.is_true(#V.vectors >= 12)

    for _, v in ipairs(V.vectors) do
        describe(v.name, function()
            it("serializes and builds the plaintext", function()
                assert.equal(v.serialized, trustly.serialize(v.data))
                assert.equal(v.plaintext, trustly.plaintext(v.method, v.uuid, v.data))
            end)

            it("signs byte for byte and verifies with the public key", function()
                local private = key_file(v.signing_key)
                local public = key_file(v.signing_key:gsub("private", "public"))
                assert.equal(v.signature_base64, trustly.sign(v.method, v.uuid, v.data, private))
                assert.is_true(trustly.verify(v.method, v.uuid, v.data, v.signature_base64, public))
                assert.is_true(trustly.verify(v.method, v.uuid, v.data, v.signature_base64, assert(core.pkey(public))))
            end)

            it("rejects the signature for altered data, method or uuid", function()
                local public = key_file(v.signing_key:gsub("private", "public"))
                local ok, err = trustly.verify(v.method .. "x", v.uuid, v.data, v.signature_base64, public)
                assert.is_nil(ok)
                assert.equal("signature", err.type)
                local other_uuid = v.uuid:sub(1, -2) .. (v.uuid:sub(-1) == "0" and "1" or "0")
                assert.is_nil(trustly.verify(v.method, other_uuid, v.data, v.signature_base64, public))
                -- a signature for the same plaintext is not one for another serialization
                local altered = util.json_fixture("vectors/trustly.json") -- numbers as Lua numbers
                for _, w in ipairs(altered.vectors) do
                    if w.name == v.name and next(w.data) then
                        w.data.__extra = "x"
                        assert.is_nil(trustly.verify(v.method, v.uuid, w.data, v.signature_base64, public))
                    end
                end
            end)
        end)
    end

    it("sign with the decoded-as-numbers vectors (cjson) gives the same signatures", function()
        local plain = util.json_fixture("vectors/trustly.json")
        for _, v in ipairs(plain.vectors) do
            assert.equal(v.signature_base64, trustly.sign(v.method, v.uuid, v.data, key_file(v.signing_key)), v.name)
        end
    end)

    it("verify refuses a signature that is not base64 or is empty", function()
        local v = V.vectors[1]
        local ok, err = trustly.verify(v.method, v.uuid, v.data, "not base64!", merchant_public)
        assert.is_nil(ok)
        assert.equal("signature", err.type)
        assert.matches("base64", err.message)
        assert.is_nil((trustly.verify(v.method, v.uuid, v.data, "", merchant_public)))
        assert.is_nil((trustly.verify(v.method, v.uuid, v.data, nil, merchant_public)))
    end)

    it("raises on misuse: a public key to sign with, a non-key, a non-string method", function()
        local v = V.vectors[1]
        assert.has_error(function() trustly.sign(v.method, v.uuid, v.data, merchant_public) end,
            "trustly.sign: bad argument #4 'private_key' (a private key is needed to sign)")
        assert.error_matches(function() trustly.sign(v.method, v.uuid, v.data, "not a key") end, "no PEM block")
        assert.error_matches(function() trustly.verify(v.method, v.uuid, v.data, "x", 42) end, "PEM string or a core.pkey")
        assert.error_matches(function() trustly.sign(nil, v.uuid, v.data, merchant_private) end, "'method' %(string expected")
    end)
end)

describe("trustly envelopes", function()
    local E = V.envelopes

    -- The wire form luapay sends: core.json_encode (sorted keys, no spaces).
    local function wire(doc) return assert(core.json_encode(doc)) end

    it("builds the signed Deposit request byte for byte", function()
        local doc = E.deposit_request.json
        local text = trustly.request(doc.method, doc.params.UUID, doc.params.Data, merchant_private)
        assert.equal(wire(doc), text)
        assert.equal(E.deposit_request.json.params.Signature, core.json_decode(text).params.Signature)
    end)

    it("builds and reads the Deposit success answer", function()
        local doc = E.deposit_response_success.json
        local r = doc.result
        assert.equal(wire(doc), trustly.answer(r.method, r.uuid, r.data, provider_private))
        assert.equal(E.deposit_response_success.plaintext, trustly.plaintext(r.method, r.uuid, r.data))
        local data = assert(trustly.read_answer(wire(doc), "Deposit", r.uuid, provider_public))
        assert.same({ orderid = "2190971587", url = r.data.url }, data)
        -- the answer as printed in the vectors file (indented, other key order) verifies too
        local printed = raw_vectors:match('"deposit_response_success"%s*:%s*{.-"json"%s*:%s*(%b{})')
        assert.same(data, assert(trustly.read_answer(printed, "Deposit", r.uuid, provider_public)))
    end)

    it("refuses the answer for another uuid, another method or with another key", function()
        local r = E.deposit_response_success.json.result
        local raw = wire(E.deposit_response_success.json)
        local _, err = trustly.read_answer(raw, "Deposit", "258a2184-2842-4b85-85ca-293525152426", provider_public)
        assert.equal("signature", err.type)
        assert.matches("uuid", err.message)
        _, err = trustly.read_answer(raw, "Refund", r.uuid, provider_public)
        assert.equal("signature", err.type)
        _, err = trustly.read_answer(raw, "Deposit", r.uuid, trustly.keys.test)
        assert.equal("signature", err.type)
        local tampered = raw:gsub("2190971587", "2190971588", 1)
        _, err = trustly.read_answer(tampered, "Deposit", r.uuid, provider_public)
        assert.equal("signature", err.type)
    end)

    it("builds and reads the signed 616 error", function()
        local doc = E.deposit_response_signed_error.json
        local inner = doc.error.error
        assert.equal(wire(doc), trustly.error_answer(inner.method, inner.uuid, 616, "ERROR_INVALID_CREDENTIALS", provider_private))
        assert.equal(E.deposit_response_signed_error.plaintext, trustly.plaintext(inner.method, inner.uuid, inner.data))
        local data, err = trustly.read_answer(wire(doc), "Deposit", inner.uuid, provider_public)
        assert.is_nil(data)
        assert.equal("provider", err.type)
        assert.equal(616, err.code)
        assert.equal("ERROR_INVALID_CREDENTIALS", err.name)
        assert.is_true(err.signed)
        assert.equal(inner.uuid, err.request_id)
    end)

    it("reports an unsigned protocol error as unsigned, and a forged signed error as a signature failure", function()
        local unsigned = '{"version":"1.1","error":{"name":"JSONRPCError","code":620,"message":"ERROR_UNKNOWN",'
            .. '"error":{"signature":null,"uuid":null,"method":null,"data":{"code":620,"message":"ERROR_UNKNOWN"}}}}'
        local _, err = trustly.read_answer(unsigned, "Deposit", "u-1", provider_public)
        assert.equal("provider", err.type)
        assert.equal(620, err.code)
        assert.is_false(err.signed)
        local forged = wire(E.deposit_response_signed_error.json):gsub("616", "623")
        _, err = trustly.read_answer(forged, "Deposit", E.deposit_response_signed_error.json.error.error.uuid, provider_public)
        assert.equal("signature", err.type)
    end)

    it("builds the credit notification and reads it into the common event", function()
        local doc = E.notification_request_credit.json
        local p = doc.params
        local text = trustly.notification(doc.method, p.uuid, p.data, provider_private)
        assert.equal(wire(doc), text)
        assert.equal(E.notification_request_credit.serialized, trustly.serialize(p.data))
        local note = assert(trustly.verify_notification(text, { ["Content-Type"] = "application/json" },
            { trustly_public_key = provider_public }))
        local fields = {}
        for k, v in pairs(note) do fields[k] = v end -- its own fields, without the metatable
        assert.same({
            provider = "trustly", kind = "payment", status = "succeeded",
            merchant_ref = "deposit-0001", provider_ref = "1234567890", amount = 4990, currency = "SEK",
            raw = text,
            extra = {
                method = "credit", uuid = p.uuid, notificationid = "9876543210",
                orderid = "1234567890", messageid = "deposit-0001", enduserid = "12345",
                data = {
                    amount = "49.90", currency = "SEK", messageid = "deposit-0001", orderid = "1234567890",
                    enduserid = "12345", notificationid = "9876543210", timestamp = "2024-05-01 12:34:56.789012+02",
                    attributes = {},
                },
            },
        }, fields)
        assert.equal(require("luapay.provider").event_mt, getmetatable(note))
        assert.equal("credit", note.method) -- the extras still read from the top until 0.3 (deprecated)
    end)

    it("keeps the deprecated read_notification(raw, public_key [, store]) working until 0.3", function()
        local text = wire(E.notification_request_credit.json)
        local note = assert(trustly.read_notification(text, provider_public, trustly.memory_store()))
        assert.same(assert(trustly.verify_notification(text, nil, { trustly_public_key = provider_public })), note)
        local _, err = trustly.read_notification(text:gsub('"49.90"', '"49.99"'), provider_public)
        assert.equal("signature", err.type)
        assert.error_matches(function() trustly.read_notification({}, provider_public) end,
            "trustly.read_notification: bad argument #1 'raw_body'", 1, true)
    end)

    it("raises on misuse of verify_notification, naming it and the argument", function()
        local text = wire(E.notification_request_credit.json)
        local keys = { trustly_public_key = provider_public }
        assert.has_error(function() trustly.verify_notification(nil, nil, keys) end,
            "trustly.verify_notification: bad argument #1 'raw_body' (string expected, got nil)")
        assert.has_error(function() trustly.verify_notification(text, "x", keys) end,
            "trustly.verify_notification: bad argument #2 'headers' (a table or nil expected, got string)")
        assert.has_error(function() trustly.verify_notification(text, nil, provider_public) end,
            "trustly.verify_notification: bad argument #3 'keys' ({trustly_public_key = ..., store = ...} expected, got string)")
        assert.error_matches(function() trustly.verify_notification(text, nil, {}) end,
            "trustly.verify_notification: bad argument #3 'keys' (keys.trustly_public_key: ", 1, true)
        assert.has_error(function() trustly.verify_notification(text, nil, { trustly_public_key = provider_public, store = 1 }) end,
            "trustly.verify_notification: bad argument #3 'keys' (keys.store: get and set expected)")
    end)

    it("answers the notification with the signed OK and FAILED documents byte for byte", function()
        local p = E.notification_request_credit.json.params
        assert.equal(wire(E.notification_response_ok.json), trustly.notification_response("credit", p.uuid, "OK", merchant_private))
        assert.equal(wire(E.notification_response_failed.json), trustly.notification_response("credit", p.uuid, "FAILED", merchant_private))
        assert.equal(E.notification_response_ok.plaintext, trustly.plaintext("credit", p.uuid, { status = "OK" }))
        assert.error_matches(function() trustly.notification_response("credit", p.uuid, "ok", merchant_private) end, "OK")
    end)

    it("rejects a tampered notification, one signed with another key, and garbage", function()
        local text = wire(E.notification_request_credit.json)
        local tampered = text:gsub('"49.90"', '"49.99"')
        local keys = { trustly_public_key = provider_public }
        local note, err = trustly.verify_notification(tampered, nil, keys)
        assert.is_nil(note)
        assert.equal("signature", err.type)
        assert.is_nil((trustly.verify_notification(text, nil, { trustly_public_key = merchant_public })))
        for _, junk in ipairs({ "", "{}", "[1]", "not json", '{"method":"credit","params":{}}' }) do
            note, err = trustly.verify_notification(junk, nil, keys)
            assert.is_nil(note)
            assert.equal("signature", err.type)
        end
    end)
end)

describe("Trustly's published public keys", function()
    -- SHA-256 of the DER SubjectPublicKeyInfo, from the protocol notes
    local expected = {
        test = "3c45411e0532933c3c97215b375d238c08b6a06d40793999444f6459c917a935",
        live = "7e09f288f4ed5b6e31c4665efe9b364347083ad8d03427d2d1cfb963ce7551c5",
    }

    for env, fingerprint in pairs(expected) do
        it(env .. " has the published fingerprint and is a 2048-bit RSA public key", function()
            local pem = trustly.keys[env]
            local b64 = assert(pem:match("^%-%-%-%-%-BEGIN PUBLIC KEY%-%-%-%-%-\n(.-)\n%-%-%-%-%-END PUBLIC KEY%-%-%-%-%-\n$"))
            local der = assert(core.base64_decode((b64:gsub("\n", ""))))
            assert.equal(fingerprint, core.digest("sha256", der, "hex"))
            assert.equal(fingerprint, trustly.keys.fingerprints[env])
            local key = assert(core.pkey(pem))
            assert.equal(2048, key:bits())
            assert.is_false(key:is_private())
        end)
    end

    it("are the keys the client uses by default for each environment", function()
        for _, env in ipairs({ "test", "live" }) do
            local c = trustly.new{ username = "u", password = "p", private_key = merchant_private, environment = env }
            assert.equal(trustly.load_key(trustly.keys[env]), c.trustly_public_key)
            assert.equal(trustly.ENDPOINTS[env], c.url)
            -- the fake's key is not Trustly's: its signatures fail against the bundled key
            local sig = core.base64_encode(assert(core.pkey(provider_private)):sign("mu", "sha1"))
            assert.is_nil((trustly.verify("m", "u", {}, sig, c.trustly_public_key)))
            assert.is_true(trustly.verify("m", "u", {}, sig, provider_public))
            local own = trustly.new{ username = "u", password = "p", private_key = merchant_private, environment = env,
                                     trustly_public_key = provider_public }
            assert.are_not.equal(c.trustly_public_key, own.trustly_public_key)
        end
        assert.equal("https://test.trustly.com/api/1", trustly.ENDPOINTS.test)
        assert.equal("https://api.trustly.com/1", trustly.ENDPOINTS.live)
    end)
end)
