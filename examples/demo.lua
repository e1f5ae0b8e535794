-- `make demo`: what luapay.core does today, on built-in test keys, with no
-- credentials and no network. (The merchant's-day demo against the sandbox
-- replaces this once the providers land.)
local luapay = require "luapay"
local core = luapay.core

local function step(what, result)
    print(("%-44s %s"):format(what, result))
end

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

print(("luapay %s on %s, %s"):format(luapay.VERSION, jit and jit.version or _VERSION, core.OPENSSL_VERSION))
print()

-- An ecommpay-style HMAC-SHA512 signature and its constant-time check.
local canonical = "general:payment_id:p-1001;general:project_id:200;payment:amount:1000;payment:currency:EUR"
local mac = core.hmac("sha512", "demo-secret", canonical, "base64")
step("HMAC-SHA512 of a canonical string", mac:sub(1, 24) .. "...")
step("constant-time compare (same / tampered)",
    tostring(core.equal(mac, core.hmac("sha512", "demo-secret", canonical, "base64"))) .. " / " ..
    tostring(core.equal(mac, core.hmac("sha512", "demo-secret", canonical .. "0", "base64"))))

-- A Trustly-style RSA-SHA1 signature over method .. uuid .. data.
local key = assert(core.pkey(read("spec/fixtures/keys/merchant_private.pem")))
local pub = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))
local uuid = core.uuid4()
local plaintext = "Deposit" .. uuid .. "Amount10.00CurrencyEUR"
local sig = key:sign(plaintext, "sha1")
step("request UUID (RFC 4122 v4)", uuid)
step("RSA-2048 SHA-1 signature (base64)", core.base64_encode(sig):sub(1, 24) .. "...")
step("verified with the public key", tostring(pub:verify(plaintext, sig, "sha1")))
step("verified after changing the amount", tostring(pub:verify(plaintext:gsub("10.00", "99.00"), sig, "sha1")))

-- Errors name what is wrong and never carry the secret.
local _, err = core.pkey(read("spec/fixtures/keys/merchant_private_encrypted.pem"), "not the passphrase")
step("encrypted key, wrong passphrase", err)
local e = luapay.errors.new("provider", "ERROR_INVALID_CREDENTIALS", { code = 616 })
step("a typed error", tostring(e))
key:close()
pub:close()
