-- examples/reconcile.lua runs as README says (its own sandbox, both
-- providers streamed for one day) and finds exactly the differences planted
-- in its order book.
local util = require "support.util"
local function run(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("*a")
    p:close()
    return out
end

describe("examples/reconcile.lua", function()
    -- the same VM as this suite, with the core built without sanitizers
    local lua = util.LUA
    local build = util.PLAIN_BUILD
    local cmd = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='"
        .. build .. "/?.so;;' " .. lua .. " examples/reconcile.lua"

    it("reconciles a day of both providers and prints the unmatched ones", function()
        local out = run(cmd .. " 2024-06-03")
        assert.matches("exit=0", out)
        assert.matches("reconciliation for 2024%-06%-03", out)
        local kinds = {}
        for kind, ref in out:gmatch("\n  (%a[%a ]-%a)%s%s+([A-Z]+%-%d+)") do
            kinds[#kinds + 1] = kind .. " " .. ref:match("^%u+")
        end
        table.sort(kinds)
        assert.same({
            "amount differs BG", "order without payment BG", "order without payment TNA",
            "payment without order BG", "payment without order TNA",
        }, kinds)
        assert.matches("order without payment%s+BG%-900001%s+49%.99 EUR", out)
        assert.matches("order without payment%s+TNA%-900002%s+120%.00 USD", out)
        assert.matches("unmatched 5\n", out)
    end)

    it("refuses a date that is not YYYY-MM-DD", function()
        local out = run(cmd .. " yesterday")
        assert.not_matches("exit=0", out)
        assert.matches("usage: reconcile%.lua", out)
    end)
end)
