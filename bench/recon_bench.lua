-- `make bench`, reconciliation section: transactions per second streamed
-- through beGateway's export and Trustly NA's payments iterators from the
-- sandbox, per page size, under Lua 5.4 and LuaJIT (best of N rounds), with
-- the client's own CPU time per transaction (the rest is the fake and the
-- loopback); and the peak memory of a process streaming the 2,500
-- transaction data set against ten times that (25,000 over a 70-day
-- period): streaming keeps about a page in memory, so the peak must not
-- grow with the period.
--   lua5.4 bench/recon_bench.lua [ROUNDS]
local sandbox = require "luapay.sandbox"

local rounds = tonumber(arg[1]) or 3

local function start(scale)
    return assert(sandbox.start{
        routes = { ["/begateway/"] = "luapay.sandbox.begateway", ["/trustly_na/"] = "luapay.sandbox.trustly_na" },
        config = { begateway = { scale = scale }, trustly_na = { scale = scale } },
    })
end

local VMS = {
    { name = "Lua 5.4", cmd = "lua5.4", cpath = "build/lua5.4/?.so;;" },
    { name = "LuaJIT", cmd = "luajit", cpath = "build/luajit/?.so;;" },
}

local function run(vm, provider, url, page, scale)
    local cmd = ("env -u LD_PRELOAD LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s' %s bench/recon_stream.lua %s %s %d %d")
        :format(vm.cpath, vm.cmd, provider, url, page, scale)
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    local n, secs, cpu, heap, hwm = out:match("^(%d+) ([%d%.]+) ([%d%.]+) (%d+) (%d+)")
    if not n then error("bench run failed: " .. cmd .. "\n" .. out) end
    return { n = tonumber(n), secs = tonumber(secs), cpu = tonumber(cpu), heap = tonumber(heap), hwm = tonumber(hwm) }
end

-- Trustly NA documents count <= 100: its pages are 25 (the API's default) and 100.
local CASES = {
    { "begateway", "beGateway export", 100 }, { "begateway", "beGateway export", 1000 },
    { "trustly_na", "Trustly NA payments", 25 }, { "trustly_na", "Trustly NA payments", 100 },
}

local sb1 = start(1)
local best = {}
for _ = 1, rounds do
    for ci, case in ipairs(CASES) do
        for vi, vm in ipairs(VMS) do
            local r = run(vm, case[1], sb1.url, case[3], 1)
            assert(r.n == 2500, "streamed " .. r.n)
            local key = ci .. ":" .. vi
            local b = best[key] or { rate = 0, cpu = math.huge }
            b.rate = math.max(b.rate, r.n / r.secs)
            b.cpu = math.min(b.cpu, r.cpu / r.n * 1e6)
            best[key] = b
        end
    end
end

print(("reconciliation streaming: 2,500 transactions from the sandbox's fakes over loopback, best of %d rounds"):format(rounds))
print("(tx/s end to end, fake included; client CPU = this process's CPU per transaction: HTTP, JSON, iterator)")
print(("%-20s %5s %11s %11s %8s %13s %13s"):format("iterator", "page", "5.4 tx/s", "JIT tx/s", "JIT/5.4", "5.4 CPU us/tx", "JIT CPU us/tx"))
for ci, case in ipairs(CASES) do
    local a, b = best[ci .. ":1"], best[ci .. ":2"]
    print(("%-20s %5d %11.0f %11.0f %8.2f %13.1f %13.1f"):format(case[2], case[3], a.rate, b.rate, b.rate / a.rate, a.cpu, b.cpu))
end
for _, pair in ipairs({ { 1, 2, "beGateway 1000/100" }, { 3, 4, "Trustly NA 100/25" } }) do
    local l = function(vi) return best[pair[2] .. ":" .. vi].rate / best[pair[1] .. ":" .. vi].rate end
    print(("%-26s %11.2f %11.2f"):format("tx/s ratio " .. pair[3], l(1), l(2)))
end

local sb3, sb10 = start(3), start(10)
print()
print("peak memory streaming everything (KB): heap = peak collectgarbage(\"count\") sampled per transaction,")
print("RSS = VmHWM of the process; 7.5k and 25k = the data set 3 and 10 times over 21 and 70 days; x = 25k / 2.5k.")
print("A page is the unit: the peak settles at two to three decoded pages once a run is several pages long, and stays")
print("there; with pages of 1000 the 2.5k run is only 2.5 pages, too short for the collector to settle (compare 7.5k, 25k).")
print(("%-20s %5s %-8s %9s %9s %9s %9s %9s %9s %6s %6s"):format("iterator", "page", "VM", "heap 2.5k", "heap 7.5k", "heap 25k",
    "RSS 2.5k", "RSS 7.5k", "RSS 25k", "heap x", "RSS x"))
for _, case in ipairs(CASES) do
    for _, vm in ipairs(VMS) do
        local r1 = run(vm, case[1], sb1.url, case[3], 1)
        local r3 = run(vm, case[1], sb3.url, case[3], 3)
        local r10 = run(vm, case[1], sb10.url, case[3], 10)
        assert(r3.n == 3 * r1.n and r10.n == 10 * r1.n, "the scaled runs streamed " .. r3.n .. " and " .. r10.n)
        print(("%-20s %5d %-8s %9d %9d %9d %9d %9d %9d %6.2f %6.2f"):format(case[2], case[3], vm.name, r1.heap, r3.heap, r10.heap,
            r1.hwm, r3.hwm, r10.hwm, r10.heap / r1.heap, r10.hwm / r1.hwm))
    end
end
assert(sb1:stop())
assert(sb3:stop())
assert(sb10:stop())
