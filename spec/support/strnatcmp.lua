--- PHP's strnatcmp_ex (ext/standard/strnatcmp.c, PHP 8), case sensitive,
-- ported line by line as the reference for the C core's natural sort. A
-- read past the end gives 0, as PHP reads the zend_string's terminator.
local byte = string.byte

local function isdigit(c) return c ~= nil and c >= 48 and c <= 57 end
local function isspace(c) return c == 32 or (c ~= nil and c >= 9 and c <= 13) end

local function at(s, i) return byte(s, i) or 0 end

-- compare_right / compare_left: return result, next a index, next b index
local function compare_right(a, ai, b, bi)
    local bias = 0
    while true do
        local da, db = isdigit(byte(a, ai)), isdigit(byte(b, bi))
        if not da and not db then return bias, ai, bi end
        if not da then return -1, ai, bi end
        if not db then return 1, ai, bi end
        local x, y = byte(a, ai), byte(b, bi)
        if x < y then
            if bias == 0 then bias = -1 end
        elseif x > y then
            if bias == 0 then bias = 1 end
        end
        ai, bi = ai + 1, bi + 1
    end
end

local function compare_left(a, ai, b, bi)
    while true do
        local da, db = isdigit(byte(a, ai)), isdigit(byte(b, bi))
        if not da and not db then return 0, ai, bi end
        if not da then return -1, ai, bi end
        if not db then return 1, ai, bi end
        local x, y = byte(a, ai), byte(b, bi)
        if x < y then return -1, ai, bi end
        if x > y then return 1, ai, bi end
        ai, bi = ai + 1, bi + 1
    end
end

return function(a, b)
    local alen, blen = #a, #b
    if alen == 0 or blen == 0 then return alen == blen and 0 or (alen > blen and 1 or -1) end
    local ai, bi, leading = 1, 1, true
    while true do
        local ca, cb = at(a, ai), at(b, bi)
        while leading and ca == 48 and ai + 1 <= alen and isdigit(byte(a, ai + 1)) do ai = ai + 1; ca = at(a, ai) end
        while leading and cb == 48 and bi + 1 <= blen and isdigit(byte(b, bi + 1)) do bi = bi + 1; cb = at(b, bi) end
        leading = false
        while isspace(ca) do ai = ai + 1; ca = at(a, ai) end
        while isspace(cb) do bi = bi + 1; cb = at(b, bi) end
        if isdigit(ca) and isdigit(cb) then
            local result
            if ca == 48 or cb == 48 then result, ai, bi = compare_left(a, ai, b, bi)
            else result, ai, bi = compare_right(a, ai, b, bi) end
            if result ~= 0 then return result end
            if ai > alen and bi > blen then return 0 end
            if ai > alen then return -1 end
            if bi > blen then return 1 end
            ca, cb = at(a, ai), at(b, bi)
        end
        if ca < cb then return -1 end
        if ca > cb then return 1 end
        ai, bi = ai + 1, bi + 1
        if ai > alen and bi > blen then return 0 end
        if ai > alen then return -1 end
        if bi > blen then return 1 end
    end
end
