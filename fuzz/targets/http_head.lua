-- The cosocket transport's response reader in C (core.http_head,
-- core.http_chunked) against the Lua code it replaced
-- (spec/support/http_reference.lua), on any bytes: the input as a head,
-- and as a chunked body read from its first bytes on, with the caps taken
-- from its first byte. The head must read the same; a chunked body the C
-- pass takes must be what the Lua reader takes (it may leave one to it).
local core = require "luapay.core"
local oracle = require "oracle"
local reference = require "support.http_reference"

return function(s)
    assert(oracle.same({ core.http_head(s) }, { reference.head(s) }), "the heads differ")
    local first = s:byte(1) or 0
    local cap, trailer_cap = first % 16 * 8, first // 16 * 4
    for pos = 1, math.min(#s + 1, 4) do
        local b1, p1 = core.http_chunked(s, pos, cap, trailer_cap)
        local b2, p2 = reference.chunked(s, pos, cap, trailer_cap)
        assert(b1 == nil or (b1 == b2 and p1 == p2), "the chunked bodies differ at " .. pos)
    end
end
