-- core.ecommpay_canonical on decoded JSON (numbers as lexemes and as Lua
-- numbers, plain and callback mode) and on the raw bytes as a key and a
-- value: a string or nil and an error, the same each time; every ':' in a
-- key doubled; "signature" left out of a callback at any depth.
-- core.ecommpay_callback on the raw bytes: json_decode's answer, and where
-- it signs, the signature core.ecommpay_signature gives over the lexemes,
-- and the event's picks (ecommpay.CALLBACK_PICKS) core.json_picks reads.
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"

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
    local got = { n = select("#", core.ecommpay_callback(s, "k", ecommpay.CALLBACK_PICKS)),
        core.ecommpay_callback(s, "k", ecommpay.CALLBACK_PICKS) }
    local body, want = got[1], got[2]
    local lexemes, derr = core.json_decode(s, { numbers = "lexeme" })
    if body == nil then
        assert(lexemes == nil and want == derr, "ecommpay_callback: not json_decode's error")
    elseif want then
        assert(want == core.ecommpay_signature(lexemes, "k", CALLBACK), "ecommpay_callback: another signature")
        local picks = { n = select("#", core.json_picks(body, ecommpay.CALLBACK_PICKS)),
            core.json_picks(body, ecommpay.CALLBACK_PICKS) }
        assert(got.n == picks.n + 2, "ecommpay_callback: not the picks")
        for i = 2, picks.n do assert(got[i + 2] == picks[i], "ecommpay_callback: another pick") end
    end
    for _, mode in ipairs({ { numbers = "lexeme" }, false }) do
        local tree = core.json_decode(s, mode or nil)
        if type(tree) == "table" then check(tree) end
    end
end
