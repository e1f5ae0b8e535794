-- core.ecommpay_canonical: the string ecommpay signs, built in C, checked
-- against the vectors (computed with ecommpay's PHP SDK) and at its edges:
-- PHP's natural sort, PHP's float rendering, exact number texts.
local core = require "luapay.core"
local cjson = require "cjson"
local util = require "support.util"

local canonical = core.ecommpay_canonical
local N = core.json_number
local null = core.null

local function lexemes(json)
    return assert(core.json_decode(json, { numbers = "lexeme" }))
end

describe("core.ecommpay_canonical", function()
    local vectors = util.json_fixture("vectors/ecommpay.json")

    it("gives every vector's string to sign and signature, from the exact JSON text", function()
        local n = 0
        for _, set in ipairs { "vectors", "payment_page_url_vectors" } do
            for _, v in ipairs(vectors[set]) do
                local params = v.params_json and lexemes(v.params_json) or v.params
                local s = assert(canonical(params))
                assert.equal(v.string_to_sign, s, v.name)
                assert.equal(v.signature, core.hmac("sha512", v.secret, s, "base64"), v.name)
                n = n + 1
            end
        end
        assert.equal(13, n)
    end)

    it("gives the same strings from lua-cjson tables where cjson keeps the numbers", function()
        for _, v in ipairs(vectors.vectors) do
            local s = assert(canonical(cjson.decode(v.params_json)))
            if v.name == "numbers_int_and_simple_float" then
                -- cjson reads 9007199254740993 as the double 2^53: the digit is lost before signing
                -- (and under Lua 5.4 it is a float, which PHP writes as 9.007199254741E+15)
                local float = math.type and math.type(cjson.decode("[9007199254740993]")[1]) == "float"
                assert.equal(v.string_to_sign:gsub("9007199254740993", float and "9.007199254741E+15" or "9007199254740992"), s)
            else
                assert.equal(v.string_to_sign, s, v.name)
            end
        end
    end)

    it("leaves out every 'signature' key, at any depth, for callbacks", function()
        for _, v in ipairs(vectors.callback_vectors) do
            local body = lexemes(v.raw_body)
            assert.equal(v.string_to_sign, assert(canonical(body, { callback = true })), v.name)
        end
        local t = { signature = "x", general = { signature = "y", payment_id = "p" }, a = { { signature = "z", b = 1 } } }
        assert.equal("a:0:b:1;general:payment_id:p", canonical(t, { callback = true }))
        assert.equal("a:0:b:1;a:0:signature:z;general:payment_id:p;general:signature:y;signature:x", canonical(t))
    end)

    describe("values", function()
        -- integer_text writes two digits at a time after counting them:
        -- every length, both signs, each side of every power of ten.
        it("writes integers of every length as %d does", function()
            local vals, p = { 0, 1, -1, 9, -9 }, 1
            for _ = 1, 15 do
                p = p * 10
                for _, d in ipairs({ -1, 0, 1, 11 }) do vals[#vals + 1] = p + d; vals[#vals + 1] = -(p + d) end
            end
            if math.type then -- Lua 5.3+: 64-bit integers to the ends
                for _, v in ipairs({ math.maxinteger, math.mininteger, math.maxinteger - 1, math.mininteger + 1,
                    1000000000000000000, -1000000000000000000, 999999999999999999, -999999999999999999 }) do
                    vals[#vals + 1] = v
                end
            end
            for _, v in ipairs(vals) do
                assert.equal(("x:%d"):format(v), canonical { x = v }, tostring(v))
                assert.equal(("x:%d"):format(v), canonical { x = core.json_number(("%d"):format(v)) }, tostring(v))
            end
        end)

        it("renders booleans as 1/0, null and \"\" as empty with the key kept, strings verbatim", function()
            assert.equal("a:1;b:0;c:;d:;e:x;y=z&w;q", canonical { a = true, b = false, c = null, d = "", e = "x;y=z&w;q" })
            assert.equal("k:K\195\182p \226\128\147 \240\159\152\128", canonical { k = "K\195\182p \226\128\147 \240\159\152\128" })
        end)

        it("renders floats as PHP does (precision 14); under LuaJIT integral doubles within 2^53 as integers", function()
            local cases = {
                { 0, "0" }, { 1.0, "1" }, { 100.0, "100" }, { -15, "-15" }, { 99999999999999.0, "99999999999999" },
                { 2 ^ 53 + 2, "9.007199254741E+15" }, { 2 ^ 60, "1.1529215046068E+18" }, { 1e20, "1.0E+20" },
                { -1e20, "-1.0E+20" }, { 1.5e300, "1.5E+300" },
                { 0.1, "0.1" }, { 0.1 + 0.2, "0.3" }, { 1 / 3, "0.33333333333333" }, { 2 / 3, "0.66666666666667" },
                { -1.5, "-1.5" }, { 2.5, "2.5" }, { 123456789.12345678, "123456789.12346" },
                { 0.0001, "0.0001" }, { 0.00001, "1.0E-5" }, { 1.5e-7, "1.5E-7" }, { 1.25e-5, "1.25E-5" },
                { 9999999999999.99, "10000000000000" }, { 99999999999999.99, "1.0E+14" },
            }
            for _, c in ipairs(cases) do
                assert.equal("v:" .. c[2], canonical { v = c[1] }, ("%.17g"):format(c[1]))
            end
            -- 000 seed's reference SDK (PHP): a float is (string)$float, 1.0E+14 and up in exponent form
            local whole = math.maxinteger
                and { { -0.0, "-0" }, { 1e14, "1.0E+14" }, { 1e15, "1.0E+15" }, { 2 ^ 53, "9.007199254741E+15" },
                      { -(2 ^ 53), "-9.007199254741E+15" } }
                or { { -0.0, "0" }, { 1e14, "100000000000000" }, { 1e15, "1000000000000000" },
                     { 2 ^ 53, "9007199254740992" }, { -(2 ^ 53), "-9007199254740992" } }
            for _, c in ipairs(whole) do
                assert.equal("v:" .. c[2], canonical { v = c[1] }, ("%.17g"):format(c[1]))
            end
            if math.maxinteger then -- Lua 5.4 integers in plain decimal, to the last digit
                assert.equal("v:100000000000000", canonical { v = 100000000000000 })
                assert.equal("v:9223372036854775807", canonical { v = math.maxinteger })
                assert.equal("v:-9223372036854775808", canonical { v = math.mininteger })
            else -- LuaJIT: every number is a double
                assert.equal("v:1.844674407371E+19", canonical { v = 2 ^ 64 })
            end
        end)

        it("renders number objects from their text, never through a double", function()
            local cases = {
                { "9223372036854775807", "9223372036854775807" }, { "-9223372036854775808", "-9223372036854775808" },
                { "123456789012345678901234567890", "123456789012345678901234567890" },
                { "9007199254740993", "9007199254740993" }, { "0", "0" }, { "-0", "0" }, { "-12", "-12" },
                { "1.0", "1" }, { "1e2", "100" }, { "1E+2", "100" }, { "2.50e1", "25" }, { "0.1e1", "1" },
                { "100e-2", "1" }, { "0.0", "0" }, { "-0.0", "-0" }, { "-0e5", "-0" }, { "-3.000", "-3" }, { "0e10", "0" },
                { "99999999999999.0", "99999999999999" }, { "1e14", "1.0E+14" }, { "100000000000000.0", "1.0E+14" },
                { "1e15", "1.0E+15" }, { "100000000000000", "100000000000000" },
                { "9007199254740992.0", "9.007199254741E+15" }, { "-9007199254740992.0", "-9.007199254741E+15" },
                { "9007199254740993.0", "9.007199254741E+15" }, { "1e20", "1.0E+20" }, { "1E-7", "1.0E-7" },
                { "1.5", "1.5" }, { "123.4500", "123.45" }, { "0.30000000000000004", "0.3" },
                { "1e400", "INF" }, { "-1e400", "-INF" }, { "1e-400", "0" },
                { "0.000000000000000000001e21", "1" }, { "12345678901234.000000000000000000000", "12345678901234" },
                { "1.0000000000000000000000000000001", "1" },
            }
            for _, c in ipairs(cases) do
                assert.equal("v:" .. c[2], canonical { v = N(c[1]) }, c[1])
            end
            assert.equal("a:1;b:9223372036854775807;c:1",
                canonical(lexemes('{"a":1.0,"b":9223372036854775807,"c":{"signature":"s"},"c":1}')))
        end)
    end)

    describe("paths", function()
        it("doubles ':' inside keys and flattens objects and arrays with 0-based indexes", function()
            assert.equal("a::b:1;a:b:2;c:0:0:x;c:0:1:y;c:1:k::::z",
                canonical { ["a:b"] = "1", a = { b = "2" }, c = { { "x", "y" }, { ["k:"] = ":z" } } })
        end)

        it("skips frame_mode at any depth and drops empty objects and arrays entirely", function()
            assert.equal("n:keep:yes;x:", canonical {
                frame_mode = "popup",
                n = { frame_mode = "iframe", keep = "yes", e = {}, a = core.array_mt and setmetatable({}, core.array_mt) },
                x = "", only_empty = { {}, { {} } },
            })
            assert.equal("", canonical {})
        end)

        it("sorts paths as PHP's SORT_NATURAL: digit runs by value, bytes otherwise, prefixes first", function()
            local t = {}
            for i = 0, 11 do t[i + 1] = "i" .. i end
            assert.equal("items:0:i0;items:1:i1;items:2:i2;items:3:i3;items:4:i4;items:5:i5;items:6:i6;"
                .. "items:7:i7;items:8:i8;items:9:i9;items:10:i10;items:11:i11", canonical { items = t })
            -- '-' (0x2D) < '1' < ':' (0x3A) < '_' (0x5F); "a:b" is the escaped "a::b"
            assert.equal("Zeta:z;a:1;a-b:1;a2:1;a10:1;a::b:1;a_b:1;b:1",
                canonical { b = "1", a = "1", a10 = "1", a2 = "1", ["a-b"] = "1", ["a_b"] = "1", Zeta = "z", ["a:b"] = "1" })
        end)

        it("compares runs that start with 0 digit by digit from the left, as strnatcmp does", function()
            -- "a05" < "a5" (left-aligned: 0 < 5); "a06" < "a5"; "x9" < "x10"; leading spaces and
            -- zeros at the start are skipped, equal paths keep byte order
            assert.equal("a05:1;a06:1;a5:1;x9:1;x10:1",
                canonical { a5 = "1", a05 = "1", a06 = "1", x10 = "1", x9 = "1" })
            assert.equal("01:a;1:b;2:c;010:d", canonical { ["1"] = "b", ["01"] = "a", ["2"] = "c", ["010"] = "d" })
        end)

        it("orders random paths as a line-by-line port of PHP's strnatcmp does", function()
            local strnatcmp = require "support.strnatcmp"
            local alphabet = { "a", "b", "Z", "0", "0", "1", "2", "9", " ", "-", "_", ".", "\t" }
            local seed = 12345
            local function random(n) -- a small LCG: the same cases on every VM
                seed = (seed * 1103515245 + 12345) % 2147483648
                return seed % n + 1
            end
            for round = 1, 330 do -- the last 30 with up to 120 keys: sorted by qsort past 64
                local t, keys = {}, {}
                for _ = 1, random(round > 300 and 120 or 12) do
                    local k = {}
                    for i = 1, random(7) do k[i] = alphabet[random(#alphabet)] end
                    k = table.concat(k)
                    if not t[k] then
                        t[k] = "v"
                        keys[#keys + 1] = k
                    end
                end
                table.sort(keys, function(x, y)
                    local r = strnatcmp(x, y)
                    if r ~= 0 then return r < 0 end
                    return x < y
                end)
                local expected = {}
                for i, k in ipairs(keys) do expected[i] = k .. ":v" end
                assert.equal(table.concat(expected, ";"), canonical(t))
            end
        end)
    end)

    describe("refusals", function()
        it("raises when params is not a table", function()
            assert.has_error(function() canonical("x") end,
                "ecommpay_canonical: bad argument #1 'params' (table expected, got string)")
            assert.has_error(function() canonical({}, "x") end,
                "ecommpay_canonical: bad argument #2 'opts' (table expected)")
        end)

        it("returns nil and where for what cannot be signed", function()
            local s, err = canonical { payment = { amount = print } }
            assert.is_nil(s)
            assert.equal("ecommpay_canonical: a value is not a string, number, boolean, table or null (at payment:amount)", err)
            s, err = canonical { a = { 1, 2, x = 3 } }
            assert.is_nil(s)
            assert.matches("mixes array and object keys %(or has non%-string keys%) %(at a%)$", err)
            s, err = canonical { v = 0 / 0 }
            assert.is_nil(s)
            assert.matches("NaN and infinity cannot be signed", err)
            local cycle = {}
            cycle.self = cycle
            s, err = canonical(cycle)
            assert.is_nil(s)
            assert.matches("nested too deeply", err)
            s, err = canonical { [2] = "sparse" }
            assert.is_nil(s)
            assert.matches("non%-string keys", err)
        end)

        -- Two fields whose paths are the same bytes: PHP keeps the one last
        -- in the body, an order a table does not have, so the answer would
        -- follow the table's iteration order (it did, before: a signature
        -- that changed from one run to the next). Each case is built in
        -- every insertion order, with fillers that move the hash order.
        it("refuses two fields whose paths are the same, whatever the table's order", function()
            local cases = {
                { { "", { x = 1 } }, { "x", 2 }, "x" },
                { { "a:", { b = 1 } }, { "a", { [":b"] = 2 } }, "a:::b" },
                { { "", { "v" } }, { "0", "w" }, "0" },
            }
            for _, case in ipairs(cases) do
                for _, order in ipairs({ { 1, 2 }, { 2, 1 } }) do
                    for fillers = 0, 12 do
                        local t = {}
                        for i = 1, fillers do t["f" .. i] = i end
                        for _, i in ipairs(order) do t[case[i][1]] = case[i][2] end
                        for _, opts in ipairs({ {}, { callback = true } }) do
                            local got, err = canonical(t, opts)
                            assert.is_nil(got, case[3])
                            assert.equal("ecommpay_canonical: two fields sign as the same path (at " .. case[3] .. ")", err)
                            assert.same({ nil, err }, { core.ecommpay_signature(t, "k", opts) })
                        end
                    end
                end
            end
            -- near misses stay signable: the bytes differ
            assert.equal("a::::b:1;a:::b:2", canonical { ["a::b"] = 1, a = { [":b"] = 2 } })
            assert.equal("a:::b:1;a:::c:2", canonical { ["a:"] = { b = 1 }, a = { [":c"] = 2 } })
        end)
    end)
end)
