--- `make bench`, the inbox (issue 17): notifications per second through
-- examples/nginx/inbox.conf with one box and with two boxes behind an nginx
-- round-robin load balancer (wrk, 16 connections, 5 s; every notification
-- verified, recorded in a real redis-server and answered), the p99 time of
-- the provider's answer, and a Lua 5.4 consumer's events per second
-- (XREADGROUP + XACK, a handler that does nothing).
-- Prints "name value" lines for bench/run.sh.
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local store = require "luapay.store"
local notices = require "support.notices"
local redis_server = require "support.redis"
local inbox_box = require "support.inbox_box"
local util = require "support.util"

local SECONDS, CONNECTIONS, PER_PROVIDER = 5, 16, tonumber(os.getenv("INBOX_BENCH_NOTICES") or "") or 1500

local srv = assert(redis_server.start())
local dir = srv.dir
local settings = dir .. "/settings.lua"
inbox_box.settings(settings, srv.port)

-- distinct notifications of all five providers, as wrk requests (a Lua file wrk loads)
local reqs = {}
for n = 1, PER_PROVIDER do
    for _, name in ipairs(notices.NAMES) do
        local notice = notices.make(name, 100000 + n, n % 2 == 0 and "succeeded" or "pending")
        local path = "/notifications/" .. name .. "/9c2e41d07b5a"
        if notice.method == "GET" then
            reqs[#reqs + 1] = ("{%q,%q,{},''}"):format("GET", path .. "?" .. notice.raw)
        else
            local h = {}
            for k, v in pairs(notice.headers) do h[#h + 1] = ("[%q]=%q"):format(k, v) end
            reqs[#reqs + 1] = ("{%q,%q,{%s},%q}"):format("POST", path, table.concat(h, ","), notice.raw)
        end
    end
end
util.write(dir .. "/wrk.lua", ([[
local reqs = { %s }
local i = 0
request = function()
    i = i %% #reqs + 1
    local r = reqs[i]
    return wrk.format(r[1], r[2], r[3], r[4] ~= "" and r[4] or nil)
end
]]):format(table.concat(reqs, ",\n")))

local function wrk(url)
    local out = io.popen(("wrk -t 2 -c %d -d %ds --latency -s %s/wrk.lua %s 2>&1"):format(CONNECTIONS, SECONDS, dir, url)):read("*a")
    local rps = tonumber(out:match("Requests/sec:%s+([%d%.]+)"))
    local num, unit = out:match("\n%s+99%%%s+([%d%.]+)(%a+)")
    local ms = tonumber(num or "") and tonumber(num) * (unit == "s" and 1000 or unit == "us" and 0.001 or 1)
    local non2xx = tonumber(out:match("Non%-2xx or 3xx responses: (%d+)") or "0")
    if not rps then io.stderr:write(out) end
    return rps or 0, ms or 0, non2xx
end

local a, base_a = inbox_box.start(settings)
local rps1, p99_1, bad1 = wrk(base_a)
print(("inbox_one_box %.0f %.2f %d"):format(rps1, p99_1, bad1))

local b, base_b = inbox_box.start(settings)
local lb, lb_port
for _ = 1, 5 do
    lb_port = sandbox.random_port()
    lb = sandbox.start{ workers = 2, http_config = ([[
  upstream inbox_boxes { server %s; server %s; keepalive 32; }
  server { listen 127.0.0.1:%d;
    location / { proxy_pass http://inbox_boxes; proxy_http_version 1.1; proxy_set_header Connection ""; } }]])
        :format(base_a:gsub("^http://", ""), base_b:gsub("^http://", ""), lb_port) }
    if lb then break end
end
local rps2, p99_2, bad2 = wrk("http://127.0.0.1:" .. lb_port)
print(("inbox_two_boxes %.0f %.2f %d"):format(rps2, p99_2, bad2))
lb:stop()
b:stop()
a:stop()

-- the consumer: everything recorded so far, handled and acknowledged
local s = store.redis{ port = srv.port }
local box = require("luapay.inbox").new{ store = s, clients = {} }
local total = tonumber(srv:cli("XLEN", "luapay:inbox"))
local started = core.monotime()
local handled = 0
repeat
    local n = assert(box:consume{ group = "bench", count = 200, block_ms = 10, once = true, handler = function() return true end })
    handled = handled + n
until n == 0
print(("inbox_consumer %.0f %d"):format(handled / (core.monotime() - started), total))
s:close()
srv:stop()
