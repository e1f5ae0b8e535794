-- Refund-like POSTs over TLS on loopback, sequential, one libcurl client and
-- then one cosocket transport inside the sandbox's nginx:
-- requests not declared idempotent (a refund) against the same requests
-- declared idempotent (which always shared a kept-alive connection).
-- Prints "name requests_per_second".   lua5.4 bench/post_bench.lua [N]
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"

local N = tonumber(arg[1]) or 1000

-- A self-signed certificate for 127.0.0.1 (verify = false is honoured for loopback only).
local dir = io.popen("mktemp -d /tmp/luapay-bench.XXXXXX"):read("*l")
assert(os.execute(("cd %s && env -u LD_PRELOAD openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
    .. " -nodes -keyout key.pem -out cert.pem -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1"):format(dir)))
local sb = assert(sandbox.start{ routes = { ["/b/"] = "handlers" }, lua_path = "bench/?.lua",
    tls = { cert = dir .. "/cert.pem", key = dir .. "/key.pem" } })
local client = core.http_client{ verify = false }

local function rate(idempotent)
    local req = { method = "POST", url = sb.tls_url .. "/b/hello", body = "amount=1000&currency=EUR", idempotent = idempotent,
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } }
    assert(client:request(req).status == 200)
    local t0 = core.monotime()
    for _ = 1, N do
        local res = assert(client:request(req))
        if res.status ~= 200 then error("unexpected status " .. res.status) end
    end
    return N / (core.monotime() - t0)
end

print(("tls_post_not_idempotent %.0f"):format(rate(false)))
print(("tls_post_idempotent %.0f"):format(rate(true)))
client:close()

-- The same inside nginx, through cosockets (bench/handlers.lua "posts").
local driver = core.http_client{ timeout_ms = 600000 }
for _, idempotent in ipairs({ "0", "1" }) do
    local res = assert(driver:request{ url = ("%s/b/posts?n=%d&idempotent=%s"):format(sb.url, N, idempotent) })
    assert(res.status == 200, res.body)
    print(("cosocket_tls_post_%s %s"):format(idempotent == "1" and "idempotent" or "not_idempotent", res.body))
end
driver:close()
assert(sb:stop())
os.execute("rm -rf " .. dir)
