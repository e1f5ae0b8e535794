-- The JSON reader's fast paths (csrc/json_read.h) against references made
-- in Lua: an integer's value read as its digits are scanned (tonumber of
-- the text), a short string known in the context's table by three of its
-- bytes (the string itself), the end of the text found by the NUL after
-- it. Seeded: a failure names its seed.
local core = require "luapay.core"
local property = require "support.property"

local RUNS, rng, pick = property.RUNS, property.rng, property.pick

-- JSON's number grammar, as a Lua pattern per part
local function json_number(t)
    local body = t:match("^%-?(.*)$")
    local int, rest = body:match("^(%d+)(.*)$")
    if not int or (#int > 1 and int:sub(1, 1) == "0") then return false end
    rest = rest:gsub("^%.%d+", "", 1)
    rest = rest:gsub("^[eE][+-]?%d+", "", 1)
    return rest == ""
end

-- What core.json_decode gives for the number text t: its integer when it is
-- one that fits (Lua 5.4), else the double tonumber reads.
local function reference(t)
    if not json_number(t) then return nil end
    local v = tonumber(t)
    if math.type and not t:find("[.eE]") then
        local neg, digits = t:sub(1, 1) == "-", t:match("%d+")
        -- an integer text within 2^63: an integer, as strtoll reads it
        local lim = neg and "9223372036854775808" or "9223372036854775807"
        if #digits < 19 or (#digits == 19 and digits <= lim) then v = math.tointeger(tonumber(t)) or v end
    end
    return v
end

local function same(a, b)
    if a ~= b then return false end
    if math.type and math.type(a) ~= math.type(b) then return false end
    if a == 0 then return 1 / a == 1 / b end -- -0.0
    return true
end

local function number_text(R)
    local t = R(1, 3) == 1 and "-" or ""
    local k = R(1, 6)
    if k == 1 then t = t .. "0" end -- "0", "-0", a leading zero
    for _ = 1, k == 1 and R(0, 2) or R(1, 22) do t = t .. R(0, 9) end
    if R(1, 5) == 1 then t = t .. "." .. (R(1, 4) == 1 and "" or R(0, 999)) end
    if R(1, 6) == 1 then t = t .. pick(R, { "e", "E", "e+", "e-", "E-" }) .. (R(1, 4) == 1 and "" or R(0, 30)) end
    if R(1, 20) == 1 then t = t .. pick(R, { "x", "-", "0", "." }) end
    return t
end

describe("core.json_decode's number fast path", function()
    it("reads every number text as tonumber does, alone, in a list and in an object", function()
        for seed = 1, RUNS * 10 do
            local R = rng(seed)
            local t = number_text(R)
            local want = reference(t)
            local sp = pick(R, { "", " ", "\n" })
            local alone = core.json_decode(sp .. t .. sp)
            local list = core.json_decode("[" .. t .. sp .. "," .. t .. "]")
            local object = core.json_decode('{"n":' .. t .. sp .. "}")
            local msg = ("seed %d: %q"):format(seed, t)
            if want == nil then
                assert(alone == nil and list == nil and object == nil, msg)
            else
                assert(same(want, alone), msg .. ": " .. tostring(alone))
                assert(same(want, list[1]) and same(want, list[2]), msg)
                assert(same(want, object.n), msg)
            end
        end
    end)
end)

describe("core.json_decode's short strings", function()
    it("gives each string of one to sixteen bytes back as it is, many alike in a row", function()
        local bytes = { "a", "b", "c", "0", "_", " ", "~", "ab", "ba", "aa" }
        for seed = 1, RUNS do
            local R = rng(seed)
            local list, want = {}, {}
            for i = 1, R(1, 64) do
                local s = ""
                for _ = 1, R(1, R(1, 3) == 1 and 16 or 3) do s = s .. pick(R, bytes) end
                want[i], list[i] = s, '"' .. s .. '"'
            end
            local got = assert(core.json_decode("[" .. table.concat(list, ",") .. "]"))
            for i = 1, #want do assert(got[i] == want[i], ("seed %d, #%d: %q, not %q"):format(seed, i, tostring(got[i]), want[i])) end
            local obj = assert(core.json_decode("{" .. table.concat(list, ":1,") .. ":1}"))
            for i = 1, #want do assert(obj[want[i]] == 1, ("seed %d: key %q"):format(seed, want[i])) end
        end
    end)
end)
