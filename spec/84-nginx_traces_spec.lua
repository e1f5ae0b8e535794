-- Issue 15: one provider-style call through luapay inside nginx (the
-- sandbox's /b/proxy: luapay.http over the cosocket transport), one
-- notification of each provider verified and answered by its client
-- (/b/notify/<provider>) and one read through Trustly's, ecommpay's and
-- TrustPay's clients (/b/call/<provider>) leave no aborted LuaJIT trace in
-- luapay's files (bench/jit_bench.lua counts them with jit.v, side traces
-- too). The deadline clock (ngx.update_time) and an inner loop in the
-- chunked reader's line reader used to abort them; then closures made on
-- each call (TrustPay's and beGateway's key checks, Trustly's store check
-- and signed answer, provider.copy, API Banking's answer checks),
-- provider.plain's closed upvalues, and beGateway's and Trustly NA's loop
-- over the event's fields.
local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

describe("nginx request path under LuaJIT", function()
    it("aborts no trace in luapay's files", function()
        -- nginx runs LuaJIT whatever runs the specs; the driver is Lua 5.4 with its own core
        local cmd = ("env -u LD_PRELOAD LUA_PATH=%s LUA_CPATH=%s lua5.4 bench/jit_bench.lua 300 2>&1"):format(
            quote("lua/?.lua;lua/?/init.lua;bench/?.lua;;"), quote("build/lua5.4/?.so;;"))
        local p = assert(io.popen(cmd))
        local out = p:read("*a")
        p:close()
        assert.matches("aborts 0\n", out, 1, true)
    end)
end)
