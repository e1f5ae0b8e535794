-- core.json_pick_plan and core.json_picks: what a provider's event reads
-- of a decoded body, said as data by the provider's module (the C core
-- knows no provider's field names) and read in one call. Checked against
-- the same reading written in Lua, over bodies of every shape, and for
-- each rule on its own.
local core = require "luapay.core"
local property = require "support.property"
local RUNS, rng, pick = property.RUNS, property.rng, property.pick

local null = core.null

-- The reading in Lua: a path through tables, null as nil; Lua's `or` over
-- the from paths (nil, null and false fall through); then the conversion.
local function at(t, path)
    for _, k in ipairs(path) do
        if type(t) ~= "table" then return nil end
        t = t[k]
        if t == null then return nil end
    end
    return t
end

local function digits(v)
    if math.type and math.type(v) == "integer" then return tostring(v) end
    if v == math.floor(v) and math.abs(v) <= 2 ^ 53 and v ~= 0 then return ("%d"):format(v) end
    return ("%.0f"):format(v)
end

local AS = {
    text = function(v)
        if type(v) == "string" then return v end
        if type(v) == "number" then return digits(v) end
        if type(v) == "boolean" then return tostring(v) end
        return nil
    end,
    integer = function(v)
        if type(v) ~= "number" or v ~= math.floor(v) or math.abs(v) > 2 ^ 53 then return nil end
        return math.tointeger and math.tointeger(v) or v
    end,
}

local function reference(body, picks)
    local named, values, n = {}, {}, 0
    for _, p in ipairs(picks) do
        local v
        for _, path in ipairs(p.from) do
            v = at(body, path)
            if v then break end
        end
        v = AS[p.as](at(v, p.path or {}))
        if p.key then
            named[p.key] = v
        else
            n = n + 1
            values[n] = v
        end
    end
    return named, values
end

local function picked(body, plan, nvalues)
    local got = { core.json_picks(body, plan) }
    local values = {}
    for i = 1, nvalues do values[i] = got[i + 1] end
    return got[1], values, select("#", core.json_picks(body, plan))
end

describe("core.json_picks", function()
    it("reads what the plan says, as Lua's reading of the same paths does, whatever the body's shape", function()
        local picks = {
            { key = "id", from = { { "id" }, { "general", "id" } }, as = "integer" },
            { key = "status", from = { { "payment", "status" } }, as = "text" },
            { key = "amount", from = { { "payment", "sum", "amount" } }, as = "integer" },
            { from = { { "operation", "sum" }, { "payment", "sum" } }, path = { "amount" }, as = "integer" },
            { from = { { "operation", "sum" }, { "payment", "sum" } }, path = { "currency" }, as = "text" },
            { from = { { "payment", "id" } }, as = "text" },
        }
        local plan = core.json_pick_plan(picks)
        local VALUES = { 0, 7, -3, 1.5, 2 ^ 53, 2 ^ 60, -0.0, "x", "", true, false, null, {}, { 1, 2 } }
        local function value(R, depth)
            if depth > 0 and R(1, 2) == 1 then
                local t = {}
                for _, k in ipairs({ "id", "general", "payment", "status", "sum", "amount", "currency", "operation" }) do
                    if R(1, 3) == 1 then t[k] = value(R, depth - 1) end
                end
                return t
            end
            return pick(R, VALUES)
        end
        for seed = 1, RUNS * 5 do
            local body = value(rng(8700 + seed), 4)
            local want_named, want_values = reference(body, picks)
            local named, values, n = picked(body, plan, 3)
            assert.equal(4, n)
            local pretty = require("luapay.pretty").format
            assert(property.same(want_named, named) and property.same(want_values, values),
                "seed " .. seed .. ": " .. pretty(body) .. " gave " .. pretty({ named, values })
                .. " for " .. pretty({ want_named, want_values }))
            for k, v in pairs(named) do -- an integer stays one, a float one
                assert.equal(math.type and math.type(want_named[k]), math.type and math.type(v), k)
            end
        end
    end)

    it("takes the first from path that is not nil, null or false, and converts only then", function()
        local plan = core.json_pick_plan {
            { from = { { "a" }, { "b" } }, as = "integer" },
            { from = { { "a" }, { "b" } }, as = "text" },
        }
        assert.same({ {}, 2, "2" }, { core.json_picks({ a = false, b = 2 }, plan) })
        assert.same({ {}, 2, "2" }, { core.json_picks({ a = null, b = 2 }, plan) })
        -- "x" is there: no integer, and b is not read
        assert.same({ {}, nil, "x" }, { core.json_picks({ a = "x", b = 2 }, plan) })
        assert.same({ {}, nil, "true" }, { core.json_picks({ a = true, b = 2 }, plan) })
        assert.same({ {}, nil, nil }, { core.json_picks("not a table", plan) })
    end)

    it("writes a float as text with every digit provider.digits writes, however long", function()
        -- "%.0f" of 1e64 is 65 bytes: once the text outran a 64-byte buffer
        local provider = require "luapay.provider"
        local plan = core.json_pick_plan { { key = "s", from = { { "s" } }, as = "text" } }
        -- (no exact half: LuaJIT's string.format rounds it away from zero, C's to even)
        for _, v in ipairs({ 1e63, 1e64, 1e300, -1e300, 2 ^ 60 + 0.0, 123.456, -0.0, math.huge, -math.huge }) do
            assert.equal(provider.digits(v), core.json_picks({ s = v }, plan).s, tostring(v))
        end
    end)

    it("names its picks in a table, leaving out those that read nothing", function()
        local plan = core.json_pick_plan {
            { key = "a", from = { { "x" } }, as = "text" },
            { key = "b", from = { { "y" } }, as = "text" },
        }
        local named = core.json_picks({ x = 12 }, plan)
        assert.same({ a = "12" }, named)
        assert.equal(1, select("#", core.json_picks({ x = 12 }, plan)))
    end)

    it("refuses a plan that is not one, naming what is wrong", function()
        local cases = {
            { {}, "json_pick_plan: bad argument #1 'picks' (1 to 24 picks expected)" },
            { { { from = {}, as = "text" } }, "json_pick_plan: bad argument #1 'picks' (from: 1 to 4 paths expected)" },
            { { { from = { {} }, as = "text" } },
                "json_pick_plan: bad argument #1 'picks' (a path of 1 to 4 keys expected)" },
            { { { from = { { "a", "b", "c", "d", "e" } }, as = "text" } },
                "json_pick_plan: bad argument #1 'picks' (a path of 1 to 4 keys expected)" },
            { { { from = { { "a" } }, as = "number" } },
                "json_pick_plan: bad argument #1 'picks' (as: \"text\" or \"integer\" expected)" },
            { { { from = { { "a" } }, path = "b", as = "text" } },
                "json_pick_plan: bad argument #1 'picks' (a path must be a list of keys)" },
            { { { from = { { 1 } }, as = "text" } },
                "json_pick_plan: bad argument #1 'picks' (field names (non-empty strings) expected)" },
            { { "a" }, "json_pick_plan: bad argument #1 'picks' (a list of tables expected)" },
            { { { form = { { "a" } }, as = "text" } },
                "json_pick_plan: bad argument #1 'picks' (a pick holds from, path, as and key only)" },
            { { { key = "a", from = { { "a" } }, as = "text" }, { key = "a", from = { { "b" } }, as = "text" } },
                "json_pick_plan: bad argument #1 'picks' (a key given twice)" },
        }
        for _, case in ipairs(cases) do
            assert.has_error(function() core.json_pick_plan(case[1]) end, case[2])
        end
        assert.has_error(function() core.json_picks({}, {}) end)
    end)
end)
