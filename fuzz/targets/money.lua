-- core.to_minor reads amounts from notifications (untrusted text): what it
-- accepts is exactly what core.to_decimal writes for that currency, and the
-- other way round for every integer within 2^53. The first byte picks the
-- currency (exponents 0, 2, 3 and 4).
local core = require "luapay.core"

local CURRENCIES = { "JPY", "EUR", "USD", "BHD", "CLF", "SEK", "KWD", "XXX" }

return function(s)
    if #s == 0 then return end
    local cur = CURRENCIES[s:byte(1) % #CURRENCIES + 1]
    local text = s:sub(2)
    local v, err = core.to_minor(text, cur)
    if v == nil then
        assert(err:match("^to_minor: "), err)
    else
        assert(math.type(v) == "integer" and v >= 0 and v <= 2 ^ 53, "not minor units")
        assert(core.to_decimal(v, cur) == text, "to_decimal(to_minor(text)) ~= text")
    end
    -- the bytes as an integer (8 of them, little-endian), within 2^53 either sign
    if #text >= 8 then
        local n = string.unpack("<i8", text) % (2 ^ 53 + 1) // 1
        if s:byte(1) >= 128 then n = -n end
        local d = core.to_decimal(n, cur)
        if d and n >= 0 then assert(core.to_minor(d, cur) == n, "to_minor(to_decimal(n)) ~= n") end
    end
end
