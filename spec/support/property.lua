--- What the property specs (65, 69, 74) share: the number of runs
-- (LUAPAY_PROPERTY_RUNS, default 200), a seeded PRNG that gives the same
-- sequence under every Lua (a failure names its seed), and byte-level
-- mutations of a message.
local property = {}

property.RUNS = tonumber(os.getenv("LUAPAY_PROPERTY_RUNS") or "200")

--- property.rng(seed) -> R: R(a, b) an integer in a..b, R() a number in [0, 1).
-- Park and Miller's minimal standard generator: exact in doubles.
function property.rng(seed)
    local s = seed % 2147483647
    if s <= 0 then s = s + 2147483646 end
    return function(a, b)
        s = s * 16807 % 2147483647
        if a == nil then return (s - 1) / 2147483646 end
        return a + s % (b - a + 1)
    end
end

--- property.pick(R, t) -> one element of the array t.
function property.pick(R, t) return t[R(1, #t)] end

--- property.mutate(R, s) -> s with one random change: a byte flipped,
-- bytes deleted, a byte inserted, or a span duplicated.
function property.mutate(R, s)
    local n = #s
    local i = R(1, math.max(n, 1))
    local k = R(1, 4)
    if k == 1 and n > 0 then
        return s:sub(1, i - 1) .. string.char((s:byte(i) + R(1, 255)) % 256) .. s:sub(i + 1)
    elseif k == 2 and n > 0 then
        return s:sub(1, i - 1) .. s:sub(i + R(1, 3))
    elseif k == 3 then
        return s:sub(1, i - 1) .. string.char(R(0, 255)) .. s:sub(i)
    end
    local j = math.min(n, i + R(0, 8))
    return s:sub(1, j) .. s:sub(i, j) .. s:sub(j + 1)
end

return property
