-- One streaming run for `make bench` (bench/recon_bench.lua starts one
-- process per run, so each reports its own peak memory):
--   recon_stream.lua begateway|trustly_na URL PAGE_SIZE SCALE
-- Streams the whole data set through the provider's iterator and prints
--   <count> <seconds> <client CPU seconds> <peak Lua heap KB> <VmHWM KB>
-- The Lua heap is sampled after every transaction; VmHWM is the kernel's
-- peak resident set of this process.
local core = require "luapay.core"
local dataset = require "luapay.sandbox.dataset"

local provider, url, page, scale = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local ds = dataset.new{ scale = scale }

local it
if provider == "begateway" then
    local begateway = require "luapay.begateway"
    local dwh = begateway.new{ psp_id = "1", secret = "begateway-dwh-secret", dwh_url = url .. "/begateway",
        timeout_ms = 120000, deadline_ms = 120000 }
    it = dwh:export{
        date_from = dataset.iso(ds.start_ms, true), date_to = dataset.iso(ds.end_ms, true),
        response_parameters = { "main", "gateway", "commission" }, limit = page,
    }
else
    local trustly_na = require "luapay.trustly_na"
    local tna = trustly_na.new{ access_id = "luapay-access-id", access_key = "luapay-access-key", base_url = url .. "/trustly_na",
        timeout_ms = 120000, deadline_ms = 120000 }
    it = tna:payments{ count = page }
end

collectgarbage("collect")
local peak = collectgarbage("count")
local n = 0
local t0, c0 = core.monotime(), os.clock()
for tx, err in it do
    if not tx then error(tostring(err)) end
    n = n + 1
    local kb = collectgarbage("count")
    if kb > peak then peak = kb end
end
if it.err then error(tostring(it.err)) end -- a first page that failed ends a detached loop
local elapsed, cpu = core.monotime() - t0, os.clock() - c0

local hwm = 0
local f = io.open("/proc/self/status")
if f then
    hwm = tonumber(f:read("*a"):match("VmHWM:%s*(%d+)")) or 0
    f:close()
end
print(("%d %.6f %.6f %.0f %d"):format(n, elapsed, cpu, peak, hwm))
