--- Sandbox endpoints for the transport bench (mounted at /b/).
local http = require "luapay.http"

local H = {}
local upstream -- one pipeline per worker, so its cosocket pool is reused
local notified = {} -- provider -> the client that verifies its notifications (one per worker)

-- A notification as a merchant's nginx takes one: the provider's client
-- (config.notify[provider].client: bench/notifications.lua) verifies the
-- request and answers it.
local function notify(name, config)
    local client = notified[name]
    if not client then
        client = require("luapay." .. name).new(config.notify[name].client)
        notified[name] = client
    end
    ngx.req.read_body()
    local raw = ngx.req.get_method() == "GET" and ngx.var.args or ngx.req.get_body_data()
    local event = client:notification(raw, ngx.req.get_headers())
    local answer = client:notification_response(event, event ~= nil)
    ngx.status = answer.status
    ngx.header["Content-Type"] = answer.headers["Content-Type"]
    return ngx.print(answer.body)
end

-- API calls as a merchant's handler makes them, through a provider's
-- client to its fake in another sandbox: config.call[name] = {provider,
-- client (its options), arg}. The reads repeat alike; a payment made on
-- each request takes a new id from arg and a counter.
local clients = {}
local sequence = 0
local CALL = {
    trustly_balance = function(client) return client:balance() end,
    trustly_deposit = function(client, data)
        sequence = sequence + 1
        data.MessageID = "jit-" .. ngx.worker.pid() .. "-" .. sequence
        return client:deposit(data)
    end,
    ecommpay_status = function(client, payment_id) return client:status(payment_id) end,
    ecommpay_sale = function(client, request)
        sequence = sequence + 1
        request.general.payment_id = "jit-" .. ngx.worker.pid() .. "-" .. sequence
        return client:sale("trustly", request)
    end,
    trustpay_accounts = function(client) return client:accounts() end,
}
local function call(name, config)
    local c = config.call[name]
    local client = clients[name]
    if not client then
        client = require("luapay." .. c.provider).new(c.client)
        clients[name] = client
    end
    local res, err = CALL[name](client, c.arg)
    ngx.header["Content-Type"] = "text/plain"
    if not res then
        ngx.status = 502
        return ngx.print(tostring(err))
    end
    return ngx.print("ok")
end

function H.handle(path, config)
    if path == "hello" then
        ngx.header["Content-Type"] = "text/plain"
        return ngx.print("hello")
    end
    if path == "jitv" then -- LuaJIT's trace messages (compiled, aborted) from here on into a file
        require("jit.v").on(ngx.var.arg_file)
        return ngx.print("on")
    end
    if path == "proxy" then -- answers after one upstream call through cosockets
        upstream = upstream or http.new{ retries = 0 }
        local res, err = upstream:request{ url = "http://127.0.0.1:" .. config.ports.http .. "/b/hello", idempotent = true }
        if not res then
            ngx.status = 502
            return ngx.print(err.message)
        end
        ngx.header["Content-Type"] = "text/plain"
        return ngx.print(res.body)
    end
    local provider = path:match("^notify/([%w_]+)$")
    if provider then return notify(provider, config) end
    local name = path:match("^call/([%w_]+)$")
    if name then return call(name, config) end
    if path == "posts" then -- N refund-like POSTs over TLS to this sandbox, sequential: requests per second
        local n, idempotent = tonumber(ngx.var.arg_n) or 1000, ngx.var.arg_idempotent == "1"
        local client = http.default_transport{ verify = false }
        local req = { method = "POST", url = "https://127.0.0.1:" .. config.ports.https .. "/b/hello",
            body = "amount=1000&currency=EUR", idempotent = idempotent,
            headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } }
        assert(client:request(req).status == 200)
        ngx.update_time()
        local t0 = ngx.now()
        for _ = 1, n do
            local res = assert(client:request(req))
            if res.status ~= 200 then error("unexpected status " .. res.status) end
        end
        ngx.update_time()
        return ngx.print(("%.0f"):format(n / (ngx.now() - t0)))
    end
    ngx.exit(404)
end

return H
