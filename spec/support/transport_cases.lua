--- Request scenarios that run the same way through both transports: the
-- libcurl client (spec process) and cosockets (inside the sandbox's nginx,
-- via /t/run). Each returns plain data that the spec asserts on.
local http = require "luapay.http"

local cases = {}

local function client(opts)
    opts = opts or {}
    opts.sleep = opts.sleep or function() end -- retries without waiting
    return http.new(opts)
end

local function observe_error(err)
    return { type = err.type, message = err.message, attempts = err.attempts, sent = err.sent }
end

function cases.status_and_headers(env)
    local c = client()
    local out = {}
    for _, code in ipairs({ 200, 404, 500, 503 }) do
        local res, err = c:request{ url = env.url .. "/t/status/" .. code, retries = 0 }
        if not res then return observe_error(err) end
        out[#out + 1] = { status = res.status, x_test = res.headers["x-test"], body = res.body,
            content_type = res.headers["content-type"] }
    end
    return out
end

function cases.big_body(env)
    local res, err = client():request{ url = env.url .. "/t/big?bytes=5242880" }
    if not res then return observe_error(err) end
    local core = require "luapay.core"
    return { length = #res.body, sha256 = core.digest("sha256", res.body, "hex"),
        expected_sha256 = res.headers["x-body-sha256"] }
end

-- Only requests declared idempotent may share a kept-alive connection.
function cases.keepalive(env)
    local c = client()
    local connections, last_requests = {}, nil
    for _ = 1, 100 do
        local res, err = c:request{ url = env.url .. "/t/conn", idempotent = true }
        if not res then return observe_error(err) end
        local conn, n = res.body:match("^(%d+) (%d+)$")
        connections[conn] = true
        last_requests = tonumber(n)
    end
    local distinct = 0
    for _ in pairs(connections) do distinct = distinct + 1 end
    return { distinct_connections = distinct, requests_on_last = last_requests }
end

function cases.read_timeout(env)
    local res, err = client{ timeout_ms = 300, retries = 0 }:request{ url = env.url .. "/t/slow?ms=3000" }
    if res then return { status = res.status } end
    return observe_error(err)
end

function cases.refused(_)
    local res, err = client{ retries = 0 }:request{ url = "http://127.0.0.1:1/" }
    if res then return { status = res.status } end
    return observe_error(err)
end

function cases.chunked(env)
    local res, err = client():request{ url = env.url .. "/t/chunked" }
    if not res then return observe_error(err) end
    return { body = res.body, transfer_encoding = res.headers["transfer-encoding"] }
end

function cases.json_and_query(env)
    local res, err = client():request{
        method = "POST", url = env.url .. "/t/echo",
        query = { q = "a b&c=d/é", list = { "x", "y" }, n = 42 },
        json = { items = http.array(), big = 123456789012345 },
        headers = { ["X-Custom"] = "yes" },
        basic = { "merchant", "s3cret" },
    }
    if not res then return observe_error(err) end
    local echo = res.json
    return { status = res.status, method = echo.method, args = echo.args, body = echo.body,
        content_type = echo.headers["content-type"], custom = echo.headers["x-custom"],
        authorization = echo.headers["authorization"], attempts = res.attempts }
end

function cases.post_not_retried(env)
    local c = client{ retries = 2 }
    c:request{ url = env.url .. "/t/conn", idempotent = true } -- leaves a kept-alive connection to reuse
    local _, err = c:request{ method = "POST", url = env.url .. "/t/drop?key=" .. env.key, body = "pay 10 EUR" }
    local count = c:request{ url = env.url .. "/t/count?key=" .. env.key }
    local out = observe_error(err)
    out.server_saw = tonumber(count.body)
    return out
end

-- TrustPay's refunds are GETs: the method says nothing of idempotency.
function cases.get_not_retried(env)
    local c = client{ retries = 2 }
    local out = { errors = {}, server_saw = {} }
    for i = 1, 2 do
        c:request{ url = env.url .. "/t/conn", idempotent = true } -- leaves a kept-alive connection to reuse
        local _, err = c:request{ method = "GET", url = env.url .. "/t/drop?key=" .. env.key .. i }
        local count = c:request{ url = env.url .. "/t/count?key=" .. env.key .. i }
        out.errors[i] = observe_error(err)
        out.server_saw[i] = tonumber(count.body)
    end
    return out
end

-- The connections three requests not declared idempotent went out on (the
-- kept-alive one, with either transport).
function cases.fresh_connections(env)
    local c = client()
    local seen = {}
    for i = 1, 3 do
        local res, err = c:request{ url = env.url .. "/t/conn" }
        if not res then return observe_error(err) end
        seen[i] = res.body:match("^(%d+)")
    end
    return { connections = seen }
end

-- Misuse reaching a transport directly (no pipeline in front) raises before
-- anything is sent, naming the field.
function cases.transport_misuse(env)
    local transport = http.default_transport{}
    local out = { fields = {} }
    local url = env.url .. "/t/drop?key=" .. env.key
    for i, req in ipairs({
        { url = url .. "\r\nX-Injected: 1" },
        { url = url .. " HTTP/1.1\r\nHost: evil" },
        { url = url .. "\0" },
        { url = url, method = "GET /x HTTP/1.1\r\n" },
        { url = url, method = "get" },
        { url = url, headers = { ["X-A"] = "v\r\nX-Injected: 1" } },
        { url = url, headers = { ["X-A"] = "v\0w" } },
        { url = url, headers = { ["X-A\nB"] = "v" } },
    }) do
        local ok, err = pcall(transport.request, transport, req)
        out.fields[i] = ok and "not raised" or tostring(err):match("bad argument #%d '(%a+)'") or tostring(err)
    end
    transport:close()
    local count = http.new{}:request{ url = env.url .. "/t/count?key=" .. env.key }
    out.server_saw = tonumber(count.body)
    return out
end

-- A server that echoes the request (body and X-Request-Id) with a 502:
-- the error keeps nothing of the credentials, in any form.
function cases.echo_credentials(env)
    local core = require "luapay.core"
    local user, password, token = "merchant-7", "p4ss:w0rd-9c1e", "tok-3b9f1c7d"
    local c = client{ retries = 0 }
    local out = { leaks = {} }
    for _, auth in ipairs({ { basic = { user, password } }, { bearer = token }, { headers = { authorization = "ApiKey " .. token } } }) do
        local req = { method = "POST", url = env.url .. "/t/echo?status=502", body = "refund", basic = auth.basic,
            bearer = auth.bearer, headers = auth.headers }
        local res, err = c:request(req)
        if not res then return observe_error(err) end
        local e = http.status_error(res, "the echo server")
        out.echoed = out.echoed or res.body:find(core.base64_encode(user .. ":" .. password), 1, true) ~= nil
        for _, text in ipairs({ e.message, e.raw, e.request_id or "", tostring(e) }) do
            for _, secret in ipairs({ user .. ":" .. password, core.base64_encode(user .. ":" .. password), password, token }) do
                if text:find(secret, 1, true) then out.leaks[#out.leaks + 1] = secret end
            end
        end
        out.redacted = (out.redacted or 0) + (e.raw:find("[REDACTED]", 1, true) and 1 or 0)
    end
    return out
end

-- Caps set on the client: a body of exactly the cap passes, one byte more
-- is an error of type http; so is a head over its cap. Bad caps raise.
function cases.client_caps(env)
    local c = client{ max_body_bytes = 1000, max_head_bytes = 4096, retries = 0 }
    local out = { got = {}, bad = {} }
    for _, n in ipairs({ 1000, 1001 }) do
        local res, err = c:request{ url = env.url .. "/t/big?bytes=" .. n, idempotent = true }
        out.got[#out.got + 1] = res and #res.body
            or { type = err.type, message = err.message, sent = err.sent, http_status = err.http_status }
    end
    local small = client{ max_head_bytes = 100, retries = 0 }
    local _, err = small:request{ url = env.url .. "/t/status/200", idempotent = true }
    out.got[#out.got + 1] = { type = err.type, message = err.message }
    for _, opts in ipairs({ { max_body_bytes = 0 }, { max_head_bytes = 1.5 }, { max_body_bytes = "1m" } }) do
        local ok, e = pcall(http.default_transport, opts)
        out.bad[#out.bad + 1] = ok and "accepted" or tostring(e):match("max_%a+_bytes")
    end
    return out
end

-- verify = false is for loopback hosts only: to any other host the request
-- is refused before anything is sent, whichever transport. 192.0.2.1 is
-- TEST-NET-1: nothing answers there.
function cases.verify_off_elsewhere(env)
    local out = { refused = {} }
    for i, url in ipairs({ "https://192.0.2.1/", "https://localhost.example/", "http://192.0.2.1:" .. env.url:match(":(%d+)$") .. "/" }) do
        local transport = http.default_transport{ verify = false, connect_timeout_ms = 300, timeout_ms = 300 }
        local res, err = transport:request{ method = "GET", url = url }
        out.refused[i] = res and { status = res.status } or { type = err.type, message = err.message, sent = err.sent }
        transport:close()
    end
    -- and to loopback, with a certificate no one trusts, it works
    local transport = http.default_transport{ verify = false }
    local res, err = transport:request{ method = "GET", url = env.tls_url .. "/t/status/200" }
    out.loopback = res and res.status or err.message
    transport:close()
    return out
end

function cases.idempotent_retried(env)
    local c = client{ retries = 2 }
    local _, err = c:request{ method = "POST", url = env.url .. "/t/drop?key=" .. env.key, body = "pay 10 EUR",
        idempotent = true }
    local count = c:request{ url = env.url .. "/t/count?key=" .. env.key }
    local out = observe_error(err)
    out.server_saw = tonumber(count.body)
    return out
end

function cases.flaky_idempotent(env)
    local res, err = client{ retries = 3 }:request{
        method = "POST", url = env.url .. "/t/flaky?fail=2&key=" .. env.key, body = "x", idempotent = true }
    if not res then return observe_error(err) end
    return { status = res.status, attempts = res.attempts, attempt_seen = res.json.attempt }
end

function cases.tls_self_signed(env, opts)
    local res, err = client(opts):request{ url = env.tls_url .. "/t/status/200", retries = 0 }
    if res then return { status = res.status, body = res.body } end
    return observe_error(err)
end

-- The server's number of the connection a request went on.
local function connection(c, url)
    local res, err = c:request{ url = url, idempotent = true }
    if not res then return nil, err end
    return res.body:match("^(%d+)")
end

local sleep = rawget(_G, "ngx") and ngx.sleep or require("luapay.core").sleep

-- keepalive_ms: a connection that idled longer is not reused.
function cases.keepalive_ms(env)
    local out = {}
    for name, opts in pairs({ short = { keepalive_ms = 1000 }, default = {} }) do
        local c = client(opts)
        local first, err = connection(c, env.url .. "/t/conn")
        if not first then return observe_error(err) end
        sleep(1.3)
        out[name .. "_reused"] = connection(c, env.url .. "/t/conn") == first
        c:close()
    end
    return out
end

-- pool_size: how many idle connections a client keeps. Two connections
-- are made, then used again: how many of them were kept is how many the
-- second round reuses. libcurl keeps them for every host in one cache: one
-- connection to 127.0.0.1 and one to localhost. nginx keeps a pool per
-- host: two requests in flight together.
function cases.pool_size(env)
    local out = {}
    local in_nginx = rawget(_G, "ngx") ~= nil
    for _, size in ipairs({ 1, 2 }) do
        local c = client{ pool_size = size }
        local function round()
            local ids, errs = {}, {}
            if in_nginx then
                local threads = {}
                for i = 1, 2 do threads[i] = ngx.thread.spawn(connection, c, env.url .. "/t/conn?ms=100") end
                for i = 1, 2 do
                    local _
                    _, ids[i], errs[i] = ngx.thread.wait(threads[i])
                end
            else
                for i, url in ipairs({ env.url, (env.url:gsub("127%.0%.0%.1", "localhost")) }) do
                    ids[i], errs[i] = connection(c, url .. "/t/conn")
                end
            end
            return ids, errs[1] or errs[2]
        end
        local before, err = round()
        if err then return observe_error(err) end
        local after
        after, err = round()
        if err then return observe_error(err) end
        local reused = 0
        for _, id in ipairs(after) do
            if id == before[1] or id == before[2] then reused = reused + 1 end
        end
        out["reused_with_" .. size] = reused
        c:close()
    end
    return out
end

-- What building a pipeline with ca_file or proxy does: inside nginx both
-- are refused (nginx verifies against lua_ssl_trusted_certificate, and
-- cosockets do not go through a proxy), also through a provider's new.
function cases.nginx_refusals(env)
    local out = {}
    for _, name in ipairs({ "ca_file", "proxy" }) do
        local _, err = pcall(http.new, { [name] = "/x" })
        out[name] = tostring(err)
        _, err = pcall(require("luapay.ecommpay").new, { project_id = 1, secret = "s", [name] = "/x" })
        out["ecommpay_" .. name] = tostring(err)
        _, err = pcall(require("luapay.http.cosocket").new, { [name] = "/x" })
        out["cosocket_" .. name] = tostring(err)
    end
    -- and the options cosockets do honour build a pipeline
    local res, err = client{ pool_size = 3, keepalive_ms = 500, user_agent = "ua-spec" }:request{
        url = env.url .. "/t/echo" }
    out.user_agent = res and res.json.headers["user-agent"] or err.message
    return out
end

-- The upstream waits until two requests of the key are in; only a worker
-- that is not blocked can serve both.
function cases.barrier(env)
    local res, err = client():request{ url = env.url .. "/t/barrier?n=2&key=" .. env.key }
    if not res then return observe_error(err) end
    return { body = res.body }
end

-- One client, requests in turn that differ in method, URL, headers and
-- body: what the server saw of each (the transport keeps per URL what it can;
-- nothing of one request may reach the next).
function cases.requests_in_turn(env)
    local c = client{ user_agent = "turns/1" }
    local out = {}
    for _, req in ipairs({
        { url = env.url .. "/t/echo" },
        { method = "POST", url = env.url .. "/t/echo?a=1", body = "b1",
            headers = { ["X-Custom"] = "one", accept = "text/plain", ["Content-Type"] = "text/plain" } },
        { url = env.url .. "/t/echo" },
        { method = "PUT", url = env.url .. "/t/echo", body = "p",
            headers = { ["User-Agent"] = "mine", ACCEPT = "text/csv", ["content-type"] = "text/csv" } },
        { url = env.url .. "/t/echo" },
        { method = "DELETE", url = env.url .. "/t/echo?a=1", json = { n = 1 } },
        { url = env.url .. "/t/echo?a=2", headers = { ["X-Custom"] = { "x", "y" } } },
    }) do
        local res, err = c:request(req)
        if not res then return observe_error(err) end
        local h = res.json.headers
        out[#out + 1] = { method = res.json.method, args = res.json.args, body = res.json.body, accept = h.accept,
            user_agent = h["user-agent"], custom = h["x-custom"], content_type = h["content-type"],
            content_length = h["content-length"], host = h.host }
    end
    return out
end

return cases
