-- The reference data compiled into the core, against fixtures taken from
-- public datasets (spec/fixtures/refdata/*, sources in each file's header)
-- and, for Figure 32, against the line of the ecommpay document itself.
local core = require "luapay.core"
local util = require "support.util"

local function fixture_lines(name)
    local rows = {}
    for line in util.fixture("refdata/" .. name):gmatch("[^\n]+") do
        if not line:find("^#") then rows[#rows + 1] = line end
    end
    return rows
end

local function set(list)
    local s = {}
    for _, v in ipairs(list) do s[v] = true end
    return s
end

local UPPER, LOWER = {}, {}
for c = 65, 90 do UPPER[#UPPER + 1] = string.char(c) end
for c = 97, 122 do LOWER[#LOWER + 1] = string.char(c) end

-- Every combination of `n` letters from `alphabet`.
local function all_codes(alphabet, n)
    local out = { "" }
    for _ = 1, n do
        local next_out = {}
        for _, prefix in ipairs(out) do
            for _, c in ipairs(alphabet) do next_out[#next_out + 1] = prefix .. c end
        end
        out = next_out
    end
    return out
end

describe("ISO 3166-1 alpha-2 country codes", function()
    local expected = fixture_lines("iso3166-1.txt")

    it("are the 249 officially assigned codes", function()
        assert.equal(249, #expected)
    end)

    it("accept exactly those 249 of the 676 pairs of capital letters", function()
        local accepted = {}
        for _, code in ipairs(all_codes(UPPER, 2)) do
            if core.check("country", code) then accepted[#accepted + 1] = code end
        end
        assert.same(expected, accepted)
    end)

    it("refuse lower case, other lengths and user-assigned codes", function()
        for _, bad in ipairs { "se", "Se", "SWE", "S", "", "XK", "EU", "UK", "AA", "ZZ", "QO" } do
            local ok, msg, code = core.check("country", bad)
            assert.is_nil(ok, bad)
            assert.equal("value: is not an ISO 3166-1 alpha-2 country code", msg)
            assert.equal("format", code)
        end
    end)
end)

describe("ISO 639-1 language codes", function()
    local expected = fixture_lines("iso639-1.txt")

    it("are the 183 two-letter codes", function()
        assert.equal(183, #expected)
    end)

    it("accept exactly those 183 of the 676 pairs of small letters", function()
        local accepted = {}
        for _, code in ipairs(all_codes(LOWER, 2)) do
            if core.check("language", code) then accepted[#accepted + 1] = code end
        end
        assert.same(expected, accepted)
    end)

    it("refuse upper case, the withdrawn 'bh' and 'sh', and three-letter codes", function()
        for _, bad in ipairs { "SV", "Sv", "bh", "sh", "mo", "swe", "s", "" } do
            assert.is_nil((core.check("language", bad)), bad)
        end
    end)
end)

describe("ISO 4217 currencies", function()
    local rows = fixture_lines("iso4217.txt")

    it("list every active currency with a minor unit, sorted", function()
        local codes = {}
        for i, row in ipairs(rows) do codes[i] = row:match("^(%u%u%u)") end
        assert.equal(165, #codes)
        assert.same(codes, core.currencies())
    end)

    it("carry the numeric code and the exponent of the dataset", function()
        for _, row in ipairs(rows) do
            local code, numeric, exponent = row:match("^(%u%u%u) (%d%d%d) (%d)$")
            assert.same({ code = code, numeric = numeric, exponent = tonumber(exponent) }, core.currency(code))
        end
    end)

    it("accept exactly those codes among all 17,576 three-letter combinations", function()
        local expected, accepted = set(core.currencies()), 0
        for _, code in ipairs(all_codes(UPPER, 3)) do
            local ok = core.check("currency", code) == true
            if ok ~= (expected[code] == true) then assert.equal(expected[code] == true, ok, code) end
            if ok then accepted = accepted + 1 end
        end
        assert.equal(165, accepted)
    end)
end)

describe("the IBAN registry", function()
    local rows = fixture_lines("iban.txt")

    -- ISO 7064 mod 97-10 check digits, computed here independently of the core.
    local function check_digits(cc, bban)
        local digits = (bban .. cc .. "00"):gsub("%a", function(c) return tostring(c:byte() - 55) end)
        local rem = 0
        for d in digits:gmatch("%d") do rem = (rem * 10 + tonumber(d)) % 97 end
        return ("%02d"):format(98 - rem)
    end

    it("has 89 countries", function()
        assert.equal(89, #rows)
    end)

    for _, row in ipairs(rows) do
        local cc, len, example = row:match("^(%u%u) (%d+) (%w+)")
        len = tonumber(len)
        it(("%s: accepts the example IBAN of %d characters, refuses other lengths and check digits"):format(cc, len), function()
            assert.equal(len, #example)
            assert.is_true(core.check("iban", example))
            -- a fresh IBAN of the right length with computed check digits
            local bban = ("0"):rep(len - 4 - 1) .. "7"
            assert.is_true(core.check("iban", cc .. check_digits(cc, bban) .. bban))
            -- one character more or fewer is the wrong length for this country
            local longer, shorter = bban .. "1", bban:sub(2)
            assert.equal("format", select(3, core.check("iban", cc .. check_digits(cc, longer) .. longer)))
            assert.equal("format", select(3, core.check("iban", cc .. check_digits(cc, shorter) .. shorter)))
            -- any other check digits fail the checksum
            local good = example:sub(3, 4)
            local wrong = ("%02d"):format((tonumber(good) + 1) % 97)
            assert.equal("checksum", select(3, core.check("iban", cc .. wrong .. example:sub(5))))
        end)
    end

    it("has no entry for countries outside it, even where IBANs look plausible", function()
        for _, iban in ipairs { "US64SVBKUS6S3300958879", "AX2112345600000785", "GF7630006000011234567890189" } do
            assert.equal("format", select(3, core.check("iban", iban)), iban)
        end
    end)
end)

describe("Figure 32, the payout account table", function()
    -- The table as printed in ../shared/seeds/000_143fbb12043a44fc.txt (line
    -- 420): each name is followed by one regex (number) or two (bank_code,
    -- number).
    local printed = {}
    for token in util.fixture("refdata/figure32.txt"):gmatch("%S+") do
        if token:sub(1, 1) == "^" then
            table.insert(printed[#printed], token)
        else
            printed[#printed + 1] = { token }
        end
    end

    it("has every printed row, in order, with the regexes exactly as printed", function()
        local rows = require("luapay.ecommpay").CLEARINGHOUSES
        assert.equal(#printed, #rows)
        for i, p in ipairs(printed) do
            local expect = { name = p[1], number = p[#p] }
            if #p == 3 then expect.bank_code = p[2] end
            assert.same(expect, rows[i])
        end
    end)

    it("has the 29 rows the document prints", function()
        assert.equal(29, #printed)
    end)
end)
