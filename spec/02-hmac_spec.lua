local core = require "luapay.core"
local util = require "support.util"
local H = util.fromhex

-- RFC 4231 section 4 (HMAC-SHA-256 and HMAC-SHA-512) and RFC 2202 section 3
-- (HMAC-SHA-1). Case 5 of RFC 4231 is truncated to 128 bits by the RFC.
-- Each digest on one line, as the RFC prints it, whatever the line's length.
local aa131 = ("\170"):rep(131)
-- luacheck: push no max line length
local rfc4231 = {
    { key = ("\11"):rep(20), data = "Hi There",
      sha256 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      sha512 = "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854" },
    { key = "Jefe", data = "what do ya want for nothing?",
      sha256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      sha512 = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737" },
    { key = ("\170"):rep(20), data = ("\221"):rep(50),
      sha256 = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
      sha512 = "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb" },
    { key = H"0102030405060708090a0b0c0d0e0f10111213141516171819", data = ("\205"):rep(50),
      sha256 = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
      sha512 = "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd" },
    { key = ("\12"):rep(20), data = "Test With Truncation", truncate = 16,
      sha256 = "a3b6167473100ee06e0c796c2955552b",
      sha512 = "415fad6271580a531d4179bc891d87a6" },
    { key = aa131, data = "Test Using Larger Than Block-Size Key - Hash Key First",
      sha256 = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      sha512 = "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598" },
    { key = aa131, data = "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
      sha256 = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
      sha512 = "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58" },
}
-- luacheck: pop

local aa80 = ("\170"):rep(80)
local rfc2202 = {
    { ("\11"):rep(20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00" },
    { "Jefe", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" },
    { ("\170"):rep(20), ("\221"):rep(50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3" },
    { H"0102030405060708090a0b0c0d0e0f10111213141516171819", ("\205"):rep(50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da" },
    { ("\12"):rep(20), "Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04" },
    { aa80, "Test Using Larger Than Block-Size Key - Hash Key First", "aa4ae5e15272d00e95705637ce8a3b55ed402112" },
    { aa80, "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data", "e8e99d0f45237d786d6bbaa7965c7808bbff1a91" },
}

describe("core.hmac", function()
    for i, v in ipairs(rfc4231) do
        for _, alg in ipairs({ "sha256", "sha512" }) do
            it(("matches RFC 4231 test case %d for %s"):format(i, alg), function()
                local mac = core.hmac(alg, v.key, v.data, "hex")
                if v.truncate then mac = mac:sub(1, 2 * v.truncate) end
                assert.equal(v[alg], mac)
            end)
        end
    end

    for i, v in ipairs(rfc2202) do
        it(("matches RFC 2202 test case %d for sha1"):format(i), function()
            assert.equal(v[3], core.hmac("sha1", v[1], v[2], "hex"))
        end)
    end

    it("gives raw bytes by default and every encoding of the same MAC", function()
        local raw = core.hmac("sha512", "Jefe", "what do ya want for nothing?")
        assert.equal(64, #raw)
        assert.equal(raw, core.hmac("sha512", "Jefe", "what do ya want for nothing?", "raw"))
        assert.equal(core.hex_encode(raw), core.hmac("sha512", "Jefe", "what do ya want for nothing?", "hex"))
        assert.equal(core.hex_encode(raw, true), core.hmac("sha512", "Jefe", "what do ya want for nothing?", "HEX"))
        assert.equal(core.base64_encode(raw), core.hmac("sha512", "Jefe", "what do ya want for nothing?", "base64"))
    end)

    it("accepts empty keys and messages and keys with NUL bytes", function()
        assert.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad",
            core.hmac("sha256", "", "", "hex"))
        assert.are_not.equal(core.hmac("sha256", "a\0b", "m"), core.hmac("sha256", "a", "m"))
    end)
end)

describe("core.digest", function()
    it("hashes 'abc' as FIPS 180 says", function()
        assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", core.digest("sha1", "abc", "hex"))
        assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.digest("sha256", "abc", "hex"))
        assert.equal("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", core.digest("sha512", "abc", "hex"))
    end)

    it("hashes the empty string", function()
        assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.digest("sha256", "", "hex"))
    end)
end)

describe("core.hmac with keyed states kept between calls", function()
    -- RFC 4231 test case 2 under SHA-256, and OpenSSL's one-shot answers for the rest.
    it("gives each key its own MAC when keys and algorithms alternate, beyond the keys kept", function()
        local keys = {}
        for i = 1, 20 do keys[i] = ("k"):rep(i) end
        keys[21], keys[22] = "", ("x"):rep(300) -- empty, and longer than a block (hashed first)
        local want = {}
        for i, k in ipairs(keys) do
            want[i] = { core.hmac("sha1", k, "msg" .. i, "hex"), core.hmac("sha256", k, "msg" .. i, "hex"),
                core.hmac("sha512", k, "msg" .. i, "hex") }
        end
        for round = 1, 3 do
            for i = #keys, 1, -1 do
                local j = (i * 7 + round) % #keys + 1
                assert.equal(want[j][round], core.hmac(({ "sha1", "sha256", "sha512" })[round], keys[j], "msg" .. j, "hex"))
            end
        end
        assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            core.hmac("sha256", "Jefe", "what do ya want for nothing?", "hex"))
        assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            core.hmac("sha256", "Jefe", "what do ya want for nothing?", "hex"))
        assert.are_not.equal(core.hmac("sha256", "Jeff", "m", "hex"), core.hmac("sha256", "Jefe", "m", "hex"))
    end)
end)

describe("core.hmac against RFC 2104 over core.digest", function()
    -- HMAC is built from the digest's keyed states (hash.c): compared with
    -- H((K ~ opad) .. H((K ~ ipad) .. msg)) written here, over random keys
    -- around the block sizes (64, 128) and messages, each key twice (the
    -- second time from the cache).
    local property = require "support.property"
    local BLOCK = { sha1 = 64, sha256 = 64, sha512 = 128 }
    local function bxor(a, b) -- bytes, without bit operators (Lua 5.1)
        local r, p = 0, 1
        for _ = 1, 8 do
            if a % 2 ~= b % 2 then r = r + p end
            a, b, p = math.floor(a / 2), math.floor(b / 2), p * 2
        end
        return r
    end
    local function xor(k, b) return (k:gsub(".", function(c) return string.char(bxor(c:byte(), b)) end)) end
    local function reference(alg, key, msg)
        local bs = BLOCK[alg]
        if #key > bs then key = core.digest(alg, key) end
        key = key .. ("\0"):rep(bs - #key)
        return core.digest(alg, xor(key, 0x5c) .. core.digest(alg, xor(key, 0x36) .. msg))
    end
    local function bytes(R, n)
        local t = {}
        for i = 1, n do t[i] = string.char(R(0, 255)) end
        return table.concat(t)
    end
    it("gives RFC 2104's MAC for every key length and message", function()
        for seed = 1, property.RUNS do
            local R = property.rng(seed)
            local alg = property.pick(R, { "sha1", "sha256", "sha512" })
            local key = bytes(R, property.pick(R, { R(0, 8), R(60, 68), R(124, 132), R(0, 300) }))
            local msg = bytes(R, property.pick(R, { R(0, 4), R(100, 140), R(0, 700) }))
            local want = reference(alg, key, msg)
            assert(core.hmac(alg, key, msg) == want, "seed " .. seed)
            assert(core.hmac(alg, key, msg) == want, "seed " .. seed .. ", cached")
        end
    end)
end)

describe("core.equal", function()
    it("tells equal and different strings apart, including in the last byte", function()
        local a = core.random_bytes(64)
        assert.is_true(core.equal(a, a .. ""))
        assert.is_false(core.equal(a, a:sub(1, 63) .. string.char((a:byte(64) + 1) % 256)))
        assert.is_false(core.equal(a, a:sub(1, 63)))
        assert.is_true(core.equal("", ""))
        assert.is_false(core.equal("a\0", "a\1"))
    end)
end)
