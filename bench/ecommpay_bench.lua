-- ecommpay bench: signatures per second for the gate_trustly_sale_request_unicode
-- vector and callbacks verified per second, through luapay (the canonical
-- string in C) and through a plain-Lua implementation of the same canonical
-- string (here only), in the same run. Both sides use core.hmac for the
-- HMAC-SHA512, so the difference is the canonical string (and, for callbacks,
-- reading the body). Prints "name ops_per_second".
local cjson = require "cjson"
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local bench = require "util"
local rate = bench.rate

---------------------------------------------------------------------------
-- The plain-Lua canonical string: flatten, PHP values, strnatcmp, join.
---------------------------------------------------------------------------

local byte, sub, concat, format = string.byte, string.sub, table.concat, string.format
local null = cjson.null

local function isdigit(c) return c ~= nil and c >= 48 and c <= 57 end
local function isspace(c) return c == 32 or (c ~= nil and c >= 9 and c <= 13) end

-- PHP's strnatcmp_ex, case sensitive (byte at len + 1 reads as 0).
local function strnatcmp(a, b)
    local alen, blen = #a, #b
    if alen == 0 or blen == 0 then return alen == blen and 0 or (alen > blen and 1 or -1) end
    local ai, bi, leading = 1, 1, true
    while true do
        local ca, cb = byte(a, ai) or 0, byte(b, bi) or 0
        while leading and ca == 48 and ai < alen and isdigit(byte(a, ai + 1)) do ai = ai + 1; ca = byte(a, ai) end
        while leading and cb == 48 and bi < blen and isdigit(byte(b, bi + 1)) do bi = bi + 1; cb = byte(b, bi) end
        leading = false
        while isspace(ca) do ai = ai + 1; ca = byte(a, ai) or 0 end
        while isspace(cb) do bi = bi + 1; cb = byte(b, bi) or 0 end
        if isdigit(ca) and isdigit(cb) then
            local result
            if ca == 48 or cb == 48 then
                while true do
                    local da, db = isdigit(byte(a, ai)), isdigit(byte(b, bi))
                    if not da and not db then result = 0 break end
                    if not da then result = -1 break end
                    if not db then result = 1 break end
                    local x, y = byte(a, ai), byte(b, bi)
                    if x ~= y then result = x < y and -1 or 1 break end
                    ai, bi = ai + 1, bi + 1
                end
            else
                local bias = 0
                while true do
                    local da, db = isdigit(byte(a, ai)), isdigit(byte(b, bi))
                    if not da and not db then result = bias break end
                    if not da then result = -1 break end
                    if not db then result = 1 break end
                    local x, y = byte(a, ai), byte(b, bi)
                    if bias == 0 and x ~= y then bias = x < y and -1 or 1 end
                    ai, bi = ai + 1, bi + 1
                end
            end
            if result ~= 0 then return result end
            if ai > alen and bi > blen then return 0 end
            if ai > alen then return -1 end
            if bi > blen then return 1 end
            ca, cb = byte(a, ai), byte(b, bi)
        end
        if ca ~= cb then return ca < cb and -1 or 1 end
        ai, bi = ai + 1, bi + 1
        if ai > alen and bi > blen then return 0 end
        if ai > alen then return -1 end
        if bi > blen then return 1 end
    end
end

-- PHP (string)$float, precision 14, for what the bench's data can hold.
local function php_float(v)
    if v == math.floor(v) and math.abs(v) <= 2 ^ 53 then return format("%.0f", v) end
    local s = format("%.13e", v)
    local sign, d1, rest, exp = s:match("^(%-?)(%d)%.(%d+)e([-+]%d+)$")
    local digits = (d1 .. rest):gsub("0+$", "")
    if digits == "" then digits = "0" end
    local decpt = tonumber(exp) + 1
    if decpt < -3 or decpt > 14 then
        local e = decpt - 1
        return sign .. sub(digits, 1, 1) .. "." .. (#digits > 1 and sub(digits, 2) or "0") .. "E" .. (e < 0 and "-" or "+") .. math.abs(e)
    elseif decpt <= 0 then
        return sign .. "0." .. ("0"):rep(-decpt) .. digits
    elseif decpt >= #digits then
        return sign .. digits .. ("0"):rep(decpt - #digits)
    end
    return sign .. sub(digits, 1, decpt) .. "." .. sub(digits, decpt + 1)
end

local function render(v)
    local t = type(v)
    if t == "string" then return v end
    if t == "boolean" then return v and "1" or "0" end
    if v == null then return "" end
    if t == "number" then
        if math.type and math.type(v) == "integer" then return format("%d", v) end
        return php_float(v)
    end
    error("cannot sign a " .. t)
end

local function flatten(t, prefix, out, skip_signature)
    local n = #t
    local is_array = n > 0 and next(t, n > 0 and n or nil) == nil
    if is_array then
        for i = 1, n do
            local path = prefix and (prefix .. ":" .. (i - 1)) or tostring(i - 1)
            local v = t[i]
            if type(v) == "table" then flatten(v, path, out, skip_signature)
            else out[#out + 1] = { path, render(v) } end
        end
        return
    end
    for k, v in pairs(t) do
        if k ~= "frame_mode" and not (skip_signature and k == "signature") then
            local key = k:gsub(":", "::")
            local path = prefix and (prefix .. ":" .. key) or key
            if type(v) == "table" then flatten(v, path, out, skip_signature)
            else out[#out + 1] = { path, render(v) } end
        end
    end
end

local function by_path(x, y) return strnatcmp(x[1], y[1]) < 0 end

local function lua_canonical(params, skip_signature)
    local entries = {}
    flatten(params, nil, entries, skip_signature)
    table.sort(entries, by_path)
    local parts = {}
    for i, e in ipairs(entries) do parts[i] = e[1] .. ":" .. e[2] end
    return concat(parts, ";")
end

local function lua_verify(raw, secret)
    local body = cjson.decode(raw)
    local sig = body.signature
    if type(sig) ~= "string" and type(body.general) == "table" then sig = body.general.signature end
    if type(sig) ~= "string" then return false end
    return core.equal(core.hmac("sha512", secret, lua_canonical(body, true), "base64"), sig)
end

---------------------------------------------------------------------------
-- The runs
---------------------------------------------------------------------------

local f = assert(io.open("spec/fixtures/vectors/ecommpay.json"))
local vectors = cjson.decode(f:read("*a"))
f:close()
local sale, callback
for _, v in ipairs(vectors.vectors) do if v.name == "gate_trustly_sale_request_unicode" then sale = v end end
for _, v in ipairs(vectors.callback_vectors) do
    if v.name == "callback_root_signature_trustly_sale_success" then callback = v end
end

-- The request as a merchant's code holds it: plain Lua values.
local params = assert(core.json_decode(sale.params_json))
local secret = sale.secret
local canonical, hmac = core.ecommpay_canonical, core.hmac

-- Both sides give the vector's signature, or the figures mean nothing.
assert(hmac("sha512", secret, canonical(params), "base64") == sale.signature, "luapay: wrong signature")
assert(hmac("sha512", secret, lua_canonical(params), "base64") == sale.signature, "plain Lua: wrong signature")
assert(ecommpay.verify_notification(callback.raw_body, nil, { secret = callback.secret }), "luapay: callback not verified")
assert(lua_verify(callback.raw_body, callback.secret), "plain Lua: callback not verified")

print(("sign_c %.0f"):format(rate(function() return hmac("sha512", secret, canonical(params), "base64") end)))
print(("sign_lua %.0f"):format(rate(function() return hmac("sha512", secret, lua_canonical(params), "base64") end)))
local raw, ckeys, verify = callback.raw_body, { secret = callback.secret }, ecommpay.verify_notification
print(("verify_c %.0f"):format(rate(function() return verify(raw, nil, ckeys) end)))
print(("verify_lua %.0f"):format(rate(function() return lua_verify(raw, callback.secret) end)))
