--- Test endpoints served by the sandbox (inside nginx) for the transport
-- specs. Mounted at /t/.
local cjson = require "cjson"
local core = require "luapay.core"

local dict = ngx.shared.luapay_sandbox
local H = {}

local function arg(name)
    local v = ngx.var["arg_" .. name]
    return v and ngx.unescape_uri(v)
end

local function json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(value))
end

H["status"] = function(rest)
    local code = tonumber(rest)
    ngx.status = code
    ngx.header["X-Test"] = { "one", "two" }
    ngx.header["Content-Type"] = "text/plain"
    if code ~= 204 and code ~= 304 then ngx.print("status ", code) end
end

H["big"] = function()
    local n = tonumber(arg("bytes"))
    local block = {}
    for i = 0, 255 do block[#block + 1] = string.char((i * 7 + 3) % 256) end
    block = table.concat(block)
    local body = block:rep(math.ceil(n / 256)):sub(1, n)
    ngx.header["Content-Type"] = "application/octet-stream"
    ngx.header["X-Body-SHA256"] = core.digest("sha256", body, "hex")
    ngx.print(body)
end

H["conn"] = function()
    local ms = tonumber(arg("ms")) -- ?ms=: answer that much later (requests in flight together)
    if ms then ngx.sleep(ms / 1000) end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(ngx.var.connection, " ", ngx.var.connection_requests)
end

H["slow"] = function()
    ngx.sleep(tonumber(arg("ms")) / 1000)
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("slow")
end

-- The request as the server saw it; ?status= sets the status, and the
-- Authorization header is echoed in X-Request-Id too (a careless server).
H["echo"] = function()
    ngx.req.read_body()
    ngx.header["X-Request-Id"] = ngx.var.http_authorization
    json(tonumber(arg("status")) or 200, {
        method = ngx.req.get_method(),
        args = ngx.var.args or "",
        headers = ngx.req.get_headers(),
        body = ngx.req.get_body_data() or "",
    })
end

H["chunked"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("part1-")
    ngx.flush(true)
    ngx.print("part2")
end

-- Reads the request, counts it, and closes the connection without answering.
H["drop"] = function()
    ngx.req.read_body()
    dict:incr("count:" .. arg("key"), 1, 0)
    ngx.exit(444)
end

-- 503 for the first `fail` requests of a key, then 200.
H["flaky"] = function()
    local n = dict:incr("count:" .. arg("key"), 1, 0)
    if n <= tonumber(arg("fail")) then
        ngx.status = 503
        ngx.header["Retry-After"] = "0"
        ngx.print("busy")
        return
    end
    json(200, { ok = true, attempt = n })
end

H["count"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(dict:get("count:" .. arg("key")) or 0)
end

---------------------------------------------------------------------------
-- Faults for spec/19-fault_matrix_spec.lua. Each counts the request's
-- arrival under its X-Fault-Id header, then misbehaves; /t/count?key=<id>
-- tells how often a request arrived.
---------------------------------------------------------------------------

local function count_arrival()
    local id = ngx.req.get_headers()["x-fault-id"]
    if id then dict:incr("count:" .. id, 1, 0) end
end

-- The downstream connection as a raw socket, the request body read.
local function raw_socket()
    local sock = assert(ngx.req.socket(true))
    local length = tonumber(ngx.var.http_content_length or 0)
    if length > 0 then assert(sock:receive(length)) end
    return sock
end

-- SO_LINGER {on, 0}: closing the connection then sends RST, not FIN. The
-- Lua module has no such option, so find this connection's descriptor by
-- its two ports.
local function linger_zero()
    local ffi = require "ffi"
    pcall(ffi.cdef, [[
        struct luapay_linger { int l_onoff; int l_linger; };
        int setsockopt(int fd, int level, int name, const void *value, unsigned int len);
        int getsockname(int fd, void *addr, unsigned int *len);
        int getpeername(int fd, void *addr, unsigned int *len);
    ]])
    local addr, len = ffi.new("uint8_t[128]"), ffi.new("unsigned int[1]")
    local function port(f, fd) -- sockaddr_in: family (2 bytes), port (network order)
        len[0] = 128
        if f(fd, addr, len) ~= 0 or addr[0] ~= 2 then return nil end
        return addr[2] * 256 + addr[3]
    end
    local remote, here = tonumber(ngx.var.remote_port), tonumber(ngx.var.server_port)
    for fd = 3, 1023 do
        if port(ffi.C.getpeername, fd) == remote and port(ffi.C.getsockname, fd) == here then
            local l = ffi.new("struct luapay_linger", 1, 0)
            return ffi.C.setsockopt(fd, 1 --[[SOL_SOCKET]], 13 --[[SO_LINGER]], l, ffi.sizeof(l)) == 0
        end
    end
end

local BLOCK = ("0123456789abcdef"):rep(4096) -- 64 KiB

-- Streams up to `limit` bytes in 64 KiB blocks, each flushed (so nothing
-- piles up here), until done or the client has gone.
local function stream(limit)
    local sent = 0
    while sent < limit do
        ngx.print(BLOCK)
        if not ngx.flush(true) then return end
        sent = sent + #BLOCK
    end
end

local FAULTS = {
    -- reads the request, then closes without a word
    drop = function()
        ngx.req.read_body()
        ngx.exit(444)
    end,
    -- reads the request, then resets the connection
    reset = function()
        ngx.req.read_body()
        assert(linger_zero(), "no descriptor for this connection")
        ngx.exit(444)
    end,
    -- never answers (the client's deadline is far shorter)
    hang = function()
        ngx.sleep(5)
        ngx.exit(444)
    end,
    -- a complete, valid answer, one byte every 100 ms (about 10 s)
    trickle = function()
        local sock = raw_socket()
        local text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 32\r\n\r\n" .. ("t"):rep(32)
        for i = 1, #text do
            if not sock:send(text:sub(i, i)) then return ngx.exit(444) end
            ngx.sleep(0.1)
        end
    end,
    -- 4 MiB of header lines before the blank line
    huge_head = function()
        local sock = raw_socket()
        if not sock:send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n") then return ngx.exit(444) end
        local line = "X-Filler: " .. ("h"):rep(1000) .. "\r\n"
        local batch = line:rep(64)
        for _ = 1, 64 do
            if not sock:send(batch) then return ngx.exit(444) end
        end
        sock:send("Content-Length: 2\r\n\r\nok")
    end,
    -- a Content-Length of 32 MiB, and the bytes
    huge_body = function()
        ngx.header["Content-Type"] = "application/octet-stream"
        ngx.header["Content-Length"] = 32 * 1024 * 1024
        stream(32 * 1024 * 1024)
    end,
    -- chunked, with no end in sight (stops after 256 MiB or when the client goes)
    endless_body = function()
        ngx.header["Content-Type"] = "application/octet-stream"
        stream(256 * 1024 * 1024)
    end,
    busy = function()
        ngx.status = 503
        ngx.header["Content-Type"] = "text/plain"
        ngx.print("busy")
    end,
    busy_retry_after = function()
        ngx.status = 503
        ngx.header["Retry-After"] = "1"
        ngx.header["Content-Type"] = "text/plain"
        ngx.print("busy, come back in a second")
    end,
    bad_json = function()
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"status": "ok", oops')
    end,
}

H["fault"] = function(rest)
    local fault = assert(FAULTS[rest], "no such fault")
    count_arrival()
    return fault()
end

-- Runs a fault scenario of spec/support/transport_faults.lua through the
-- cosocket transport and answers with what it observed.
H["matrix"] = function(_, config)
    local env = { url = "http://127.0.0.1:" .. config.ports.http, key = arg("key") }
    json(200, require("support.transport_faults").run(env, arg("fault"), arg("variant")))
end

H["result"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(dict:get("result:" .. arg("key")) or "")
end

-- Waits (without blocking the worker) until `n` requests of a key are here.
H["barrier"] = function()
    local key = "barrier:" .. arg("key")
    local n = dict:incr(key, 1, 0)
    local need = tonumber(arg("n"))
    for _ = 1, 300 do
        if n >= need then break end
        ngx.sleep(0.01)
        n = dict:get(key)
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(n >= need and "together" or "alone")
end

-- Runs a case of spec/support/transport_cases.lua through the cosocket
-- transport and answers with what it observed.
H["run"] = function(_, config)
    local cases = require "support.transport_cases"
    local env = {
        url = "http://127.0.0.1:" .. config.ports.http,
        tls_url = arg("tls_url") or (config.ports.https and ("https://127.0.0.1:" .. config.ports.https)),
        key = arg("key"),
    }
    local observed = cases[arg("case")](env)
    json(200, observed)
end

-- In the log phase there are no cosockets: try a request there and keep
-- the error for /t/result to report.
H["phase"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("logged later")
end

local log_hooks = {
    phase = function()
        local http = require "luapay.http"
        local transport = require("luapay.http.cosocket").new()
        local res, err = transport:request{ method = "GET", url = "http://127.0.0.1:1/" }
        dict:set("result:" .. arg("key"), res and "a response" or (err.type .. ": " .. err.message))
        assert(http.in_nginx())
    end,
}

function H.handle(path)
    local name, rest = path:match("^([^/]+)/?(.*)$")
    local f = H[name]
    if not f then return ngx.exit(404) end
    return f(rest, require("luapay.sandbox.router").config)
end

function H.log(path)
    local hook = log_hooks[path:match("^([^/]+)")]
    if hook then hook() end
end

return H
