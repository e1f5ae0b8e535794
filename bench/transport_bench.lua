-- Transport bench: sequential requests through one libcurl client against
-- one `curl` process reusing its connection, and (with wrk) an nginx
-- endpoint making one cosocket call upstream against the same endpoint
-- answering directly. Prints "name value" lines for bench/run.sh.
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"

local N = tonumber(arg[1]) or 2000
local WRK_SECONDS = tonumber(arg[2]) or 3

local t0 = core.monotime()
local sb = assert(sandbox.start{ routes = { ["/b/"] = "handlers" }, lua_path = "bench/?.lua" })
print(("sandbox_start_ms %.1f"):format((core.monotime() - t0) * 1000))
local url = sb.url .. "/b/hello"

local function timed(f)
    local start = core.monotime()
    f()
    return core.monotime() - start
end

-- libcurl through luapay.core, one client, N sequential GETs
local client = core.http_client{}
-- reads declared idempotent: only those share kept-alive connections
local req = { url = url, idempotent = true }
assert(client:request(req).body == "hello") -- connect once before timing
local secs = timed(function()
    for _ = 1, N do
        local res = client:request(req)
        if res.status ~= 200 then error("unexpected status " .. res.status) end
    end
end)
print(("libcurl_seq %.0f"):format(N / secs))

-- the curl command line, one process given the URL N times (one connection)
local cfg = os.tmpname()
local f = assert(io.open(cfg, "w"))
for _ = 1, N do f:write('url = "', url, '"\noutput = "/dev/null"\n') end
f:close()
secs = timed(function() assert(os.execute("env -u LD_PRELOAD curl -s -K " .. cfg)) end)
os.remove(cfg)
print(("curl_cli_seq %.0f"):format(N / secs))

-- wrk against the direct endpoint and the one that calls upstream
local function wrk(path)
    local p = io.popen(("env -u LD_PRELOAD wrk -t1 -c8 -d%ds %s/b/%s"):format(WRK_SECONDS, sb.url, path))
    local out = p:read("*a")
    p:close()
    return tonumber(out:match("Requests/sec:%s*([%d%.]+)")) or 0
end
print(("nginx_direct %.0f"):format(wrk("hello")))
print(("nginx_cosocket_upstream %.0f"):format(wrk("proxy")))

t0 = core.monotime()
assert(sb:stop())
print(("sandbox_stop_ms %.1f"):format((core.monotime() - t0) * 1000))
