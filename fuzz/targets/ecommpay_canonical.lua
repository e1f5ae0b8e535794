-- core.ecommpay_canonical on decoded JSON (numbers as lexemes and as Lua
-- numbers, plain and callback mode) and on the raw bytes as a key and a
-- value: a string or nil and an error, the same each time; every ':' in a
-- key doubled; "signature" left out of a callback at any depth.
local core = require "luapay.core"

local canonical = core.ecommpay_canonical
local CALLBACK = { callback = true }

local function check(params)
    for _, opts in ipairs({ false, CALLBACK }) do
        local text, err = canonical(params, opts or nil)
        if text == nil then
            assert(type(err) == "string" and err:match("^ecommpay_canonical: "), tostring(err))
        else
            assert(type(text) == "string")
            assert(canonical(params, opts or nil) == text, "not deterministic")
        end
    end
end

return function(s)
    local escaped = s:gsub(":", "::")
    assert(canonical({ [s] = "v" }) == (s == "frame_mode" and "" or escaped .. ":v"), "a key is not escaped")
    assert(canonical({ k = s }) == "k:" .. s, "a value is not verbatim")
    assert(canonical({ signature = s, a = { signature = s } }, CALLBACK) == "", "a signature was signed")
    for _, mode in ipairs({ { numbers = "lexeme" }, false }) do
        local tree = core.json_decode(s, mode or nil)
        if type(tree) == "table" then check(tree) end
    end
end
