-- core.pkey on PEM text (first byte 0) or on DER bytes wrapped in one of the
-- PEM labels OpenSSL reads (first byte 1..5): a key or nil and an error;
-- a private key's signature verifies with the same key, a public key's
-- verify says false on a garbage signature.
local core = require "luapay.core"

local LABELS = { "PRIVATE KEY", "RSA PRIVATE KEY", "PUBLIC KEY", "RSA PUBLIC KEY", "ENCRYPTED PRIVATE KEY" }

local function pem(label, der)
    local b64 = core.base64_encode(der):gsub(("."):rep(64), "%0\n")
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n"):format(label, b64, label)
end

return function(s)
    if #s == 0 then return end
    local mode = s:byte(1) % 6
    local text = mode == 0 and s:sub(2) or pem(LABELS[mode], s:sub(2))
    local key, err = core.pkey(text)
    if not key then
        assert(type(err) == "string" and err:match("^pkey: "), tostring(err))
        return
    end
    assert(key:bits() > 0)
    if key:is_private() then
        for _, alg in ipairs({ "sha1", "sha256" }) do
            local sig = key:sign("message", alg)
            assert(key:verify("message", sig, alg), "a signature does not verify with its own key")
            assert(not key:verify("messagf", sig, alg), "a signature verifies another message")
        end
    else
        assert(key:verify("message", ("\1"):rep(key:bits() // 8), "sha256") == false)
    end
    key:close()
end
