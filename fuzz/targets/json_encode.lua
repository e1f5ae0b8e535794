-- core.json_encode: any bytes as a string, a key and an array element are
-- encoded exactly when they are UTF-8 (Lua's utf8.len is the judge), and
-- read back byte for byte; refused otherwise, naming UTF-8. Any JSON text
-- decoded first is encoded canonically (a fixed point) with Trustly's
-- serialization agreeing on the same tree.
local core = require "luapay.core"
local cjson = require "cjson"
local oracle = require "oracle"

local decode, encode = core.json_decode, core.json_encode
local LEXEMES = { numbers = "lexeme" }

return function(s)
    local utf8_ok = utf8.len(s) ~= nil
    for _, v in ipairs({ s, { [s] = s, k = 1 }, setmetatable({ s, { s } }, core.array_mt) }) do
        local text, err = encode(v)
        if utf8_ok then
            assert(text, err)
            assert(oracle.same(v, oracle.decode(text)), "a string did not read back")
            assert(oracle.same(v, cjson.decode(text)), "lua-cjson reads another value")
        else
            assert(text == nil and err:find("invalid UTF-8", 1, true), "invalid UTF-8 was encoded")
        end
    end
    local tree = decode(s, LEXEMES)
    if tree == nil then return end
    local text = encode(tree)
    if text == nil then return end
    local back = oracle.decode(text, LEXEMES)
    assert(encode(back) == text, "not a fixed point")
    assert(core.trustly_serialize(back) == core.trustly_serialize(tree), "signed text changed through encode")
end
