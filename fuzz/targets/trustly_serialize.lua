-- core.trustly_serialize against the reference in fuzz/oracle.lua, on
-- decoded JSON (numbers as their text, as a notification is verified) and
-- on the raw bytes as a key and a value.
local core = require "luapay.core"
local oracle = require "oracle"

local serialize = core.trustly_serialize

return function(s)
    assert(serialize({ [s] = s }) == s .. s, "a key and its value are not the bytes")
    assert(serialize({ s, { s } }) == s .. s, "an array is not its elements in order")
    local tree = core.json_decode(s, { numbers = "lexeme" })
    if tree == nil then return end
    local ok, text = pcall(serialize, tree)
    if not ok then -- only what the reference cannot serialize either
        assert(text:find("nested too deeply", 1, true) or text:find("mixes array and object keys", 1, true), text)
        return
    end
    assert(text == oracle.trustly_serialize(tree), "differs from the reference")
    local plain = core.json_decode(s)
    if plain then pcall(serialize, plain) end
end
