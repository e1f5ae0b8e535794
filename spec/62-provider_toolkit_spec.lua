-- luapay.provider's shared helpers: one behaviour for every provider (they
-- were copies that disagreed under LuaJIT).
local provider = require "luapay.provider"

describe("luapay.provider toolkit", function()
    it("is_integer takes only exact integers, on Lua 5.4 and LuaJIT alike", function()
        assert.is_true(provider.is_integer(0))
        assert.is_true(provider.is_integer(-42))
        assert.is_true(provider.is_integer(9007199254740992)) -- 2^53
        assert.is_false(provider.is_integer(1.5))
        assert.is_false(provider.is_integer("1"))
        assert.is_false(provider.is_integer(nil))
        -- A double past 2^53 no longer holds every whole number: not an
        -- exact amount (the Trustly copy took it under LuaJIT), nor infinity
        -- (the ecommpay copy took it under LuaJIT).
        assert.is_false(provider.is_integer(2 ^ 60))
        assert.is_false(provider.is_integer(math.huge))
        assert.is_false(provider.is_integer(-math.huge))
        assert.is_false(provider.is_integer(0 / 0))
    end)

    it("integer turns an integral number into an integer, within 2^53 under LuaJIT", function()
        assert.equal(652801, provider.integer(652801.0))
        assert.is_nil(provider.integer(1.5))
        assert.is_nil(provider.integer("7"))
        assert.is_nil(provider.integer(math.huge))
        assert.is_nil(provider.integer(2 ^ 60)) -- a float past 2^53: which integer is unknown
        if math.type then assert.equal(math.maxinteger, provider.integer(math.maxinteger)) end
    end)

    it("copy is deep, keeps JSON number objects and arrays, and refuses a cycle for every provider", function()
        local core = require "luapay.core"
        local n = setmetatable({ "1.10" }, core.number_mt)
        local src = { a = { b = n }, list = setmetatable({ 1, 2 }, core.array_mt) }
        local c = provider.copy(src)
        assert.are_not.equal(src.a, c.a)
        assert.equal(n, c.a.b)
        assert.equal(core.array_mt, getmetatable(c.list))
        local cycle = {}
        cycle.self = cycle
        assert.error_matches(function() provider.copy(cycle, "who") end, "who: request nested too deeply")
        -- Trustly's copy had no depth limit: a cycle overflowed the C stack.
        local trustly = require "luapay.trustly"
        local ok, err = pcall(trustly.prepare, "Refund", { OrderID = "1", Attributes = cycle }, "u", "p")
        assert.is_false(ok)
        assert.matches("nested too deeply", err)
    end)

    it("validation errors are worded once, in luapay.errors, for every provider", function()
        local errors = require "luapay.errors"
        assert.same({ path = "a", code = "type", message = "a: is bad" }, errors.violation("a", "type", "is bad"))
        assert.equal("value: is bad", errors.violation("", "type", "is bad").message)
        local err = errors.validation("x.y", { errors.violation("b", "range", "r"), errors.violation("a", "type", "t") })
        assert.equal("validation", err.type)
        assert.equal("x.y: 2 invalid fields", err.message)
        assert.same({ "a", "b" }, { err.fields[1].path, err.fields[2].path })
    end)

    it("option checks are the toolkit's: one wording, raised at the constructor's caller", function()
        local function raises(f, pattern)
            local ok, err = pcall(f)
            assert.is_false(ok)
            assert.matches("^spec/62%-provider_toolkit_spec%.lua:%d+: " .. pattern, err)
        end
        for _, name in ipairs { "ecommpay", "trustly", "trustpay", "begateway", "trustly_na" } do
            local m = require("luapay." .. name)
            raises(function() m.new("x") end, name .. "%.new: bad argument #1 'opts' %(table expected, got string%)")
        end
        -- the environment, the URLs and the transport options too, for all five
        local keys = require "luapay.sandbox.test_keys"
        for name, base in pairs {
            ecommpay = { project_id = 1, secret = "s" }, trustpay = { account_id = "1", secret = "s" },
            trustly = { username = "u", password = "p", private_key = keys.merchant_private },
            begateway = { psp_id = 1, secret = "s", dwh_url = "https://x" }, trustly_na = { access_id = "a", access_key = "k" },
        } do
            local m = require("luapay." .. name)
            local function with(k, v)
                local o = { [k] = v }
                for key, x in pairs(base) do o[key] = x end
                return o
            end
            raises(function() m.new(with("timeout_ms", 0)) end, name .. "%.new: option 'timeout_ms' must be a whole number")
            raises(function() m.new(with("environment", "prod")) end, name .. "%.new: option 'environment' must be")
            raises(function() m.new(with("verify", false)) end, name .. "%.new: verify = false is allowed only")
            local o = with("http", require("luapay.http").new {})
            o.retries = 1
            raises(function() m.new(o) end, name .. "%.new: option 'retries' cannot be given with 'http'")
        end
        local trustly_na = require "luapay.trustly_na"
        raises(function() trustly_na.new { access_key = "k" } end, "trustly_na%.new: option 'access_id' is required")
        local begateway = require "luapay.begateway"
        raises(function() begateway.new { psp_id = 1, secret = "", dwh_url = "https://x" } end,
            "begateway%.new: option 'secret' must be a non%-empty string")
        raises(function() begateway.new { psp_id = "a:b", secret = "s", dwh_url = "https://x" } end,
            "begateway%.new: option 'psp_id' must be an id")
        local trustly = require "luapay.trustly"
        raises(function() trustly.new { username = "" } end, "trustly%.new: option 'username' must be a non%-empty string")
    end)

    it("digits and plain are one reading of numbers for every provider", function()
        local core = require "luapay.core"
        assert.equal("9007199254740992", provider.digits(2 ^ 53))
        assert.equal("42", provider.digits(42))
        local n = setmetatable({ "652801" }, core.number_mt)
        local p = provider.plain({ a = n, list = setmetatable({ n }, core.array_mt) })
        assert.equal(652801, p.a)
        if math.type then assert.equal("integer", math.type(p.a)) end
        assert.equal(core.array_mt, getmetatable(p.list))
        assert.equal("652801", provider.plain(n, true))
        assert.equal(require("luapay.trustly").plain, provider.plain)
    end)

    it("event_maker builds provider.event's event and refuses what it refuses, without a walk for other fields", function()
        local make = provider.event_maker("demo")
        local extra = { id = "1" }
        local got = make("payment", "succeeded", "m-1", "p-1", 4990, "SEK", "{}", extra)
        local want = provider.event { provider = "demo", kind = "payment", status = "succeeded", merchant_ref = "m-1",
            provider_ref = "p-1", amount = 4990, currency = "SEK", raw = "{}", extra = { id = "1" } }
        assert.equal(provider.event_mt, getmetatable(got))
        assert.same(want, got)
        assert.equal(extra, got.extra)
        assert.equal("1", got.id) -- the 0.1 names still read extra
        assert.same({}, make("other", "pending", nil, nil, nil, nil, "").extra)
        assert.has_error(function() provider.event_maker(1) end,
            "luapay.provider.event_maker: bad argument #1 'name' (string expected)")
        assert.has_error(function() make("sale", "succeeded", nil, nil, nil, nil, "") end,
            "luapay.provider.event_maker: kind 'sale' is not in provider.KINDS")
        assert.has_error(function() make("payment", "done", nil, nil, nil, nil, "") end,
            "luapay.provider.event_maker: status 'done' is not in provider.STATUSES")
        assert.has_error(function() make("payment", "pending", nil, nil, nil, nil, 1) end,
            "luapay.provider.event_maker: raw must be the body as received (a string)")
        for _, bad in ipairs({ 1.5, "10", 2 ^ 60 }) do
            assert.has_error(function() make("payment", "pending", nil, nil, bad, nil, "") end,
                "luapay.provider.event_maker: amount must be an integer")
        end
    end)
end)
