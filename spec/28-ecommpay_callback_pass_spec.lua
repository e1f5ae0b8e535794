-- core.ecommpay_callback (issue 15): a callback's signature computed from
-- its text in the pass that decodes it must be exactly the one
-- core.ecommpay_signature gives over the lexeme tree, and the body exactly
-- core.json_decode's; what that pass cannot place it leaves to the tree
-- (false), never guesses. Random bodies written as text, so that keys
-- repeat, numbers take every form and natural order's corners (digits,
-- leading zeros, spaces, ':') come up. Seeded: a failure names its seed.
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local util = require "support.util"
local property = require "support.property"

local RUNS, rng, pick = property.RUNS, property.rng, property.pick
local CALLBACK = { callback = true }
local SECRET = "s3cr3t"

local KEYS = { "a", "b", "ab", "a1", "a2", "a10", "a9", "a0", "0", "1", "9", "10", "1a", "a1b2", "a-b", "a_b", "A",
    "Z", "z", "\195\169", "signature", "frame_mode", "payment", "sum", "amount", "id", "a.b", "~", "0x", "a0b",
    "a00", "12345678901234567890", "a1", "b" }
-- natural order's corners, and repeats
local CORNERS = { "a01", "00", "x y", " a", "a:b", "a::", "", "a\\u0000b", "a\\tb", "a", "b", "signature" }
local NUMBERS = { "0", "-0", "1", "-1", "7", "10000", "-42", "41000000123", "123456789012345", "1234567890123456",
    "123456789012345678", "1234567890123456789", "9223372036854775807", "1.0", "1e3", "-0.0", "1.5", "2E-7", "0.1" }
local STRINGS = { "", "x", "SEK", "a b", "a;b:c", "\\u00e9t\\u00e9", "\\\"q\\\"", "line\\nbreak", "\226\130\172" }

local function key(R) return R(1, 15) == 1 and pick(R, CORNERS) or pick(R, KEYS) end

local function value(R, depth)
    local k = R(1, depth > 3 and 6 or 8)
    if k == 1 then return pick(R, NUMBERS) end
    if k == 2 then return '"' .. pick(R, STRINGS) .. '"' end
    if k == 3 then return pick(R, { "true", "false", "null" }) end
    if k <= 6 then return '"' .. pick(R, STRINGS) .. '"' end
    if k == 7 then
        local items = {}
        for i = 1, R(0, 4) do items[i] = value(R, depth + 1) end
        return "[" .. table.concat(items, ",") .. "]"
    end
    local members = {}
    for i = 1, R(0, 5) do members[i] = '"' .. key(R) .. '":' .. value(R, depth + 1) end
    return "{" .. table.concat(members, ",") .. "}"
end

-- A body: mostly keys the pass places, with a corner now and then; now and
-- then a wide one (its members merge-sorted).
local function body(R)
    local members = {}
    for i = 1, R(1, 8) do members[i] = '"' .. key(R) .. '":' .. value(R, 1) end
    if R(1, 4) == 1 then
        for _ = 1, R(9, 80) do
            local k = R(1, 3) == 1 and tostring(R(0, 2000)) or (pick(R, { "k", "k_", "K", "x1y" }) .. R(0, 2000))
            members[#members + 1] = '"' .. k .. '":' .. value(R, 3)
        end
    end
    if R(1, 3) == 1 then members[#members + 1] = '"signature":"c2ln"' end
    return "{" .. table.concat(members, ",") .. "}"
end

describe("core.ecommpay_callback", function()
    it("signs exactly as core.ecommpay_signature over the lexeme tree, and decodes as core.json_decode", function()
        local placed = 0
        for seed = 1, RUNS * 5 do
            local raw = body(rng(seed))
            local tree, want = core.ecommpay_callback(raw, SECRET)
            assert(tree, raw)
            assert.same(core.json_decode(raw), tree, "seed " .. seed)
            if want then
                placed = placed + 1
                local lexemes = core.json_decode(raw, { numbers = "lexeme" })
                assert.equal(core.ecommpay_signature(lexemes, SECRET, CALLBACK), want, "seed " .. seed .. ": " .. raw)
            else
                assert.is_false(want)
            end
        end
        assert(placed > RUNS, "too few bodies in the pass's reach: " .. placed)
    end)

    it("leaves to the tree what it cannot place, and says what is not JSON", function()
        local cases = {
            '[1]', '"x"', '{"a":1,"a":2}', '{"a":{"b":1},"a":{"c":2}}', '{"x y":1}', '{"a01":1}', '{"a:b":1}',
            '{"":1}', '{"n":-0}', '{"n":1.0}', '{"n":1e3}', '{"n":12345678901234567890}',
            '{"d":' .. string.rep("[", 70) .. string.rep("]", 70) .. '}',
        }
        for _, raw in ipairs(cases) do
            local tree, want = core.ecommpay_callback(raw, SECRET)
            assert.same(core.json_decode(raw), tree, raw)
            assert.is_false(want, raw)
        end
        local tree, err = core.ecommpay_callback('{"a":', SECRET)
        assert.is_nil(tree)
        assert.equal(select(2, core.json_decode('{"a":')), err)
    end)

    it("places the bodies ecommpay sends: the callback vectors", function()
        for _, v in ipairs(util.json_fixture("vectors/ecommpay.json").callback_vectors) do
            local tree, want = core.ecommpay_callback(v.raw_body, v.secret)
            assert.same(core.json_decode(v.raw_body), tree, v.name)
            assert.truthy(want, v.name)
            local lexemes = core.json_decode(v.raw_body, { numbers = "lexeme" })
            assert.equal(core.ecommpay_signature(lexemes, v.secret, CALLBACK), want, v.name)
            assert.equal(v.expected_valid, ecommpay.verify_notification(v.raw_body, nil, { secret = v.secret }) ~= nil,
                v.name)
        end
    end)
end)

-- Callbacks shaped as ecommpay sends them, with ids, codes and amounts as
-- numbers or strings, errors, redirect data, recurring and clarification.
local function callback(R)
    local function id()
        if R(1, 10) == 1 then return pick(R, { "1.5", "1e3", "-0", "12345678901234567890", "1.0" }) end
        return pick(R, { '"TRUSTLY-0001"', "41000000123", "0", '""', "null", "123456789012345", "-7" })
    end
    local function word(list) return '"' .. pick(R, list) .. '"' end
    local parts = {
        '"project_id":' .. pick(R, { "12345", '"12345"', "1.0" }),
        '"payment":{"id":' .. id() .. ',"type":' .. word({ "purchase", "payout", "refund", "verify" }) .. ',"status":'
            .. word({ "success", "decline", "awaiting customer", "refunded", "reversed", "x" })
            .. ',"sum":{"amount":' .. pick(R, { "10000", "0", "-5", "1.5", '"100"' }) .. ',"currency":"SEK"}}',
        '"operation":{"id":' .. id() .. ',"type":' .. word({ "sale", "refund", "payout", "reversal", "cancel" })
            .. ',"status":' .. word({ "success", "decline", "error", "processing", "reversed" }) .. ',"code":' .. id()
            .. ',"message":' .. id() .. ',"request_id":' .. id()
            .. ',"sum_initial":{"amount":' .. pick(R, { "10000", "7", '"7"' }) .. ',"currency":"EUR"}}',
        '"customer":{"id":' .. id() .. '}',
    }
    if R(1, 3) == 1 then parts[#parts + 1] = '"errors":[{"code":' .. id() .. ',"message":"bad","field":"x"}]' end
    if R(1, 3) == 1 then
        parts[#parts + 1] = '"redirect_data":{"url":"https://acs.example/3ds","method":"POST","body":{"PaReq":'
            .. id() .. ',"n":' .. id() .. '}}'
    end
    if R(1, 3) == 1 then parts[#parts + 1] = '"recurring":{"id":' .. id() .. ',"currency":"EUR"}' end
    if R(1, 4) == 1 then parts[#parts + 1] = '"clarification_fields":{"customer":["first_name",' .. id() .. ']}' end
    if R(1, 5) == 1 then parts[#parts + 1] = '"general":{"payment_id":' .. id() .. ',"project_id":12345}' end
    return "{" .. table.concat(parts, ",") .. "}"
end

describe("ecommpay.verify_notification through the one pass", function()
    it("gives the event the lexeme tree gives, for every body", function()
        local placed = 0
        for seed = 1, RUNS * 2 do
            local R = rng(seed)
            local unsigned = callback(R)
            local lexemes = assert(core.json_decode(unsigned, { numbers = "lexeme" }))
            local sig = assert(core.ecommpay_signature(lexemes, SECRET, CALLBACK))
            local raw = unsigned:sub(1, -2) .. ',"signature":"' .. sig .. '"}'
            local event, err = ecommpay.verify_notification(raw, nil, { secret = SECRET })
            assert(event, "seed " .. seed .. ": " .. tostring(err))
            if select(2, core.ecommpay_callback(raw, SECRET)) then placed = placed + 1 end
            local want = ecommpay.event(core.json_decode(raw, { numbers = "lexeme" }), raw)
            assert.same(want, event, "seed " .. seed .. ": " .. raw)
            local tampered = raw:gsub('"SEK"', '"EUR"', 1)
            assert.is_nil(ecommpay.verify_notification(tampered, nil, { secret = SECRET }), "seed " .. seed)
        end
        assert(placed > RUNS / 4, "too few callbacks in the pass's reach: " .. placed)
    end)
end)
