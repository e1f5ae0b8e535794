-- `make demo`'s script, examples/merchant_day.lua, run as a user runs it:
-- one sandbox with every fake provider, five steps of a merchant's day, one
-- transcript line each, a summary per provider, the sandbox stopped, and an
-- exit status that says whether every step succeeded.
local util = require "support.util"

-- The same VM as this suite, with the core built without sanitizers (the
-- ASan suite preloads libasan, which is not for the subprocess).
local lua = util.LUA
local build = util.PLAIN_BUILD

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    os.remove(path)
    return s
end

-- Runs the demo; returns stdout, stderr and the exit status.
local function demo(env)
    local out, err = os.tmpname(), os.tmpname()
    local cmd = ("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LUAPAY_DEMO_FAIL %s "
        .. "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' %s examples/merchant_day.lua >%s 2>%s; echo $?")
        :format(env or "", build, lua, out, err)
    local p = io.popen(cmd)
    local code = tonumber(p:read("*a"))
    p:close()
    return slurp(out), slurp(err), code
end

-- The transcript's step lines, by step number.
local function steps(out)
    local list, count = {}, 0
    for line in out:gmatch("[^\n]+") do
        local n = line:match("^%s?(%d)  ")
        if n then
            count = count + 1
            list[tonumber(n)] = line
        end
    end
    return list, count
end

-- The summary's row for a provider: operations, money in, money out, status.
local function summary_row(out, title)
    local ops, rest = out:match("\n" .. title:gsub("%p", "%%%0") .. " +(%d+)   ([^\n]+)")
    if not ops then return nil end
    local money_in, money_out, status = rest:match("^(.-)%s%s+(.-)%s%s+(%S[^\n]*)$")
    return { ops = tonumber(ops), money_in = money_in, money_out = money_out, status = status }
end

-- Whether a pid the demo's sandbox had is still an nginx process (a zombie
-- or a pid taken by something else counts as gone).
local function nginx_alive(pid)
    local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
    if not f then return false end
    local cmdline = f:read("*a") or ""
    f:close()
    return cmdline:find("nginx", 1, true) ~= nil
end

local function sandbox_pids(out)
    local list = out:match("nginx pids ([%d ]+);")
    assert.is_string(list, "the demo names its sandbox's pids")
    local pids = {}
    for pid in list:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
    return pids
end

local function assert_sandbox_gone(out)
    local pids = sandbox_pids(out)
    assert.is_true(#pids >= 2, "a master and at least one worker")
    for _, pid in ipairs(pids) do
        assert.is_false(nginx_alive(pid), "nginx " .. pid .. " of the demo's sandbox is still running")
    end
end

describe("make demo: examples/merchant_day.lua", function()
    it("runs a merchant's day, one line per step, a summary, and leaves nothing running", function()
        local out, err, code = demo()
        assert.equal(0, code, out .. err)
        assert.equal("", err)
        assert.is_nil(out:find("\27[", 1, true), "no colour when stdout is not a terminal")
        assert.matches("nginx pids [%d ]+; fakes: ecommpay trustly trustpay begateway trustly_na\n", out)

        local list, count = steps(out)
        assert.equal(5, count, out)
        assert.matches("^ 1  ecommpay +Trustly purchase: sale, redirect, callback +25%.00 EUR in +pending → succeeded$", list[1])
        assert.matches("^ 2  Trustly +deposit, notifications answered, refund +103%.00 SEK in, 30%.00 SEK out"
            .. " +succeeded → partially_refunded$", list[2])
        assert.matches("^ 3  TrustPay +card preauthorization %(SCA%), capture +54%.50 EUR in %(60%.00 EUR held%)"
            .. " +authorized → succeeded$", list[3])
        assert.matches("^ 4  ecommpay +Trustly payout, IBAN DE89%.%.%.3000 %(Figure 32%) +40%.00 EUR out +succeeded$", list[4])
        -- the planted differences: two payments without an order, one amount
        -- that differs, two orders nobody paid; as many orders as payments
        local orders, payments, matched, unmatched = list[5]:match(
            "^ 5  beGateway, Trustly NA +reconciliation of 2024%-06%-03 +(%d+) orders, (%d+) payments +matched (%d+), unmatched (%d+)$")
        assert.is_string(orders, list[5])
        assert.equal(tonumber(orders), tonumber(payments))
        assert.equal(tonumber(payments) - 3, tonumber(matched))
        assert.equal("5", unmatched)
        assert.is_true(tonumber(payments) > 300, "a whole day was streamed")
        assert.is_nil(out:find("FAILED", 1, true))

        assert.matches("\nprovider +operations +money in +money out +status\n", out)
        assert.same({ ops = 5, money_in = "25.00 EUR", money_out = "40.00 EUR", status = "ok" }, summary_row(out, "ecommpay"))
        -- deposit, pending + account + credit + one delivered twice, refund, its confirmation
        assert.same({ ops = 7, money_in = "103.00 SEK", money_out = "30.00 SEK", status = "ok" }, summary_row(out, "Trustly"))
        assert.same({ ops = 4, money_in = "54.50 EUR", money_out = "-", status = "ok" }, summary_row(out, "TrustPay"))
        assert.same({ ops = 1, money_in = "-", money_out = "-", status = "ok" }, summary_row(out, "beGateway"))
        assert.same({ ops = 1, money_in = "-", money_out = "-", status = "ok" }, summary_row(out, "Trustly NA"))
        assert.matches("\n5 steps: 5 ok, 0 failed, in [%d.]+ s; sandbox stopped\n$", out)
        assert_sandbox_gone(out)
    end)

    it("prints a failed step with its error, goes on to the summary and exits 1", function()
        local out, err, code = demo("LUAPAY_DEMO_FAIL=trustly")
        assert.equal(1, code, out .. err)
        local list, count = steps(out)
        assert.equal(5, count, out)
        assert.matches("^ 2  Trustly +deposit, notifications answered, refund +%- +FAILED luapay provider error: "
            .. "Trustly refused Deposit: ERROR_INVALID_CREDENTIALS %(616%)", list[2])
        assert.is_nil(out:find("wrong-trustly-credential", 1, true), "the password is not printed")
        -- the other steps ran as usual
        assert.matches("25%.00 EUR in +pending → succeeded$", list[1])
        assert.matches("54%.50 EUR in %(60%.00 EUR held%) +authorized → succeeded$", list[3])
        assert.matches("40%.00 EUR out +succeeded$", list[4])
        assert.matches("matched %d+, unmatched 5$", list[5])
        assert.same({ ops = 1, money_in = "-", money_out = "-", status = "FAILED" }, summary_row(out, "Trustly"))
        assert.same({ ops = 5, money_in = "25.00 EUR", money_out = "40.00 EUR", status = "ok" }, summary_row(out, "ecommpay"))
        assert.matches("\n5 steps: 4 ok, 1 failed, in [%d.]+ s; sandbox stopped\n$", out)
        assert_sandbox_gone(out)
    end)

    it("books a failure against the provider that failed", function()
        local out, _, code = demo("LUAPAY_DEMO_FAIL=ecommpay,begateway")
        assert.equal(1, code)
        local list = steps(out)
        assert.matches("^ 1  ecommpay .* FAILED luapay provider error: Wrong signature %(HTTP 400, code 1003", list[1])
        assert.matches("^ 4  ecommpay .* FAILED luapay provider error: Wrong signature", list[4])
        assert.matches("^ 5  .* FAILED beGateway export stopped: luapay http error: .*HTTP 401", list[5])
        assert.matches("succeeded → partially_refunded$", list[2])
        assert.equal("FAILED", summary_row(out, "ecommpay").status)
        assert.equal("FAILED", summary_row(out, "beGateway").status)
        assert.equal("not reached", summary_row(out, "Trustly NA").status)
        assert.equal("ok", summary_row(out, "TrustPay").status)
        assert.matches("\n5 steps: 2 ok, 3 failed, in [%d.]+ s; sandbox stopped\n$", out)
        assert_sandbox_gone(out)
    end)

    it("refuses an unknown provider in LUAPAY_DEMO_FAIL before starting anything", function()
        local out, err, code = demo("LUAPAY_DEMO_FAIL=paypal")
        assert.equal(2, code)
        assert.equal("", out)
        assert.equal("merchant_day: LUAPAY_DEMO_FAIL: unknown provider 'paypal' "
            .. "(one of: ecommpay, trustly, trustpay, begateway, trustly_na)\n", err)
    end)
end)
