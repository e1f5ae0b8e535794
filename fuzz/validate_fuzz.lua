-- Random-input fuzz of core.schema / core.validate / core.check / core.to_minor /
-- core.to_decimal, with oracles where one is cheap (utf8.len, a Lua to_minor,
-- the calendar, dotted quads, IBAN check digits). `make test` runs it (scripts/test.sh).
--
--   make SANITIZE=1 && LD_PRELOAD=$(cc -print-file-name=libasan.so) \
--     LUAPAY_BUILD=build/lua5.4-asan SEED=1 ITERS=20000 lua5.4 fuzz/validate_fuzz.lua
--   make LUA=luajit && LUAPAY_BUILD=build/luajit luajit fuzz/validate_fuzz.lua
--
-- Run from the project root. Prints "fuzz ok: ..." or the first failure.
local build = os.getenv("LUAPAY_BUILD") or "build/lua5.4"
package.cpath = build .. "/?.so;" .. package.cpath
local core = require "luapay.core"
local seed = tonumber(os.getenv("SEED") or "1")
local iters = tonumber(os.getenv("ITERS") or "20000")
math.randomseed(seed)
local R = math.random
local LUA54 = math.type ~= nil

local alphabet = { "a", "Z", "0", "9", ".", "-", "@", ":", "/", "[", "]", "%", "\0", " ", "\n", "é", "\255", "\192\128",
  "\237\160\128", "\244\144\128\128", "\240\159\146\169", "T", "+", "_", "E", "x", "#", "?", "1", "2", "::", "ffff" }
local function rstr(maxn)
    local t = {}
    for i = 1, R(0, maxn or 40) do
        if R(4) == 1 then t[i] = string.char(R(0, 255)) else t[i] = alphabet[R(#alphabet)] end
    end
    return table.concat(t)
end

local specials = { 0, 1, -1, 2^53, -2^53, 2^53 + 2, 1/0, -1/0, 0/0, 0.5, -0.0, 1e308, 2^63, -2^63 }
if LUA54 then
    for _, v in ipairs(load("return { math.maxinteger, math.mininteger, (1 << 53), (1 << 53) + 1, -(1 << 53) - 1 }")()) do
        specials[#specials + 1] = v
    end
end

local function rvalue(depth, seen)
    local k = R(10)
    if k == 1 then return rstr() end
    if k == 2 then return specials[R(#specials)] end
    if k == 3 then return R(-1000, 1000) end
    if k == 4 then return R(2) == 1 end
    if k == 5 then return nil end
    if k == 6 and depth < 6 then
        local t = {}
        for i = 1, R(0, 5) do t[i] = rvalue(depth + 1, seen) end
        return t
    end
    if k == 7 and depth < 6 then
        local t = {}
        for _ = 1, R(0, 6) do
            local kk = R(6)
            local key = kk == 1 and rstr(8) or kk == 2 and R(-3, 10) or kk == 3 and 1.5 or kk == 4 and true
                or ({ "general", "payment", "amount", "currency", "number", "clearinghouse", "items", "x" })[R(8)]
            t[key] = rvalue(depth + 1, seen)
        end
        if R(5) == 1 then t.self = t end -- cycle
        if R(5) == 1 and #seen > 0 then t.back = seen[R(#seen)] end
        seen[#seen + 1] = t
        return t
    end
    if k == 8 then return string.rep(rstr(3), R(0, 300)) end
    return ({ "SWEDEN", "AUSTRIA", "EUR", "SEK", "SE", "sv_SE", "1234567890", "DE89370400440532013000", "103.00" })[R(9)]
end

local types = { "any", "string", "enum", "boolean", "integer", "number", "amount", "decimal", "currency", "country",
  "language", "locale", "iban", "bic", "email", "url", "date", "datetime", "ip", "ipv4", "ipv6", "object", "array" }

local function rschema(depth)
    local t = types[R(#types)]
    local s = { type = t }
    if R(3) == 1 then s.required = R(2) == 1 end
    if R(4) == 1 then s.secret = true end
    if t == "string" then
        if R(3) == 1 then s.max_len = R(0, 50) end
        if R(3) == 1 then s.min_len = R(0, 5) end
        if R(3) == 1 then s.pattern = ({ "^[0-9]{4,5}$", "^a", "^(x|y)+$", "^[A-Z]{2}[0-9]*$", "b$" })[R(5)] end
        if R(3) == 1 then s.forbid = ({ "<>", "é€", "abcdef", "%$" })[R(4)] end
        if R(4) == 1 then s.enum = { "A", "B", "C", "D", "E", "F", "G", "H", "I", "J" } end
    elseif t == "enum" then s.values = { "C", "R", "U" }
    elseif t == "integer" or t == "amount" then
        if R(2) == 1 then s.min = R(-10, 10) end
        if R(2) == 1 then s.max = R(0, 1000) end
        if t == "amount" and R(2) == 1 then s.allow_negative = true end
    elseif t == "decimal" then
        s.decimals = R(0, 4)
        if R(2) == 1 then s.max_digits = R(1, 20) end
        if R(3) == 1 then s.positive = true end
        if R(3) == 1 then s.allow_negative = true end
        if R(3) == 1 then s.min = "1" .. (s.decimals > 0 and ("." .. string.rep("0", s.decimals)) or "") end
    elseif t == "object" and depth < 5 then
        s.fields = {}
        local names = { "general", "payment", "amount", "currency", "number", "x", "y", "z", "a1", "a2", "a3", "a4", "a5" }
        for _ = 1, R(0, 12) do s.fields[names[R(13)]] = rschema(depth + 1) end
        s.additional = R(2) == 1
    elseif t == "array" and depth < 5 then
        if R(2) == 1 then s.items = rschema(depth + 1) end
        if R(2) == 1 then s.max_items = R(0, 3) end
    end
    return s
end

-- oracles ---------------------------------------------------------------
local function ref_to_minor(s, e)
    local int, frac = s:match("^(%d+)%.(%d+)$")
    if not int then int = s:match("^(%d+)$"); frac = "" end
    if not int or (#int > 1 and int:sub(1, 1) == "0") then return nil end
    if #frac ~= e then return nil end
    local digits = (int .. frac):gsub("^0+", "")
    if digits == "" then return 0 end
    if #digits > 16 or (#digits == 16 and digits > "9007199254740992") then return nil end
    return tonumber(digits)
end
local currencies = core.currencies()

local function check_to_minor()
    local c = currencies[R(#currencies)]
    local e = core.currency(c).exponent
    local s
    if R(2) == 1 then s = rstr(20)
    else
        local int = tostring(R(0, 99999999)) .. (R(3) == 1 and tostring(R(0, 99999999)) or "")
        if R(5) == 1 then int = "0" .. int end
        local f = ""
        for _ = 1, R(0, 5) do f = f .. R(0, 9) end
        s = R(4) == 1 and int or (int .. "." .. f)
        if R(6) == 1 then s = "-" .. s end
    end
    local got = core.to_minor(s, c)
    local want = ref_to_minor(s, e)
    if got ~= want then error(("to_minor(%q, %s): got %s, want %s"):format(s, c, tostring(got), tostring(want))) end
    if got then
        local back = core.to_decimal(got, c)
        local expect = s
        if back ~= expect then error(("to_decimal(to_minor(%q)) = %s"):format(s, tostring(back))) end
    end
end

local function check_utf8()
    if not utf8 then return end
    local s = rstr(30)
    local ok, _, code = core.check("string", s)
    local want = utf8.len(s) ~= nil
    if (ok == true) ~= want then error(("utf8 %q: core %s, utf8.len %s"):format(s, tostring(code), tostring(want))) end
    if want then
        local n = utf8.len(s)
        local ok2 = core.check("string", s, { max_len = n })
        local ok3 = core.check("string", s, { max_len = n > 0 and n - 1 or 0 })
        if ok2 ~= true or (n > 0 and ok3 == true) then error(("utf8 count %q"):format(s)) end
    end
end

local function is_leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local function check_date()
    local y, m, d = R(0, 10000), R(0, 13), R(0, 32)
    local s = ("%04d-%02d-%02d"):format(y, m, d)
    local mdays = { 31, is_leap(y) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
    local want = y >= 1 and y <= 9999 and m >= 1 and m <= 12 and d >= 1 and d <= mdays[m]
    if (core.check("date", s) == true) ~= want then error("date " .. s) end
end

local function check_ipv4()
    local parts = {}
    for i = 1, R(3, 5) do
        local k = R(5)
        parts[i] = k == 1 and tostring(R(0, 300)) or k == 2 and ("0" .. R(0, 9)) or k == 3 and "" or tostring(R(0, 255))
    end
    local s = table.concat(parts, ".")
    local want = #parts == 4
    for _, p in ipairs(parts) do
        if not p:match("^%d+$") or (#p > 1 and p:sub(1, 1) == "0") or tonumber(p) > 255 then want = false end
    end
    if (core.check("ipv4", s) == true) ~= want then error("ipv4 " .. s) end
end

local function ibans()
    -- valid IBAN from random BBAN: compute check digits
    local cc = ({ "DE", "GB", "FR", "NO", "MT", "LC", "RU" })[R(7)]
    local lens = { DE = 22, GB = 22, FR = 27, NO = 15, MT = 31, LC = 32, RU = 33 }
    local b = {}
    for i = 1, lens[cc] - 4 do b[i] = R(3) == 1 and string.char(R(65, 90)) or tostring(R(0, 9)) end
    local bban = table.concat(b)
    local num = (bban .. cc .. "00"):gsub("%u", function(c) return tostring(c:byte() - 55) end)
    local rem = 0
    for i = 1, #num do rem = (rem * 10 + tonumber(num:sub(i, i))) % 97 end
    local cd = ("%02d"):format(98 - rem)
    local iban = cc .. cd .. bban
    if core.check("iban", iban) ~= true then error("iban " .. iban) end
    local i = R(5, #iban)
    local c = iban:sub(i, i)
    local repl = c:match("%d") and tostring((tonumber(c) + R(1, 9)) % 10) or c
    if repl ~= c then
        local bad = iban:sub(1, i - 1) .. repl .. iban:sub(i + 1)
        if core.check("iban", bad) == true then error("iban single-digit change accepted " .. bad) end
    end
end

local function check_shape(schema, value)
    local S = schema
    local ok, v = S:validate(value)
    if ok then return end
    assert(type(v) == "table" and #v > 0)
    for _, x in ipairs(v) do
        assert(type(x.path) == "string" and type(x.code) == "string" and type(x.message) == "string")
    end
end

local t0 = os.clock()
for i = 1, iters do
    local ok, err = pcall(function()
        check_to_minor(); check_utf8(); check_date(); check_ipv4(); ibans()
        for _ = 1, 3 do
            local ty = types[R(#types)]
            if ty == "enum" then ty = "string" end
            local ok1, a = pcall(core.check, ty, rvalue(0, {}))
            if not ok1 then error("core.check raised: " .. tostring(a)) end
            pcall(core.to_decimal, rvalue(0, {}), currencies[R(#currencies)])
            pcall(core.to_minor, rvalue(0, {}), rvalue(0, {}))
        end
        local ok2, S = pcall(core.schema, rschema(0))
        if ok2 then
            for _ = 1, 5 do check_shape(S, rvalue(0, {})) end
            if R(10) == 1 then S:close() end
        end
    end)
    if not ok then print("FAIL at iteration " .. i .. ": " .. tostring(err)); os.exit(1) end
    if i % 2000 == 0 then collectgarbage() end
end
print(("fuzz ok: %d iterations, seed %d, %.1fs"):format(iters, seed, os.clock() - t0))
