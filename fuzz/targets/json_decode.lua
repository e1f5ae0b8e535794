-- core.json_decode on any bytes: it either reads a value or says where it
-- stopped; both number modes agree on what is JSON; a decoded tree encodes,
-- and that text is a fixed point of decode -> encode. lua-cjson reads every
-- text we accept.
local core = require "luapay.core"
local cjson = require "cjson"
local oracle = require "oracle"

local decode, encode = core.json_decode, core.json_encode
local LEXEMES = { numbers = "lexeme" }

return function(s)
    local v, err = decode(s)
    local lv, lerr = decode(s, LEXEMES)
    if lv == nil then
        assert(v == nil, "lexeme mode refused a text number mode read")
        assert(lerr:match("^json_decode: .+ at byte %d+$"), lerr)
        return
    end
    if v == nil then assert(err:find("number too long", 1, true), err) end
    assert(pcall(cjson.decode, s), "lua-cjson refuses a text core.json_decode read")
    local text, eerr = encode(lv)
    if not text then -- the encoder nests 64 levels, the decoder 128
        assert(eerr:find("nested too deeply", 1, true), eerr)
        return
    end
    local again = oracle.decode(text, LEXEMES)
    assert(oracle.same(lv, again), "decode(encode(tree)) is another tree")
    assert(encode(again) == text, "encode(decode(text)) is not a fixed point")
    if v ~= nil then
        local ntext = encode(v)
        if ntext then assert(oracle.same(v, decode(ntext)), "a number-mode tree changed through encode") end
    end
end
