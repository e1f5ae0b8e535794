-- luapay.core side of the crypto bench: the same operations as
-- bench/crypto_bench.c, through the Lua binding. Prints "name ops_per_second".
local core = require "luapay.core"
local bench = require "util"
local rate, read = bench.rate, bench.read

local msg = {}
for i = 0, 399 do msg[#msg + 1] = string.char(97 + i % 26) end
msg = table.concat(msg)
local key = {}
for i = 0, 31 do key[#key + 1] = string.char(107 + i % 7) end
key = table.concat(key)

local priv = assert(core.pkey(read(arg[1])))
local pub = assert(core.pkey(read(arg[2])))
local sig = priv:sign(msg, "sha1")
local hmac, sign, verify = core.hmac, priv.sign, pub.verify

print(("hmac_sha512_400 %.0f"):format(rate(function() return hmac("sha512", key, msg) end)))
print(("rsa2048_sha1_sign %.0f"):format(rate(function() return sign(priv, msg, "sha1") end)))
print(("rsa2048_sha1_verify %.0f"):format(rate(function()
    if not verify(pub, msg, sig, "sha1") then error("verify failed") end
end)))
