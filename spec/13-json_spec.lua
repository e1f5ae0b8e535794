-- The core's JSON: an exact encoder for request bodies and a strict reader
-- for signed bodies, whose numbers must keep the text they were signed as.
local core = require "luapay.core"

describe("core.json_decode", function()
    it("reads every JSON type", function()
        local v = assert(core.json_decode(' {"s":"x","n":-12.5e1,"t":true,"f":false,"z":null,"a":[1,[2]],"o":{}} '))
        assert.equal("x", v.s)
        assert.equal(-125, v.n)
        assert.is_true(v.t)
        assert.is_false(v.f)
        assert.equal(core.null, v.z)
        assert.equal(2, v.a[2][1])
        assert.equal(core.array_mt, getmetatable(v.a))
        assert.same({}, v.o)
        assert.is_nil(getmetatable(v.o))
    end)

    it("decodes escapes, surrogate pairs and raw UTF-8", function()
        local v = assert(core.json_decode([["\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00 é€"]]))
        assert.equal('"\\/\b\f\n\r\tAé€😀 é€', v)
        assert.equal("a\0b", core.json_decode('"a\\u0000b"'))
    end)

    if _VERSION == "Lua 5.4" then
        it("gives integers as integers, exactly up to 2^63-1 (Lua 5.4)", function()
            local v = core.json_decode("[9223372036854775807,-9223372036854775808,1.0,1e2]")
            assert.equal(math.maxinteger, v[1])
            assert.equal(math.mininteger, v[2])
            assert.equal("float", math.type(v[3]))
            assert.equal("float", math.type(v[4]))
        end)
    end

    it("keeps each number's text in lexeme mode, under every Lua", function()
        local v = assert(core.json_decode('{"big":9223372036854775807,"one":1.0,"e":1E+2,"neg":-0}', { numbers = "lexeme" }))
        assert.equal("9223372036854775807", tostring(v.big))
        assert.equal("1.0", tostring(v.one))
        assert.equal("1E+2", tostring(v.e))
        assert.equal("-0", v.neg[1])
        assert.equal(core.number_mt, getmetatable(v.big))
    end)

    it("round-trips a body byte for byte through lexeme mode (sorted keys, no spaces)", function()
        local body = '{"a":[1,2.50,-3e-7],"b":{"c":null,"d":"x\\"y"},"e":12345678901234567890}'
        assert.equal(body, core.json_encode(core.json_decode(body, { numbers = "lexeme" })))
    end)

    local invalid = {
        { "", "unexpected end of input" }, { "{", "object key expected" }, { "[1,]", "bad number" },
        { '{"a":1,}', "object key expected" }, { '{"a" 1}', "':' expected" }, { "[1 2]", "',' or ']' expected" },
        { '{"a":1}x', "unexpected text after the value" }, { "01", "unexpected text after the value" },
        { "1.", "bad number" }, { ".5", "bad number" }, { "-", "bad number" }, { "1e", "bad number" },
        { "+1", "bad number" }, { "nul", "unexpected character" }, { "True", "bad number" },
        { '"\\ud800"', "high surrogate without its low surrogate" }, { '"\\udc00"', "lone low surrogate" },
        { '"\\x41"', "bad escape" }, { '"\\u12G4"', "bad \\u escape" }, { '"a\nb"', "control character" },
        { '"\255"', "invalid UTF-8" }, { '"\192\175"', "invalid UTF-8" }, { '"\237\160\128"', "invalid UTF-8" },
        { '"abc', "unterminated string" }, { "[NaN]", "bad number" }, { "{'a':1}", "object key expected" },
    }
    for _, case in ipairs(invalid) do
        it(("refuses %q: %s"):format(case[1], case[2]), function()
            local v, err = core.json_decode(case[1])
            assert.is_nil(v)
            assert.matches("^json_decode: " .. case[2]:gsub("%p", "%%%0") .. ".* at byte %d+$", err)
        end)
    end

    it("refuses nesting deeper than 128 levels without harm", function()
        local v, err = core.json_decode(("["):rep(10000) .. ("]"):rep(10000))
        assert.is_nil(v)
        assert.matches("nested too deeply", err)
        assert.truthy(core.json_decode(("["):rep(100) .. ("]"):rep(100)))
    end)

    it("takes the last of repeated keys, as PHP does", function()
        assert.equal(2, core.json_decode('{"a":1,"a":2}').a)
    end)
end)

describe("core.json_encode", function()
    it("escapes every byte that needs it wherever it falls in a string (the scan steps 8 bytes at a time)", function()
        local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
            ["\b"] = "\\b", ["\f"] = "\\f" }
        local function reference(str)
            return '"' .. str:gsub('[%c"\\]', function(c)
                if c:byte() == 127 then return c end
                return ESC[c] or ("\\u%04x"):format(c:byte())
            end) .. '"'
        end
        -- bytes past 127 only as valid UTF-8 (invalid UTF-8 is refused: spec 64)
        for _, special in ipairs { '"', "\\", "\n", "\0", "\31", "\127", "\195\169", "\226\130\172", " " } do
            for len = 0, 20 do
                for at = 1, len do
                    local str = ("x"):rep(at - 1) .. special .. ("y"):rep(len - at)
                    assert.equal(reference(str), core.json_encode(str))
                end
            end
        end
        local all = {}
        for i = 0, 127 do all[#all + 1] = string.char(i) end
        all[#all + 1] = "\240\159\146\182" -- a 4-byte UTF-8 sequence
        all = table.concat(all):rep(3)
        assert.equal(reference(all), core.json_encode(all))
    end)

    it("refuses invalid UTF-8 wherever it falls in a string, also inside a run the scan skips 8 bytes at a time", function()
        for _, bad in ipairs { "\255", "\192\175", "\226\130" } do
            for len = 0, 20 do
                for at = 1, len + 1 do
                    local str = ("x"):rep(at - 1) .. bad .. ("y"):rep(len - at + 1)
                    local s, err = core.json_encode(str)
                    assert.is_nil(s)
                    assert.matches("invalid UTF-8", err, 1, true)
                end
            end
        end
    end)

    it("refuses a non-string key at any depth, and encodes the next value whole afterwards", function()
        local mixed = "a table mixes array and object keys (or has non-string keys)"
        for _, bad in ipairs { { a = 1, [5] = 2 }, { x = { y = { a = 1, [true] = 2 } }, z = { 1, 2 } }, { 1, 2, x = 3 } } do
            local s, err = core.json_encode(bad)
            assert.is_nil(s)
            assert.matches("^json_encode: ", err)
            assert.equal(mixed, err:sub(-#mixed))
            assert.equal('{"a":[],"m":[1,2,{"q":"r"}],"z":{"b":{"c":{}}}}',
                core.json_encode { z = { b = { c = {} } }, a = setmetatable({}, core.array_mt), m = { 1, 2, { q = "r" } } })
        end
    end)

    it("prints integers and integral floats up to 2^53 in plain decimal", function()
        assert.equal("[0,-5,9007199254740992,-9007199254740992,3,1.5,-1234567890123]",
            core.json_encode { 0, -5, 9007199254740992, -9007199254740992.0, 3.0, 1.5, -1234567890123 })
        if math.type then
            assert.equal("[-9223372036854775808,9223372036854775807]", core.json_encode { math.mininteger, math.maxinteger })
        end
    end)

    it("round-trips random documents through json_decode", function()
        local function random_value(depth)
            local kind = core.random_bytes(1):byte() % (depth > 3 and 4 or 6)
            if kind == 0 then return core.hex_encode(core.random_bytes(core.random_bytes(1):byte() % 9)) .. "é\n\"" end
            if kind == 1 then return core.random_bytes(2):byte() * 37 - 500 end
            if kind == 2 then return core.random_bytes(1):byte() % 2 == 0 end
            if kind == 3 then return core.null end
            local t = kind == 4 and setmetatable({}, core.array_mt) or {}
            for i = 1, core.random_bytes(1):byte() % 5 do
                if kind == 4 then t[i] = random_value(depth + 1) else t["k" .. i] = random_value(depth + 1) end
            end
            return t
        end
        for _ = 1, 300 do
            local v = random_value(0)
            local text = assert(core.json_encode(v))
            local back, err = core.json_decode(text) -- may be false or null
            assert.is_nil(err)
            assert.equal(text, core.json_encode(back))
        end
    end)

    it("encodes an object past what the stack holds of its values (LuaJIT: ~4,000) the same, sorted, nested deeply", function()
        -- Values wait on the stack while the keys are sorted; past what it
        -- holds they are looked up, and 60 levels still fit above them.
        local big, parts = {}, {}
        for i = 1, 20000 do
            big[("k%05d"):format(i)] = { i, { v = -i } }
            parts[i] = ('"k%05d":[%d,{"v":%d}]'):format(i, i, -i)
        end
        -- the last key's value 60 levels deep, encoded with the stack full
        local deep, deep_want = -0.0, "-0"
        for _ = 1, 60 do deep, deep_want = { z = deep }, '{"z":' .. deep_want .. "}" end
        big.k20001, parts[#parts + 1] = deep, '"k20001":' .. deep_want
        assert.equal("{" .. table.concat(parts, ",") .. "}", core.json_encode(big))
        big.k10000[2] = { [true] = 1 }
        local s, err = core.json_encode { y = big }
        assert.is_nil(s)
        assert.equal("json_encode: y.k10000[2]: a table mixes array and object keys (or has non-string keys)", err)
    end)

    it("writes number objects as their text", function()
        assert.equal('[12.340,1E400]', core.json_encode{ core.json_number("12.340"), core.json_number("1E400") })
        assert.has_error(function() core.json_number("12,5") end)
    end)
end)
