-- Issue 15: every operation `make bench BENCH_MODE=icount` counts runs and
-- gives the answer it must (bench/icount.lua asserts the signature, the
-- URL, the verified events), and each floor op builds the very shape of
-- the event its call returns, key for key: a figure of a wrong or failing
-- operation, or a floor that drifted from the event, means nothing. Each
-- runs once (after the bench's warm-up), without callgrind, under this
-- suite's Lua and core.
local util = require "support.util"

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function run(op)
    local cmd = ("env -u LD_PRELOAD LUA_PATH=%s LUA_CPATH=%s %s bench/icount.lua %s 1 2>&1; echo \"exit=$?\""):format(
        quote("lua/?.lua;lua/?/init.lua;bench/?.lua;;"), quote(util.PLAIN_BUILD .. "/?.so;;"), util.LUA, quote(op))
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    return tonumber(out:match("exit=(%d+)%s*$")), out
end

describe("bench/icount.lua", function()
    for _, op in ipairs{ "ecommpay_sign", "ecommpay_verify", "ecommpay_page_url", "trustpay_card_url",
        "trustpay_notification", "trustly_sign", "trustly_notification", "json_encode", "cjson_encode",
        "ecommpay_verify_floor", "trustpay_notification_floor", "ecommpay_verify@4096" } do
        it("runs " .. op, function()
            local code, out = run(op)
            assert.equal(0, code, out)
        end)
    end

    it("refuses an operation it does not know", function()
        local code, out = run("no_such_op")
        assert.is_not.equal(0, code)
        assert.matches("unknown operation no_such_op", out, 1, true)
    end)
end)
