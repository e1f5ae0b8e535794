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
        if not math.type then assert.is_nil(provider.integer(2 ^ 60)) end
    end)
end)
