-- examples/ecommpay_trustly.lua runs as the README says, against its own
-- sandbox, and walks through every step.
local util = require "support.util"
describe("examples/ecommpay_trustly.lua", function()
    it("runs from the repository root and shows each step of the merchant's day", function()
        local lua = util.LUA
        -- The example loads the plain build of the core: the ASan one needs
        -- its runtime preloaded, which subprocesses must not get.
        local build = util.PLAIN_BUILD
        local cmd = ("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS LUA_PATH='lua/?.lua;lua/?/init.lua;;' "
            .. "LUA_CPATH='%s/?.so;;' %s examples/ecommpay_trustly.lua 2>&1"):format(build, lua)
        local p = io.popen(cmd)
        local out = p:read("*a")
        local ok = p:close()
        assert.is_true(ok == true or ok == 0, out)
        assert.matches("1%. sale accepted: +status=success", out)
        assert.matches("an invalid one: +luapay validation error", out)
        assert.matches("2%. callback: +kind=payment %(sale%) status=pending %-> redirect the customer: POST http://127%.0%.0%.1", out)
        assert.matches("the customer returns to https://shop%.example/thanks", out)
        assert.matches("3%. final callback: +payment succeeded, 25%.00 EUR, operation 41%d+ %-> answer 200 OK", out)
        assert.matches("4%. status: +succeeded", out)
        assert.matches("5%. refund callback: +refund partially_refunded, 10%.00 EUR refunded, 15%.00 EUR left", out)
        assert.matches("6%. forged callback: +luapay signature error: callback signature does not match %-> answer 400", out)
        assert.matches("7%. Payment Page link: +https://paymentpage%.ecommpay%.com/payment%?project_id=1625&", out)
    end)
end)
