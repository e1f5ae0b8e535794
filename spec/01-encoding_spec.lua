local core = require "luapay.core"

-- Every byte value after 0..7 filler bytes and before a tail of 0..9 more:
-- each byte at each place of a word, and every tail length, for the
-- encoders that work a word at a time.
local function every_byte_at_every_offset()
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    all = table.concat(all)
    local list = {}
    for offset = 0, 7 do
        for len = 0, 9 do list[#list + 1] = ("\255"):rep(offset) .. all .. all:sub(1, len) end
    end
    return list
end

describe("base64 (RFC 4648 section 10)", function()
    local vectors = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    }

    it("encodes and decodes the test vectors", function()
        for _, v in ipairs(vectors) do
            assert.equal(v[2], core.base64_encode(v[1]))
            assert.equal(v[1], core.base64_decode(v[2]))
        end
    end)

    it("round-trips random binary strings of every length up to 300", function()
        for n = 0, 300 do
            local s = core.random_bytes(n)
            local enc = core.base64_encode(s)
            assert.equal(4 * math.ceil(n / 3), #enc)
            assert.equal(s, core.base64_decode(enc))
        end
    end)

    it("round-trips a string longer than one internal buffer", function()
        local s = core.random_bytes(100000)
        assert.equal(s, core.base64_decode(core.base64_encode(s)))
    end)

    -- core.h's luapay_base64_encode writes six bytes at a time (two
    -- characters per lookup): every byte at each place of a group, and
    -- every length's tail, against arithmetic in Lua.
    it("encodes every byte at every offset and every tail length", function()
        local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        local function char(v) return alphabet:sub(v + 1, v + 1) end
        local function reference(s)
            local out = {}
            for i = 1, #s, 3 do
                local a, b, c = s:byte(i, i + 2)
                local v = a * 65536 + (b or 0) * 256 + (c or 0)
                out[#out + 1] = char(math.floor(v / 262144)) .. char(math.floor(v / 4096) % 64)
                    .. (b and char(math.floor(v / 64) % 64) or "=") .. (c and char(v % 64) or "=")
            end
            return table.concat(out)
        end
        for _, s in ipairs(every_byte_at_every_offset()) do assert.equal(reference(s), core.base64_encode(s)) end
    end)

    it("uses the standard alphabet with + and /", function()
        assert.equal("+/+/", core.base64_encode("\251\255\191"))
    end)

    local invalid = {
        { "Zg=", "length is not a multiple of 4" },
        { "Zg", "length is not a multiple of 4" },
        { "Zm9v\n", "length is not a multiple of 4" },
        { "Zm 9", "invalid character" },
        { "Zm9-", "invalid character" },      -- URL-safe alphabet is not base64
        { "Zm9_", "invalid character" },
        { "Z===", "misplaced padding" },
        { "====", "misplaced padding" },
        { "Zg==Zg==", "misplaced padding" },  -- padding only at the very end
        { "AB=C", "misplaced padding" },
        { "Zh==", "non-zero padding bits" },  -- a second encoding of "f"
        { "Zm9=", "non-zero padding bits" },
        { "Zm8\0", "invalid character" },
    }
    for _, v in ipairs(invalid) do
        it(("rejects %q with nil and %q"):format(v[1], v[2]), function()
            local out, err = core.base64_decode(v[1])
            assert.is_nil(out)
            assert.equal("base64_decode: " .. v[2], err)
        end)
    end
end)

describe("hex_encode", function()
    it("encodes lowercase by default and uppercase on request", function()
        assert.equal("00ff10ab", core.hex_encode("\0\255\16\171"))
        assert.equal("00FF10AB", core.hex_encode("\0\255\16\171", true))
        assert.equal("", core.hex_encode(""))
    end)

    it("encodes long strings completely", function()
        local s = core.random_bytes(5000)
        local h = core.hex_encode(s)
        assert.equal(10000, #h)
        assert.equal(s, (h:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)))
    end)

    -- core.h's luapay_hex_encode writes four bytes at a time: every byte at
    -- each place of a word, and every length's tail.
    it("encodes every byte at every offset, in both cases", function()
        for _, s in ipairs(every_byte_at_every_offset()) do
            local want = s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
            assert.equal(want, core.hex_encode(s))
            assert.equal(want:upper(), core.hex_encode(s, true))
        end
    end)
end)

describe("url_encode", function()
    -- Every byte, against the Lua patterns http.escape and ecommpay's urlencode used before the core did it.
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    local function lua_rfc3986(s) return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end
    local function lua_php(s)
        return (s:gsub("[^%w%-%._]", function(c) return c == " " and "+" or ("%%%02X"):format(c:byte()) end))
    end

    it("percent-encodes all but RFC 3986's unreserved bytes, in upper-case hex", function()
        assert.equal(lua_rfc3986(all), core.url_encode(all))
        assert.equal("a%20b~c%2F%C3%B6", core.url_encode("a b~c/ö"))
    end)

    it("with form, encodes as PHP's urlencode: a space as '+', '~' as %7E", function()
        assert.equal(lua_php(all), core.url_encode(all, true))
        assert.equal("a+b%7Ec%2F%C3%B6", core.url_encode("a b~c/ö", true))
    end)

    it("returns a string with nothing to encode as it is, and encodes long strings completely", function()
        assert.equal("", core.url_encode(""))
        assert.equal("Az09-._~", core.url_encode("Az09-._~"))
        local long = all:rep(40)
        assert.equal(lua_php(long), core.url_encode(long, true))
    end)

    it("raises naming the argument for a non-string", function()
        assert.has_error(function() core.url_encode(5) end, "url_encode: bad argument #1 's' (string expected, got number)")
    end)
end)

describe("form_encode", function()
    it("joins names and values in the order given, each encoded as url_encode does", function()
        assert.equal("a=1&b%20c=x%2By&a=~", core.form_encode { "a", "1", "b c", "x+y", "a", "~" })
        assert.equal("a=1&b+c=x%2By&a=%7E", core.form_encode({ "a", "1", "b c", "x+y", "a", "~" }, true))
        assert.equal("", core.form_encode {})
        assert.equal("k=", core.form_encode { "k", "" })
    end)

    it("raises for an odd list or an item that is not a string", function()
        assert.has_error(function() core.form_encode { "a" } end,
            "form_encode: bad argument #1 'list' (names and values in pairs expected (an odd length))")
        assert.has_error(function() core.form_encode { "a", 1 } end,
            "form_encode: bad argument #1 'list' (item 2: string expected, got number)")
        assert.has_error(function() core.form_encode("a=1") end,
            "form_encode: bad argument #1 'list' (table expected, got string)")
    end)
end)

describe("form_encode with a prefix", function()
    it("puts the prefix before the query as it is", function()
        assert.equal("https://h/p?a=b+c", core.form_encode({ "a", "b c" }, true, "https://h/p?"))
        assert.equal("x y?", core.form_encode({}, false, "x y?"))
    end)
end)

describe("url_decode", function()
    -- against the Lua patterns http.unescape used before the core did it
    local function lua_unescape(s, plus)
        if plus then s = s:gsub("%+", " ") end
        return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end

    it("decodes %XX in either case, '+' as a space only with plus, and leaves a bare '%' as it is", function()
        assert.equal("a b+c/é%zz%4", core.url_decode("a%20b+c%2f%C3%A9%zz%4"))
        assert.equal("a b c/é%zz%4", core.url_decode("a%20b+c%2f%C3%A9%zz%4", true))
        assert.equal("%2B", core.url_decode("%252B", true))
        assert.equal("", core.url_decode(""))
        local pieces = { "%", "%4", "%41", "%zz", "+", "a", "%e9", "%E9", "%%41", "%2", "%+" }
        local seed = 7
        for _ = 1, 500 do
            local t = {}
            for i = 1, 6 do
                seed = (seed * 1103515245 + 12345) % 2147483648
                t[i] = pieces[seed % #pieces + 1]
            end
            local s = table.concat(t)
            assert.equal(lua_unescape(s), core.url_decode(s), s)
            assert.equal(lua_unescape(s, true), core.url_decode(s, true), s)
        end
    end)
end)

describe("query_pairs", function()
    -- against the Lua reading http.query_pairs had before the core did it
    local function lua_pairs(text)
        local list = {}
        for pair in text:gmatch("[^&]+") do
            local k, v = pair:match("^([^=]*)=?(.*)$")
            list[#list + 1] = { core.url_decode(k, true), core.url_decode(v, true) }
        end
        return list
    end

    it("splits at '&' (empty pieces skipped) and at the first '=', decoding names and values", function()
        assert.same({ { "a b", "1=2" }, { "c", "" }, { "", "x" }, { "d", "é" } },
            core.query_pairs("a+b=1%3D2&&c&=x&d=%C3%A9&"))
        assert.same({}, core.query_pairs(""))
        local pieces = { "&", "=", "a", "%41", "+", "%", "==", "b=c" }
        local seed = 11
        for _ = 1, 500 do
            local t = {}
            for i = 1, 7 do
                seed = (seed * 1103515245 + 12345) % 2147483648
                t[i] = pieces[seed % #pieces + 1]
            end
            local s = table.concat(t)
            assert.same(lua_pairs(s), core.query_pairs(s), s)
        end
    end)
end)
