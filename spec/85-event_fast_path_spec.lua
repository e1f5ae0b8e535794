-- provider.event's checks in one C pass (core.event_holds, issue 15),
-- taken under Lua 5.4: for random event tables, good and broken in every
-- way the Lua checks look at, the C pass says "holds" exactly when the Lua
-- checks pass and extra is set, and provider.event answers the same (the
-- event, or the error it raises) with the C pass as with the Lua code
-- alone. The same for provider.make_event's (core.event_fields_hold).
-- Seeded: a failure names its seed. LUAPAY_PROPERTY_RUNS sets the count.
local core = require "luapay.core"
local provider = require "luapay.provider"
local property = require "support.property"
local RUNS, rng, pick = property.RUNS, property.rng, property.pick

local FIELDS = { "provider", "kind", "status", "merchant_ref", "provider_ref", "amount", "currency", "raw", "extra" }
local COMMON, KIND, STATUS = {}, {}, {}
for _, f in ipairs(FIELDS) do COMMON[f] = true end
for _, k in ipairs(provider.KINDS) do KIND[k] = true end
for _, s in ipairs(provider.STATUSES) do STATUS[s] = true end

local AMOUNTS = { 0, 1, -150, 123456, 2 ^ 53, -2 ^ 53, 2 ^ 53 + 2, 1.0, 150.5, -0.0, 0 / 0, math.huge, -math.huge, "150",
    9007199254740993 }
local WORDS = { "payment", "refund", "other", "succeeded", "failed", "partially_reversed", "Payment", "", "x", 1, true, {} }

local function event_of(R)
    local f = { provider = "trustpay", kind = "payment", status = "succeeded", merchant_ref = "ORD-42",
        provider_ref = "846487", amount = 123456, currency = "EUR", raw = "a=1", extra = { method = "card" } }
    for _ = 1, R(0, 3) do
        local k = R(1, 10)
        if k == 1 then f[pick(R, FIELDS)] = nil
        elseif k == 2 then f.amount = pick(R, AMOUNTS)
        elseif k == 3 then f.kind = pick(R, WORDS)
        elseif k == 4 then f.status = pick(R, WORDS)
        elseif k == 5 then f[pick(R, { "provider", "raw" })] = pick(R, { "x", 1, false, {} })
        elseif k == 6 then f[pick(R, { "other", 1, true, 2.5, "Kind" })] = "x"
        elseif k == 7 then f.extra = pick(R, { false, {}, "x" })
        elseif k == 8 then setmetatable(f, pick(R, { {}, { __pairs = function() return next, {}, nil end },
            { __index = function() return "payment" end } }))
        elseif k == 9 then f[pick(R, FIELDS)] = pick(R, WORDS)
        else f.merchant_ref = pick(R, { nil, "", 5 }) end
    end
    return f
end

local function copy(f)
    local t = {}
    for k, v in next, f do t[k] = v end
    return setmetatable(t, getmetatable(f))
end

-- What fn(...) answers (the value and its metatable, or the error raised)
-- with core[check], or (C false) with the Lua checks alone.
local function answer_with(check, C, fn, ...)
    local saved = core[check]
    if C == false then core[check] = function() return false end end
    local ok, v = pcall(fn, ...)
    core[check] = saved
    if not ok then return { raised = tostring(v):gsub("^[^:]*:%d+: ", "") } end
    return { value = v, mt = getmetatable(v) }
end

-- provider.event's answer on a copy of f.
local function answer(f, C) return answer_with("event_holds", C, provider.event, copy(f)) end

describe("provider.event's one-pass C check", function()
    it("holds exactly when the Lua checks pass and extra is set, for random events", function()
        for run = 1, RUNS do
            local seed = 8800 + run
            local f = event_of(rng(seed))
            local lua = answer(f, false)
            local holds = core.event_holds(f, COMMON, KIND, STATUS)
            assert.equal(lua.raised == nil and getmetatable(f) == nil and f.extra ~= nil, holds, "seed " .. seed)
            assert.same(lua, answer(f), "seed " .. seed)
        end
    end)

    it("says no to what is not a table, and to tables it must not walk itself", function()
        for _, f in ipairs({ "x", 5, true, setmetatable({}, { __pairs = function() return next, {}, nil end }) }) do
            assert.is_false(core.event_holds(f, COMMON, KIND, STATUS))
        end
        assert.is_false(core.event_holds(nil, COMMON, KIND, STATUS))
    end)
end)

-- provider.make_event's answer for f's fields.
local function made(f, C)
    return answer_with("event_fields_hold", C, provider.make_event, f.provider, f.kind, f.status, f.merchant_ref,
        f.provider_ref, f.amount, f.currency, f.raw, f.extra)
end

describe("provider.make_event's one-call C check", function()
    it("holds exactly when the Lua checks pass, for random fields", function()
        local held = 0
        for run = 1, RUNS do
            local seed = 9900 + run
            local f = event_of(rng(seed))
            local lua = made(f, false)
            local holds = core.event_fields_hold(f.provider, f.kind, f.status, f.raw, f.amount, KIND, STATUS)
            assert.equal(lua.raised == nil, holds, "seed " .. seed)
            assert.same(lua, made(f), "seed " .. seed)
            if holds then held = held + 1 end
        end
        assert(held > RUNS / 10 and held < RUNS, "too few events of one answer: " .. held)
        assert.is_false(core.event_fields_hold("x", "payment", "succeeded", "raw", nil, KIND, nil))
    end)
end)
