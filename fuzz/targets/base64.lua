-- core.base64_decode is strict: what it accepts is exactly what
-- base64_encode writes; every encoding decodes back. hex_encode is two
-- lower-case digits per byte (upper-case on request).
local core = require "luapay.core"

return function(s)
    local d, err = core.base64_decode(s)
    if d then
        assert(core.base64_encode(d) == s, "a non-canonical base64 text was accepted")
    else
        assert(err:match("^base64_decode: "), err)
    end
    assert(core.base64_decode(core.base64_encode(s)) == s, "base64 round trip")
    local hex = core.hex_encode(s)
    assert(#hex == 2 * #s and not hex:find("[^0-9a-f]"), "hex digits")
    assert(hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end) == s, "hex round trip")
    assert(core.hex_encode(s, true) == hex:upper(), "upper-case hex")
end
