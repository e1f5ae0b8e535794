-- Checks shared by the fuzz targets (fuzz/targets/*.lua): a structural
-- comparison of decoded trees, and Trustly's serialization written plainly
-- in Lua as the reference the C serializer must agree with.
local core = require "luapay.core"

local oracle = {}

local number_mt, null = core.number_mt, core.null

--- Same tree? Metatables are ignored except that a number object equals
-- only a number object with the same text.
function oracle.same(a, b)
    if type(a) ~= type(b) then return false end
    if type(a) ~= "table" then return a == b end
    local na, nb = getmetatable(a) == number_mt, getmetatable(b) == number_mt
    if na or nb then return na and nb and a[1] == b[1] end
    for k, v in pairs(a) do
        if not oracle.same(v, b[k]) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end

--- core.json_decode that must succeed (the value may be false).
function oracle.decode(text, opts)
    local v, err = core.json_decode(text, opts)
    if v == nil then error(err .. ": " .. text, 2) end
    return v
end

local function byte_less(x, y) return x < y end -- Lua compares strings bytewise in the C locale

--- Trustly's serialization of a decoded tree (csrc/trustly.c's rules).
function oracle.trustly_serialize(v)
    if v == nil or v == null then return "" end
    local t = type(v)
    if t == "string" then return v end
    if t == "boolean" then return tostring(v) end
    if t == "number" then return assert(core.json_encode(v)) end
    if getmetatable(v) == number_mt then return v[1] end
    local out = {}
    if #v > 0 or getmetatable(v) == core.array_mt then
        for i = 1, #v do out[i] = oracle.trustly_serialize(v[i]) end
        return table.concat(out)
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, byte_less)
    for _, k in ipairs(keys) do out[#out + 1] = k .. oracle.trustly_serialize(v[k]) end
    return table.concat(out)
end

return oracle
