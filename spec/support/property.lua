--- What the property specs (65, 69, 74) share: the number of runs
-- (LUAPAY_PROPERTY_RUNS, default 200), a seeded PRNG that gives the same
-- sequence under every Lua (a failure names its seed), byte-level
-- mutations of a message, random JSON texts and a strict deep equality.
local property = {}

property.RUNS = tonumber(os.getenv("LUAPAY_PROPERTY_RUNS") or "200")

--- property.rng(seed) -> R: R(a, b) an integer in a..b, R() a number in [0, 1).
-- Park and Miller's minimal standard generator: exact in doubles.
function property.rng(seed)
    local s = seed % 2147483647
    if s <= 0 then s = s + 2147483646 end
    -- A small seed's first draw is seed * 16807 unreduced: a multiple of
    -- 7^5, so a first pick among 7 (or 49) was the same for every seed.
    s = s * 16807 % 2147483647
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

--- property.json_text(R, shape) -> a random JSON text of objects, arrays
-- and leaves. shape: numbers and strings (arrays of JSON leaves to draw
-- from), string_max (a run of "x" up to that long is the third leaf),
-- leaf_depth (deeper than this only leaves), array_max, and object_odds
-- (of 1 + 3 + object_odds draws, 1 is an array and object_odds objects).
function property.json_text(R, shape, depth)
    depth = depth or 0
    local k = R(1, depth > shape.leaf_depth and 3 or 4 + shape.object_odds)
    if k == 1 then return property.pick(R, shape.numbers) end
    if k == 2 then return property.pick(R, shape.strings) end
    if k == 3 then return '"' .. ("x"):rep(R(0, shape.string_max)) .. '"' end
    local parts = {}
    if k == 4 then
        for i = 1, R(0, shape.array_max) do parts[i] = property.json_text(R, shape, depth + 1) end
        return "[" .. table.concat(parts, ",") .. "]"
    end
    for i = 1, R(0, 6) do parts[i] = ('"k%d"'):format(R(1, 9)) .. ":" .. property.json_text(R, shape, depth + 1) end
    return "{" .. table.concat(parts, ",") .. "}"
end

--- property.same(a, b) -> deep equality that also compares metatables,
-- tells integers from floats and -0 from 0, and takes NaN as equal to NaN.
function property.same(a, b)
    if type(a) ~= type(b) then return false end
    if type(a) == "number" then
        return (a == b or (a ~= a and b ~= b)) and (math.type == nil or math.type(a) == math.type(b))
            and (1 / a == 1 / b or a ~= 0)
    end
    if type(a) ~= "table" then return a == b end
    if getmetatable(a) ~= getmetatable(b) then return false end
    for k, v in pairs(a) do if not property.same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
end

return property
