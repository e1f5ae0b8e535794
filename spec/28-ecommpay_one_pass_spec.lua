-- ecommpay's hot paths in one C pass (issue 15), against what they replaced.
--
-- core.ecommpay_callback: a callback's signature computed from
-- its text in the pass that decodes it must be exactly the one
-- core.ecommpay_signature gives over the lexeme tree, and the body exactly
-- core.json_decode's; what that pass cannot place it leaves to the tree
-- (false), never guesses. Random bodies written as text, so that keys
-- repeat, numbers take every form and natural order's corners (digits,
-- leading zeros, spaces, ':') come up. core.ecommpay_page_url: the URL
-- the Lua code built (the reference below). Seeded: a failure names its seed.
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local util = require "support.util"
local property = require "support.property"

local RUNS, rng, pick = property.RUNS, property.rng, property.pick
local CALLBACK = { callback = true }
local SECRET = "s3cr3t"

local KEYS = { "a", "b", "ab", "a1", "a2", "a10", "a9", "a0", "0", "1", "9", "10", "1a", "a1b2", "a-b", "a_b", "A",
    "Z", "z", "\195\169", "signature", "frame_mode", "payment", "sum", "amount", "id", "a.b", "~", "0x", "a0b",
    "a00", "12345678901234567890", "a1", "b",
    -- keys alike in their first eight bytes (the heads a few siblings are sorted by)
    "customer", "customer_id", "customer_ip", "customer_id2", "customer:", "customerA", "abcdefgh", "abcdefg" }
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

    it("orders every pair of siblings as the tree does, and places every object without a repeated key", function()
        -- prefixes of one another, a byte below ':' after the prefix (a
        -- container's key sorts as key .. ':'), digits, bytes from 0x80, and
        -- keys alike in their first eight bytes
        local PAIR_KEYS = { "a", "a-b", "a.b", "a!", "a1", "a10", "a9", "ab", "a\\u00e9", "\\u00e9", "a\195\169", "customer",
            "customer_id", "customer_ip", "customer_i", "customer_id2", "customer-x", "abcdefgh", "abcdefg" }
        local VALUES = { "1", '"v"', "null", "true", '{"x":1}', '[1,{"y":2}]' }
        for _, k1 in ipairs(PAIR_KEYS) do
            for _, k2 in ipairs(PAIR_KEYS) do
                for _, v1 in ipairs(VALUES) do
                    for _, v2 in ipairs({ "2", '{"z":3}' }) do
                        local raw = ('{"%s":%s,"%s":%s,"m":0}'):format(k1, v1, k2, v2)
                        local tree, want = core.ecommpay_callback(raw, SECRET)
                        if k1 ~= k2 and not (k1 .. k2):find("\\", 1, true) then -- a key with an escape: to the tree
                            assert(want, "not placed: " .. raw)
                        end
                        if want then
                            local lexemes = core.json_decode(raw, { numbers = "lexeme" })
                            assert.equal(core.ecommpay_signature(lexemes, SECRET, CALLBACK), want, raw)
                        end
                        assert.same(core.json_decode(raw), tree, raw)
                    end
                end
            end
        end
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

-- Callbacks whose parts the event reads take every shape: absent, null,
-- false, a string, an array, an object without the member read, a number
-- where text is read and text where a number is. For a body it places,
-- core.ecommpay_callback reads the event's scalars itself (the picks
-- luapay.ecommpay gives it): the event must be the one Lua's reading of
-- the lexeme tree gives.
local function odd_callback(R)
    local WORDS = { '"success"', '"decline"', '"reversed"', '"refunded"', '"sale"', '"refund"', '"purchase"',
        '"payout"', '"error"', '"x"', '""', '"\\u00e9"' }
    local ODD = { "0", "7", "-3", "41000000123", "123456789012345", "true", "false", "null", "[]", "{}", '["a"]',
        '{"id":1}', '"12345"', '"a\\"b"' }
    local function scalar() return R(1, 2) == 1 and pick(R, WORDS) or pick(R, ODD) end
    -- a member's value: its usual shape (build), or now and then any other
    local function shape(build)
        if R(1, 5) > 1 then return build() end
        return pick(R, { "null", "false", "true", '"x"', "3", "[]", "[{}]", '[{"id":"a"}]', "{}" })
    end
    local function object(keys, extra)
        local parts = {}
        for _, k in ipairs(keys) do
            if R(1, 5) > 1 then parts[#parts + 1] = '"' .. k .. '":' .. shape(scalar) end
        end
        for k, build in pairs(extra or {}) do
            if R(1, 5) > 1 then parts[#parts + 1] = '"' .. k .. '":' .. shape(build) end
        end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    local function sum() return object({ "amount", "currency" }) end
    local members = {
        project_id = function() return pick(R, { "12345", '"12345"', "0", "-1", "null", "false" }) end,
        payment = function() return object({ "id", "type", "status" }, { sum = sum }) end,
        operation = function()
            return object({ "id", "type", "status", "request_id", "code", "message" }, { sum_initial = sum })
        end,
        general = function() return object({ "project_id", "payment_id" }) end,
        customer = function() return object({ "id" }) end,
    }
    local parts = {}
    for _, name in ipairs({ "project_id", "payment", "operation", "general", "customer" }) do
        if R(1, 6) > 1 then parts[#parts + 1] = '"' .. name .. '":' .. shape(members[name]) end
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

describe("ecommpay.verify_notification, the event's scalars read in C", function()
    it("gives the event the lexeme tree gives, whatever shape the parts it reads take", function()
        local placed = 0
        for seed = 1, RUNS * 5 do
            local unsigned = odd_callback(rng(seed))
            local lexemes = assert(core.json_decode(unsigned, { numbers = "lexeme" }), unsigned)
            local sig = assert(core.ecommpay_signature(lexemes, SECRET, CALLBACK))
            local raw = unsigned:sub(1, -2) .. (unsigned == "{}" and "" or ",") .. '"signature":"' .. sig .. '"}'
            local event, err = ecommpay.verify_notification(raw, nil, { secret = SECRET })
            assert(event, "seed " .. seed .. ": " .. tostring(err))
            if select(2, core.ecommpay_callback(raw, SECRET)) then placed = placed + 1 end
            local want = ecommpay.event(core.json_decode(raw, { numbers = "lexeme" }), raw)
            if not property.same(want, event) then
                assert.same(want, event, "seed " .. seed .. ": " .. raw) -- names the difference
                error("seed " .. seed .. ": an integer for a float, or the other way: " .. raw)
            end
        end
        assert(placed > RUNS * 4, "too few callbacks in the pass's reach: " .. placed)
    end)

    it("hands back the scalars Lua reads from the lexeme tree, for every body it places", function()
        local NAMES = { "project_id", "payment_status", "payment_type", "payment_amount", "operation_type",
            "operation_status", "request_id", "code", "message", "customer_id" }
        local placed = 0
        for seed = 1, RUNS * 5 do
            local raw = odd_callback(rng(seed))
            local _, sig, extra, payment_id, general_payment_id, provider_ref, amount, currency =
                core.ecommpay_callback(raw, SECRET, ecommpay.CALLBACK_PICKS)
            local merchant_ref = payment_id or general_payment_id
            if sig then
                placed = placed + 1
                local want = ecommpay.event(core.json_decode(raw, { numbers = "lexeme" }), raw)
                local got = {}
                for _, name in ipairs(NAMES) do got[name] = want.extra[name] end
                assert(property.same(got, extra), "seed " .. seed .. ": " .. raw)
                assert(property.same({ want.merchant_ref, want.provider_ref, want.amount, want.currency },
                    { merchant_ref, provider_ref, amount, currency }), "seed " .. seed .. ": " .. raw)
            end
        end
        assert(placed > RUNS * 4, "too few callbacks in the pass's reach: " .. placed)
    end)

    it("reads the bench's callback as Lua does", function()
        for _, v in ipairs(util.json_fixture("vectors/ecommpay.json").callback_vectors) do
            if v.expected_valid then
                local event = assert(ecommpay.verify_notification(v.raw_body, nil, { secret = v.secret }))
                local want = ecommpay.event(core.json_decode(v.raw_body, { numbers = "lexeme" }), v.raw_body)
                assert(property.same(want, event), v.name)
            end
        end
    end)
end)

-- The Payment Page URL as the Lua code built it before core.ecommpay_page_url
-- (kept here as the reference): PAGE_ORDER first, the rest in byte order,
-- the signature of the values last.
local PAGE_ORDER = { "project_id", "interface_type", "payment_id", "payment_amount", "payment_currency",
                     "customer_id", "payment_description", "language_code", "redirect", "redirect_success_url" }
local function reference_page_url(params, secret, base_url)
    local rank = {}
    for i, k in ipairs(PAGE_ORDER) do rank[k] = i end
    local values, rest = {}, {}
    for k, v in pairs(params) do
        if k ~= "signature" and v ~= core.null then
            if type(v) == "boolean" then v = v and "1" or "0"
            elseif math.type and math.type(v) == "integer" then v = tostring(v)
            elseif type(v) == "number" then v = ("%.0f"):format(v)
            elseif type(v) == "table" then v = v[1] end
            values[k] = v
            if not rank[k] then rest[#rest + 1] = k end
        end
    end
    table.sort(rest)
    local query = {}
    for _, k in ipairs(PAGE_ORDER) do
        if values[k] then query[#query + 1] = k; query[#query + 1] = values[k] end
    end
    for _, k in ipairs(rest) do query[#query + 1] = k; query[#query + 1] = values[k] end
    query[#query + 1] = "signature"
    query[#query + 1] = core.hmac("sha512", secret, assert(core.ecommpay_canonical(values)), "base64")
    local base = (base_url or ecommpay.PAYMENT_PAGE_URL):gsub("/+$", "")
    return core.form_encode(query, true, base .. "/payment?")
end

describe("ecommpay.payment_page_url in one C call", function()
    it("builds the URL the Lua code built, for random parameters", function()
        local NAMES = { "project_id", "payment_id", "payment_amount", "payment_currency", "customer_id", "redirect",
            "language_code", "payment_description", "interface_type", "redirect_success_url", "frame_mode",
            "signature", "a:b", "x y", "a1", "a10", "a2", "A", "z", "\195\169", "mode", "force_payment_method",
            "customer_email", "01", "1" }
        local VALUES = { "", "SEK", "K\195\182p #42 & mer", "a b+c/d?e=f", "~-._", "1", "\226\130\172", true, false,
            0, 12345, -7, 2 ^ 40, -0.0, core.null, core.json_number("1.50"), core.json_number("12345678901234567890") }
        for seed = 1, RUNS do
            local R = rng(seed)
            local params = {}
            for _ = 1, R(0, 14) do params[pick(R, NAMES)] = pick(R, VALUES) end
            local base = pick(R, { nil, "https://paymentpage.ecommpay.com", "http://127.0.0.1:8080/", "https://x//" })
            local got = ecommpay.payment_page_url(params, SECRET, base)
            assert.equal(reference_page_url(params, SECRET, base), got, "seed " .. seed)
            assert.equal(got, core.ecommpay_page_url(params, SECRET, PAGE_ORDER, base or ecommpay.PAYMENT_PAGE_URL))
        end
    end)

    it("leaves to Lua what it cannot write: tables as JSON, and the errors", function()
        assert.is_false(core.ecommpay_page_url({ booking_info = { a = 1 } }, SECRET, PAGE_ORDER, "https://x"))
        assert.is_false(core.ecommpay_page_url({ payment_amount = 1.5 }, SECRET, PAGE_ORDER, "https://x"))
        assert.is_false(core.ecommpay_page_url({ [1] = "x" }, SECRET, PAGE_ORDER, "https://x"))
        local url = ecommpay.payment_page_url({ project_id = 1, booking_info = { a = 1 } }, SECRET)
        assert.truthy(url:find("booking_info=%7B%22a%22%3A1%7D", 1, true))
        assert.has_error(function() ecommpay.payment_page_url({ payment_amount = 1.5 }, SECRET) end,
            "ecommpay.payment_page_url: bad argument #1 'params' (payment_amount is a float: send amounts as integers in minor units)")
    end)
end)

-- The canonical string of a Lua tree, as the walk wrote it before members
-- were placed per object: every path flattened (pairs' order, the walk's),
-- then sorted by a line-by-line port of PHP's strnatcmp, then bytes; nil
-- when two paths are the same bytes (refused: their order would be pairs').
local function reference_canonical(params)
    local strnatcmp = require "support.strnatcmp"
    local entries = {}
    local function walk(t, prefix)
        local function add(k, v)
            k = k:gsub(":", "::")
            local path = (prefix or "") ~= "" and (prefix .. ":" .. k) or k -- none after an empty path
            if type(v) == "table" then return walk(v, path) end
            if type(v) == "boolean" then v = v and "1" or "0" end
            if v == core.null then v = "" end
            entries[#entries + 1] = { path, tostring(v) }
        end
        if #t > 0 then
            for i, v in ipairs(t) do add(tostring(i - 1), v) end
        else
            for k, v in pairs(t) do if k ~= "frame_mode" then add(k, v) end end
        end
    end
    walk(params)
    local seen = {}
    for _, e in ipairs(entries) do
        if seen[e[1]] then return nil end
        seen[e[1]] = true
    end
    table.sort(entries, function(x, y)
        local r = strnatcmp(x[1], y[1])
        if r ~= 0 then return r < 0 end
        return x[1] < y[1]
    end)
    for i, e in ipairs(entries) do entries[i] = e[1] .. ":" .. e[2] end
    return table.concat(entries, ";")
end

describe("core.ecommpay_canonical, members placed per object", function()
    it("writes what sorting every path wrote, for random trees", function()
        local IN = { "a", "b", "ab", "a1", "a2", "a10", "a9", "0", "1", "9", "10", "1a", "a-b", "a_b", "A", "Z", "id",
            "a.b", "~", "\195\169", "sum", "amount", "frame_mode", "k12x3", "payment" }
        local OUT = { "a01", "00", "x y", " a", "a:b", "a:", "", "01", "a\tb" }
        local corners -- this tree has keys out of reach now and then (sorted as every path), or none
        local function tree(R, depth)
            if depth > 3 or R(1, 3) == 1 then
                return pick(R, { "v", "", "x;y:z", 0, 7, -1, 12345678901, true, false, core.null })
            end
            local t = {}
            if R(1, 4) == 1 then
                for i = 1, R(1, 12) do t[i] = tree(R, depth + 1) end
            else
                for _ = 1, R(0, depth == 0 and 40 or 8) do
                    local k = corners and R(1, 25) == 1 and pick(R, OUT) or pick(R, IN)
                    if R(1, 6) == 1 then k = k .. R(0, 300) end
                    t[k] = tree(R, depth + 1)
                end
            end
            return t
        end
        for seed = 1, RUNS do
            local R = rng(seed)
            corners = R(1, 2) == 1
            local params = tree(R, 0)
            if type(params) ~= "table" then params = { v = params } end
            local want, got = reference_canonical(params), core.ecommpay_canonical(params)
            if want == nil or got == nil then
                assert.equal(want, got, "seed " .. seed) -- both refuse
            elseif want ~= got then
                local i = 1
                while want:byte(i) == got:byte(i) do i = i + 1 end
                error(("seed %d: differs at byte %d: %q / %q"):format(seed, i, want:sub(i - 20, i + 40), got:sub(i - 20, i + 40)))
            end
        end
    end)
end)

-- core.ecommpay_canonical writes a body whose keys are all in reach in one
-- pass (each table's members sorted by key and written out); anything else
-- goes to the walk, which sorts every path. The walk's answer for the same
-- body: the body with one more key out of reach ("\1", its entry found and
-- cut out after), which sends all of it the walk's way.
local MARK = "\1:\1"
local function by_the_walk(params, opts)
    local copy = {}
    for k, v in pairs(params) do copy[k] = v end
    copy["\1"] = "\1"
    local s, err = core.ecommpay_canonical(copy, opts)
    if not s then return s, err end
    local i = assert(s:find(MARK, 1, true), "the mark is missing")
    if s == MARK then return "" end
    if i == 1 then return s:sub(#MARK + 2) end -- "MARK;rest"
    return s:sub(1, i - 2) .. s:sub(i + #MARK) -- "...;MARK..."
end

-- Lua's own test of "in reach" (csrc/ecommpay.c: key_in_reach), to count
-- the bodies the one pass took.
local function key_in_reach(k)
    return k ~= "" and not k:find("[%z\1- :]") and not k:find("%f[%d]0%d")
end
local function all_in_reach(t, opts)
    if type(t) ~= "table" or getmetatable(t) == core.number_mt then return true end
    for k, v in pairs(t) do
        if type(k) == "string" and k ~= "frame_mode" and not (opts and k == "signature" and v ~= core.null) then
            if not key_in_reach(k) or not all_in_reach(v, opts) then return false end
        elseif type(k) == "number" and not all_in_reach(v, opts) then
            return false
        end
    end
    return true
end

describe("core.ecommpay_canonical in one pass", function()
    -- Natural order's corners: digit runs ("a9" < "a10"), keys that are
    -- prefixes of others ("a", "a_b", "a-b", "a:b"), eight-byte prefixes
    -- shared or cut at a digit ("abcdefgh9", "abcdefgh10", "abcdefgh"),
    -- bytes below ':' in reach ("a-b", "a.b", "#1", "!x"), UTF-8, keys out
    -- of reach now and then.
    local ONE_KEYS = { "a", "b", "a_b", "a-b", "a.b", "a/b", "ab", "a1", "a2", "a9", "a10", "a01x", "a10b", "a1b", "a1_",
        "0", "1", "9", "10", "99", "100", "1a", "id", "ip_address", "first_name", "email", "abcdefgh", "abcdefgh9",
        "abcdefgh10", "abcdefghi", "abcdefg", "abcdefg1", "abcdefg:", "merchant_callback_url", "merchant_callback",
        "merchant", "#1", "!x", "~", "Z", "\195\169", "\195\169t\195\169", "x;y", "frame_mode", "signature",
        "payment", "sum", "amount", "12345678901234567890", "1234567890123456789", "-1", "-x", "inf", "nan", "info" }
    local OUT = { "a:b", "x y", " a", "a01", "00", "", "a\tb", "a\1" }
    local NUMBER = core.json_number
    local SCALARS = { "v", "", "x;y:z", "\226\130\172", 0, 7, -1, 12345678901, 2 ^ 53, -(2 ^ 53), 2 ^ 53 + 2, 1.5, 0.1,
        -0.0, 1e15, 1e14, 1.5e-7, 123456.789, true, false, core.null, NUMBER("1.0"), NUMBER("-0"), NUMBER("1e3"),
        NUMBER("12345678901234567890"), NUMBER("0.30000000000000004"), NUMBER("-12.5E-3") }
    -- values neither way can sign: each tree has at most one
    local BAD = { 0 / 0, 1 / 0, print, setmetatable({ "x" }, core.number_mt), setmetatable({}, core.number_mt),
        { 1, nil, 3 }, { 1, 2, x = 3 }, { [2] = "x" }, { [1.5] = "x" }, { [true] = 1 },
        -- a number key after string keys (the one pass reads keys as text: it must see one)
        { x = 1, [2] = 2 }, { a = 1, b = 2, c = 3, [1.5] = 4 }, { x = 1, y = 2, [1 / 0] = 3 }, { x = 1, [-1] = 2 },
        { a = 1, b = 2, c = 3, d = 4, [-0.5] = 5 } }

    -- The array t built by a constructor with explicit keys in a random order
    -- ({[3] = v[3], [1] = v[1], ...}): Lua 5.4 keeps them in the hash part.
    local function hashed(R, t)
        local order = {}
        for i = 1, #t do table.insert(order, R(1, i), i) end
        for i, k in ipairs(order) do order[i] = ("[%d] = v[%d]"):format(k, k) end
        return assert((loadstring or load)("local v = ... return { " .. table.concat(order, ", ") .. " }"))(t)
    end

    local function tree(R, depth, state)
        if depth > 3 or R(1, 3) == 1 then
            if not state.bad and R(1, 60) == 1 then
                state.bad = true
                return pick(R, BAD)
            end
            return pick(R, SCALARS)
        end
        local t = {}
        local kind = R(1, 6)
        if kind == 1 then -- an array; now and then all in the hash part, where pairs has no order
            for i = 1, R(1, 12) do t[i] = tree(R, depth + 1, state) end
            if R(1, 2) == 1 then t = hashed(R, t) end
        elseif kind ~= 2 or R(1, 3) ~= 1 then -- (else an empty table: nothing, not even the key)
            for _ = 1, R(0, depth == 0 and (R(1, 4) == 1 and 90 or 24) or 7) do -- past 32, sorted another way
                local k = state.corners and R(1, 20) == 1 and pick(R, OUT) or pick(R, ONE_KEYS)
                if R(1, 8) == 1 then k = k .. R(0, 120) end
                t[k] = tree(R, depth + 1, state)
            end
        end
        return t
    end

    it("writes what the walk writes, for random bodies", function()
        local one_pass = 0
        for seed = 1, RUNS * 3 do
            local R = rng(seed)
            local state = { corners = R(1, 4) == 1 }
            local params = tree(R, 0, state)
            -- the top level as by_the_walk copies it: string keys only (a copy of
            -- { [2] = "x" } may have another length under LuaJIT, so another error)
            local mixed = false
            if type(params) == "table" then for k in pairs(params) do mixed = mixed or type(k) ~= "string" end end
            if type(params) ~= "table" or mixed or getmetatable(params) then params = { v = params } end
            local opts = pick(R, { false, { callback = true }, { callback = false } }) or nil
            if opts and opts.callback and R(1, 2) == 1 then params.signature = pick(R, { "c2ln", core.null, 5 }) end
            local got, err = core.ecommpay_canonical(params, opts)
            local want, werr = by_the_walk(params, opts)
            if got ~= want then
                local i = 1
                while got and want and want:byte(i) == got:byte(i) do i = i + 1 end
                error(("seed %d: %s / %s at byte %d: %q / %q"):format(seed, tostring(err), tostring(werr), i,
                    got and got:sub(math.max(1, i - 30), i + 30) or "nil",
                    want and want:sub(math.max(1, i - 30), i + 30) or "nil"))
            end
            if not (opts and opts.callback) then -- ecommpay.signature's call: the same answers
                assert.same({ core.ecommpay_signature(params, SECRET) }, { core.ecommpay_sign(params, SECRET) },
                    "seed " .. seed)
            end
            if got then
                assert.equal(core.hmac("sha512", SECRET, got, "base64"), core.ecommpay_signature(params, SECRET, opts),
                    "seed " .. seed)
                if all_in_reach(params, opts) then one_pass = one_pass + 1 end
            else
                assert.equal(werr, err, "seed " .. seed)
                assert.same({ nil, err }, { core.ecommpay_signature(params, SECRET, opts) }, "seed " .. seed)
            end
        end
        assert(one_pass > RUNS, "too few bodies for the one pass: " .. one_pass)
    end)

    it("leaves to the walk what neither can sign, with the walk's error", function()
        for i, bad in ipairs(BAD) do
            for _, params in ipairs({ { x = bad }, { a = { b = bad } }, { a = { 1, bad } }, { a = { { b = bad } } } }) do
                local got, err = core.ecommpay_canonical(params)
                assert.is_nil(got, "BAD[" .. i .. "]")
                assert.equal(select(2, by_the_walk(params)), err, "BAD[" .. i .. "]")
            end
        end
    end)

    it("sees a number key wherever pairs puts it among string keys (keys are read as text)", function()
        -- one_table reads a key with lua_tolstring alone and leaves when the
        -- text is one a number could have been written as ("inf" for 1/0):
        -- read on, lua_next would be given the converted key.
        local NUMBER_KEYS = { 1 / 0, -1 / 0, 1.5, -0.5, -1, 0, 2, 2 ^ 53, 1e300 }
        for _, k in ipairs(NUMBER_KEYS) do
            for n = 1, 12 do
                for at = 0, n do -- the number key set after the first at string keys
                    local t = {}
                    for i = 1, n do
                        if i == at + 1 then t[k] = "v" end
                        t[("k%d_"):format(i):rep(i % 3 + 1)] = i
                    end
                    if at == n then t[k] = "v" end
                    -- nested: by_the_walk copies the top level (see "writes what the walk writes")
                    local params = at % 2 == 1 and { a = t, b = "x" } or { a = t }
                    local got, err = core.ecommpay_canonical(params)
                    local want, werr = by_the_walk(params)
                    assert.equal(want, got, tostring(k) .. " among " .. n)
                    assert.equal(werr, err, tostring(k) .. " among " .. n)
                end
            end
        end
    end)

    it("sorts wide objects as the walk does", function()
        local params = { sub = {} }
        for i = 1, 200 do
            local k = pick(rng(i), ONE_KEYS) .. i
            if key_in_reach(k) then params[k] = i end
            params.sub["k" .. i * 7 % 200] = { x = i, [("y"):rep(i % 12 + 1)] = "z" }
        end
        assert(all_in_reach(params))
        assert.equal(by_the_walk(params), core.ecommpay_canonical(params))
    end)

    it("writes the vectors' strings", function()
        for _, v in ipairs(util.json_fixture("vectors/ecommpay.json").vectors) do
            local params = assert(core.json_decode(v.params_json, { numbers = "lexeme" }))
            assert.equal(v.string_to_sign, core.ecommpay_canonical(params), v.name)
            assert.equal(v.string_to_sign, by_the_walk(params), v.name)
            assert.equal(v.signature, core.ecommpay_signature(params, v.secret), v.name)
        end
    end)

    it("places each object's members by key: digits by value, a key before its longer ones", function()
        local params = { a10 = 1, a9 = 2, a = { b = 1 }, a_b = 3, ["a-b"] = 4, abcdefgh10 = 5, abcdefgh9 = 6,
            abcdefgh = 7, x = { "p", "q", { z = 1, y = core.null } }, frame_mode = "iframe" }
        assert.equal("a-b:4;a9:2;a10:1;a:b:1;a_b:3;abcdefgh:7;abcdefgh9:6;abcdefgh10:5;x:0:p;x:1:q;x:2:y:;x:2:z:1",
            core.ecommpay_canonical(params))
    end)
end)
