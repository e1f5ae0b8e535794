local core = require "luapay.core"
local util = require "support.util"

local assert_raises = require("support.util").assert_raises

describe("misuse of luapay.core", function()
    local pem = util.fixture("keys/merchant_private.pem")
    local RANDOM_BYTES_N = "random_bytes: bad argument #1 'n' (an integer from 0 to 1048576 expected)"

    local cases = {
        { "hmac alg", function() core.hmac("md5", "k", "m") end, "hmac: bad argument #1 'alg' (invalid option 'md5')" },
        { "hmac alg type", function() core.hmac(nil, "k", "m") end, "hmac: bad argument #1 'alg' (string expected, got nil)" },
        { "hmac key", function() core.hmac("sha256", {}, "m") end, "hmac: bad argument #2 'key' (string expected, got table)" },
        { "hmac msg", function() core.hmac("sha256", "k", 42) end, "hmac: bad argument #3 'msg' (string expected, got number)" },
        { "hmac enc", function() core.hmac("sha256", "k", "m", "b64") end, "hmac: bad argument #4 'enc' (invalid option 'b64')" },
        { "digest alg", function() core.digest("sha384", "m") end, "digest: bad argument #1 'alg' (invalid option 'sha384')" },
        { "digest msg", function() core.digest("sha1") end, "digest: bad argument #2 'msg' (string expected, got no value)" },
        { "base64_encode", function() core.base64_encode(true) end, "base64_encode: bad argument #1 's' (string expected, got boolean)" },
        { "base64_decode", function() core.base64_decode() end, "base64_decode: bad argument #1 's' (string expected, got no value)" },
        { "hex_encode", function() core.hex_encode(1) end, "hex_encode: bad argument #1 's' (string expected, got number)" },
        { "equal", function() core.equal("a", nil) end, "equal: bad argument #2 'b' (string expected, got nil)" },
        { "random_bytes type", function() core.random_bytes("8") end, RANDOM_BYTES_N },
        { "random_bytes fraction", function() core.random_bytes(1.5) end, RANDOM_BYTES_N },
        { "random_bytes negative", function() core.random_bytes(-1) end, RANDOM_BYTES_N },
        { "pkey pem", function() core.pkey(nil) end, "pkey: bad argument #1 'pem' (string expected, got nil)" },
        { "pkey passphrase", function() core.pkey(pem, 1234) end, "pkey: bad argument #2 'passphrase' (string expected, got number)" },
        { "sign alg", function() core.pkey(pem):sign("m", "sha512") end, "key:sign: bad argument #3 'alg' (must be 'sha1' or 'sha256')" },
        { "sign msg", function() core.pkey(pem):sign(nil, "sha1") end, "key:sign: bad argument #2 'msg' (string expected, got nil)" },
        { "verify sig", function() core.pkey(pem):verify("m", nil, "sha1") end,
          "key:verify: bad argument #3 'sig' (string expected, got nil)" },
    }
    for _, c in ipairs(cases) do
        it("raises for " .. c[1], function()
            assert_raises(c[3], c[2])
        end)
    end

    it("raises when a key method is called on something else", function()
        local k = core.pkey(pem)
        local ok, err = pcall(k.sign, {}, "m", "sha1")
        assert.is_false(ok)
        assert.matches("luapay.pkey expected", err)
    end)

    it("closes a key idempotently, and a closed key refuses work clearly", function()
        local k = core.pkey(pem)
        k:close()
        k:close()
        assert.equal("luapay.pkey (closed)", tostring(k))
        for _, call in ipairs({
            function() k:sign("m", "sha1") end,
            function() k:verify("m", "s", "sha1") end,
            function() k:bits() end,
        }) do
            assert_raises("luapay.pkey: key is closed", call)
        end
    end)

    it("releases a key when it is collected, after a close or without one", function()
        for _ = 1, 200 do
            local a = core.pkey(pem)
            core.pkey(pem) -- dropped without a close: collected by __gc
            a:close()
        end
        collectgarbage()
        collectgarbage()
    end)

    if _VERSION == "Lua 5.4" then
        it("closes a key held in a to-be-closed variable (Lua 5.4)", function()
            local chunk = assert(load([[
                local core, pem = ...
                local escaped
                do
                    local k <close> = core.pkey(pem)
                    escaped = k
                end
                return tostring(escaped)
            ]]))
            assert.equal("luapay.pkey (closed)", chunk(core, pem))
        end)
    end
end)
