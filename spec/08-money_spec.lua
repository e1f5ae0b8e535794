local core = require "luapay.core"

local LUA54 = math.type ~= nil -- Lua 5.4 has integer and float subtypes; LuaJIT only doubles
local TWO53 = LUA54 and math.tointeger(2 ^ 53) or 2 ^ 53

local function assert_raises(expected, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.equal(expected, err:sub(-#expected), "got: " .. tostring(err))
end

-- The decimal string of a non-negative integer amount, built digit by digit
-- from a decimal integer string: an oracle independent of the C code.
local function oracle_decimal(digits, exponent)
    digits = ("0"):rep(exponent + 1 - #digits) .. digits
    if exponent == 0 then return digits end
    return digits:sub(1, #digits - exponent) .. "." .. digits:sub(-exponent)
end

local function integer_string(v)
    return LUA54 and tostring(v) or ("%.0f"):format(v)
end

describe("a merchant pricing in minor units", function()
    it("turns 150 minor units into each currency's decimal form", function()
        assert.equal("1.50", core.to_decimal(150, "EUR"))
        assert.equal("150", core.to_decimal(150, "JPY"))
        assert.equal("0.150", core.to_decimal(150, "KWD"))
        assert.equal("0.0150", core.to_decimal(150, "CLF"))
        assert.equal("1.50", core.to_decimal(150, "SEK"))
    end)

    it("pads small amounts and writes zero with all its decimals", function()
        assert.equal("0.00", core.to_decimal(0, "EUR"))
        assert.equal("0.01", core.to_decimal(1, "EUR"))
        assert.equal("0.10", core.to_decimal(10, "EUR"))
        assert.equal("0", core.to_decimal(0, "JPY"))
        assert.equal("0.001", core.to_decimal(1, "BHD"))
        assert.equal("0.0001", core.to_decimal(1, "UYW"))
        assert.equal("103.00", core.to_decimal(10300, "EUR")) -- Trustly's Amount "103.00"
    end)

    it("reads the decimal forms back exactly", function()
        assert.equal(150, core.to_minor("1.50", "EUR"))
        assert.equal(150, core.to_minor("150", "JPY"))
        assert.equal(150, core.to_minor("0.150", "KWD"))
        assert.equal(10300, core.to_minor("103.00", "EUR"))
        assert.equal(0, core.to_minor("0.00", "EUR"))
        assert.equal(1, core.to_minor("0.0001", "CLF"))
        if LUA54 then assert.equal("integer", math.type(core.to_minor("1.50", "EUR"))) end
    end)

    it("handles 2^53 minor units and refuses 2^53 + 1", function()
        assert.equal("90071992547409.92", core.to_decimal(TWO53, "EUR"))
        assert.equal(TWO53, core.to_minor("90071992547409.92", "EUR"))
        assert.equal(TWO53, core.to_minor("9007199254740992", "JPY"))
        local v, err = core.to_minor("90071992547409.93", "EUR")
        assert.is_nil(v)
        assert.equal("to_minor: amount beyond 2^53 minor units", err)
        assert.is_nil((core.to_minor("9007199254740993", "JPY")))
        assert.is_nil((core.to_minor("99999999999999999999999999.99", "EUR")))
        if LUA54 then
            v, err = core.to_decimal(TWO53 + 1, "EUR")
            assert.is_nil(v)
            assert.equal("to_decimal: amount beyond 2^53 minor units", err)
        else
            assert.is_nil((core.to_decimal(2 ^ 53 + 2, "EUR"))) -- 2^53 + 1 is not a double
        end
    end)

    it("gives both VMs' floats beyond 2^53 the same answer: too large, in money and in validation", function()
        -- 2^53 + 2 and -2^60 are floats in Lua 5.4 and numbers in LuaJIT
        for _, big in ipairs { 2 ^ 53 + 2, -2 ^ 60, 1e300 } do
            assert.equal("to_decimal: amount beyond 2^53 minor units", select(2, core.to_decimal(big, "EUR")))
            assert.same({ nil, "value: must be at most 2^53 minor units in size", "range" },
                { core.check("amount", big, { allow_negative = true }) })
            assert.same({ nil, "value: must be within -2^53..2^53", "range" }, { core.check("integer", big) })
        end
    end)

    local malformed = {
        { "1.5", "EUR", "to_minor: EUR amounts have exactly 2 decimals" },
        { "1.500", "EUR", "to_minor: EUR amounts have exactly 2 decimals" },
        { "150", "EUR", "to_minor: EUR amounts have exactly 2 decimals" },
        { "1.50", "JPY", "to_minor: JPY amounts have exactly 0 decimals (no decimal point)" },
        { "0.15", "KWD", "to_minor: KWD amounts have exactly 3 decimals" },
    }
    for _, m in ipairs(malformed) do
        it(("refuses %q in %s: wrong number of decimals"):format(m[1], m[2]), function()
            local v, err = core.to_minor(m[1], m[2])
            assert.is_nil(v)
            assert.equal(m[3], err)
        end)
    end

    for _, s in ipairs {
        "-1.50", "+1.50", "1e2", "1.5e1", "1E2", " 1.50", "1.50 ", "1 000.00", "1,50", "1.50\n",
        "", ".50", "1.", "01.50", "00.50", "1..50", "0x10", "1.5O", "１.50", "1.50\0",
    } do
        it(("refuses %q: signs, exponents, spaces and other shapes"):format(s), function()
            local v, err = core.to_minor(s, "EUR")
            assert.is_nil(v)
            assert.matches("^to_minor: not a plain decimal", err)
        end)
    end

    it("refuses floats, NaN, infinities and negative amounts with nil, err", function()
        local v, err = core.to_decimal(1.5, "EUR")
        assert.is_nil(v)
        assert.equal("to_decimal: amount must be an integer in minor units, not a float", err)
        assert.equal("to_decimal: amount is not a finite number", select(2, core.to_decimal(0 / 0, "EUR")))
        assert.equal("to_decimal: amount is not a finite number", select(2, core.to_decimal(math.huge, "EUR")))
        assert.equal("to_decimal: amount is negative", select(2, core.to_decimal(-1, "EUR")))
        if LUA54 then
            -- a float subtype is refused even with an integral value: the
            -- merchant's code computed it with floating point somewhere
            assert.equal("to_decimal: amount must be an integer in minor units, not a float",
                select(2, core.to_decimal(150.0, "EUR")))
        else
            assert.equal("1.50", core.to_decimal(150.0, "EUR")) -- LuaJIT numbers are doubles
        end
    end)

    it("refuses unknown or withdrawn currencies with nil, err", function()
        for _, code in ipairs { "XYZ", "eur", "EU", "EURO", "HRK", "ZWL", "BGN", "XAU", "XXX" } do
            local v, err = core.to_minor("1.00", code)
            assert.is_nil(v)
            assert.equal("to_minor: unknown currency (not an active ISO 4217 code)", err)
            assert.equal("to_decimal: unknown currency (not an active ISO 4217 code)", select(2, core.to_decimal(100, code)))
        end
    end)

    it("raises for arguments of the wrong type", function()
        assert_raises("to_decimal: bad argument #1 'minor' (number expected, got string)", core.to_decimal, "150", "EUR")
        assert_raises("to_decimal: bad argument #2 'currency' (string expected, got no value)", core.to_decimal, 150)
        assert_raises("to_minor: bad argument #1 'decimal' (string expected, got number)", core.to_minor, 1.5, "EUR")
        assert_raises("to_minor: bad argument #2 'currency' (string expected, got table)", core.to_minor, "1.50", {})
        assert_raises("currency: bad argument #1 'currency' (string expected, got number)", core.currency, 978)
    end)
end)

describe("round trips", function()
    -- 10,000 random amounts for every exponent the currency table uses,
    -- each checked against the oracle and read back.
    local by_exponent = {}
    for _, code in ipairs(core.currencies()) do
        local e = core.currency(code).exponent
        by_exponent[e] = by_exponent[e] or code
    end

    local function random_amount()
        -- spread over all magnitudes up to 2^53: a random number of digits
        -- 21 + 16 + 16 bits = 2^53, in pieces Lua 5.1 and 5.2's math.random take
        local v = (math.random(0, 2 ^ 21 - 1) * 2 ^ 16 + math.random(0, 2 ^ 16 - 1)) * 2 ^ 16 + math.random(0, 2 ^ 16 - 1)
        v = math.floor(v / 10 ^ math.random(0, 15))
        if LUA54 then v = math.tointeger(v) end
        return v
    end

    local exponents = {}
    for e in pairs(by_exponent) do exponents[#exponents + 1] = e end
    table.sort(exponents)

    it("finds the exponents 0, 2, 3 and 4 in the table", function()
        assert.same({ 0, 2, 3, 4 }, exponents)
    end)

    for _, e in ipairs(exponents) do
        it("round-trips 10,000 random amounts with exponent " .. e .. " (" .. by_exponent[e] .. ")", function()
            local code = by_exponent[e]
            math.randomseed(4217 + e)
            local samples = { 0, 1, 9, 10, 99, 100, 101, TWO53 - 1, TWO53 }
            for _ = #samples + 1, 10000 do samples[#samples + 1] = random_amount() end
            for _, v in ipairs(samples) do
                local s = core.to_decimal(v, code)
                assert.equal(oracle_decimal(integer_string(v), e), s)
                local back = core.to_minor(s, code)
                if back ~= v then assert.equal(v, back, code .. " " .. s) end
            end
        end)
    end
end)

describe("core.currency", function()
    it("gives the code, the numeric code and the exponent", function()
        assert.same({ code = "EUR", numeric = "978", exponent = 2 }, core.currency("EUR"))
        assert.same({ code = "JPY", numeric = "392", exponent = 0 }, core.currency("JPY"))
        assert.same({ code = "ALL", numeric = "008", exponent = 2 }, core.currency("ALL"))
    end)

    it("knows the exponents that differ from 2", function()
        local expect = {
            ISK = 0, JPY = 0, KRW = 0, CLP = 0, VND = 0, XAF = 0, XOF = 0, XPF = 0, UGX = 0, PYG = 0,
            BHD = 3, IQD = 3, JOD = 3, KWD = 3, LYD = 3, OMR = 3, TND = 3,
            CLF = 4, UYW = 4,
            VES = 2, VED = 2, SLE = 2, ZWG = 2, XCG = 2, MRU = 2, STN = 2,
        }
        for code, e in pairs(expect) do
            local c = core.currency(code)
            assert.is_table(c, code)
            assert.equal(e, c.exponent, code)
        end
    end)

    it("has the currencies that replaced withdrawn ones, and not the withdrawn ones", function()
        assert.equal("924", core.currency("ZWG").numeric)
        assert.equal("925", core.currency("SLE").numeric)
        assert.equal("532", core.currency("XCG").numeric)
        for _, gone in ipairs { "ZWL", "SLL", "HRK", "CUC", "ANG", "BGN", "VEF", "MRO", "STD", "LTL" } do
            assert.is_nil(core.currency(gone), gone)
        end
        assert.is_nil(core.currency("eur"))
        assert.is_nil(core.currency(""))
    end)
end)

describe("luapay.money.format", function()
    local money = require "luapay.money"

    it("shows an amount as money: the currency's decimals and its code", function()
        assert.equal("25.00 EUR", money.format(2500, "EUR"))
        assert.equal("2500 JPY", money.format(2500, "JPY"))
        assert.equal("2.500 KWD", money.format(2500, "KWD"))
        assert.equal("0.001 BHD", money.format(1, "BHD"))
        assert.equal("0.0001 CLF", money.format(1, "CLF"))
        assert.equal("0.00 EUR", money.format(0, "EUR"))
        assert.equal("103.00 SEK", money.format(10300, "SEK"))
        assert.equal(require("luapay").money, money)
    end)

    it("shows negative amounts (refunds, reversals) with a minus sign, exactly up to 2^53", function()
        assert.equal("-0.01 EUR", money.format(-1, "EUR"))
        assert.equal("-25.00 EUR", money.format(-2500, "EUR"))
        assert.equal("-7 JPY", money.format(-7, "JPY"))
        assert.equal("-0.250 KWD", money.format(-250, "KWD"))
        assert.equal("90071992547409.92 EUR", money.format(TWO53, "EUR"))
        assert.equal("-90071992547409.92 EUR", money.format(-TWO53, "EUR"))
    end)

    it("raises naming the argument for a currency that is not an active ISO 4217 code", function()
        assert_raises([[money.format: bad argument #2 'currency' ("XYZ" is not an active ISO 4217 code)]],
            money.format, 2500, "XYZ")
        assert_raises([[money.format: bad argument #2 'currency' ("eur" is not an active ISO 4217 code)]],
            money.format, 2500, "eur")
        assert_raises("money.format: bad argument #2 'currency' (string expected, got nil)", money.format, 2500)
    end)

    it("raises naming the argument for an amount that is not an integer in minor units within 2^53", function()
        assert_raises("money.format: bad argument #1 'minor' (integer expected, got string)", money.format, "25.00", "EUR")
        assert_raises("money.format: bad argument #1 'minor' (amount must be an integer in minor units, not a float)",
            money.format, 25.5, "EUR")
        assert_raises("money.format: bad argument #1 'minor' (amount is not a finite number)", money.format, 0 / 0, "EUR")
        for _, big in ipairs { 2 ^ 53 + 2, -2 ^ 53 - 2, 2 ^ 63, -2 ^ 63 } do
            assert_raises("money.format: bad argument #1 'minor' (amount beyond 2^53 minor units)", money.format, big, "EUR")
        end
        if LUA54 then
            assert_raises("money.format: bad argument #1 'minor' (amount beyond 2^53 minor units)",
                money.format, math.mininteger, "EUR")
            assert_raises("money.format: bad argument #1 'minor' (amount must be an integer in minor units, not a float)",
                money.format, 2500.0, "EUR")
        end
    end)
end)
