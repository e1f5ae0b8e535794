--- luapay.http.cosocket: the transport used inside nginx. HTTP/1.1 over
-- ngx.socket.tcp, so a request yields to nginx's event loop instead of
-- blocking the worker. Same contract as the core's libcurl client:
--   request{method, url, headers, body, timeout_ms, connect_timeout_ms,
--           idempotent, max_head_bytes, max_body_bytes}
--     -> {status, headers, body} | nil, {type, message, sent [, http_status]}
--
-- Deadline: timeout_ms bounds connect, TLS handshake, send and every read
-- together. Each socket operation gets only what is left of it, and reads
-- take whatever has arrived (receiveany), so a server that trickles its
-- answer a byte at a time cannot stretch it (nginx restarts a read timer
-- whenever some bytes arrive). connect_timeout_ms bounds connect and
-- handshake. One limit remains: a single send restarts its timer whenever
-- the peer takes some bytes; a request that fits the socket's send buffer
-- (payment API requests do) is written at once. Name resolution is
-- nginx's `resolver`, bounded by its `resolver_timeout` (default 30 s), not
-- by timeout_ms: set resolver_timeout below your deadlines.
--
-- Caps: a head (interim 1xx heads included) beyond max_head_bytes (64 KiB)
-- or a body beyond max_body_bytes (16 MiB; a Content-Length above it is
-- refused before reading) ends the exchange with an error of type "http",
-- sent = true; the connection is closed, nothing beyond the cap is read.
--
-- Resending: this transport never resends, so every request shares the
-- kept-alive pool, declared idempotent or not. nginx drops a pooled
-- connection the server closes while it idles; one the server closes just
-- as a request goes out on it fails that request as sent (outcome unknown,
-- sent = true), never a second copy: the pipeline resends only what is
-- declared idempotent. libcurl behaves the same (its own resend is stopped).
--
-- TLS: verification is on unless verify = false, which is refused (a config
-- error, nothing sent) for any host but a loopback one (127.0.0.0/8, ::1,
-- localhost). nginx verifies against `lua_ssl_trusted_certificate`, and its
-- `lua_ssl_protocols` sets the TLS versions: set it to `TLSv1.2 TLSv1.3`
-- (the Lua module's default still allows TLSv1 and TLSv1.1).
--
-- Misuse (CR, LF or NUL in the method, URL or a header; a method that is
-- not upper case) raises before anything is sent: core.check_request, the
-- libcurl client's own check.
local core = require "luapay.core"

local cosocket = {}

local Transport = {}
Transport.__index = Transport

local DEFAULT_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS = 30000, 10000
local DEFAULT_MAX_HEAD, DEFAULT_MAX_BODY = 64 * 1024, 16 * 1024 * 1024
local KEEPALIVE_IDLE_MS, KEEPALIVE_POOL_SIZE = 60000, 32
local READ_SIZE = 65536 -- most a read asks for; nginx gives at most lua_socket_buffer_size
local LINE_MAX = 4096   -- a chunk-size line

local floor, min, max, concat = math.floor, math.min, math.max, table.concat
local check_request, is_loopback_host = core.check_request, core.is_loopback_host
local parse_head, parse_chunked, http_header_lines = core.http_head, core.http_chunked, core.http_header_lines

-- Phases in which the Lua module provides cosockets.
local COSOCKET_PHASES = {
    rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

local function check_cap(v, name, def)
    if v == nil then return def end
    if type(v) ~= "number" or v < 1 or v > 2 ^ 32 or v ~= floor(v) then
        error(("luapay.http.cosocket: %s must be a whole number of bytes from 1 to 4294967296"):format(name), 3)
    end
    return v
end

-- The options a cosocket cannot honour, and what to do instead.
local UNSUPPORTED = {
    { "ca_file", "cannot be honoured inside nginx: cosockets verify against nginx's lua_ssl_trusted_certificate"
        .. " (set it in the http block to your CA file, e.g. /etc/ssl/certs/ca-certificates.crt plus your private CA)" },
    { "proxy", "cannot be honoured inside nginx: cosockets connect directly and luapay does not tunnel through"
        .. " a proxy; allow the provider's host in the firewall, or call luapay outside nginx (libcurl)" },
}

--- cosocket.unsupported(opts) -> name, what to do instead | nil: the first
-- option in opts this transport cannot honour (ca_file, proxy).
function cosocket.unsupported(opts)
    for _, u in ipairs(UNSUPPORTED) do
        if opts[u[1]] ~= nil then return u[1], u[2] end
    end
    return nil
end

local function check_whole(v, name, def, hi)
    if v == nil then return def end
    if type(v) ~= "number" or v < 1 or v > hi or v ~= floor(v) then
        error(("luapay.http.cosocket.new: option '%s' must be a whole number from 1 to %d"):format(name, hi), 3)
    end
    return v
end

--- cosocket.new(opts) -> transport. opts: timeout_ms, connect_timeout_ms,
-- verify, user_agent, pool_size (kept-alive connections per host, 32),
-- keepalive_ms (how long one may idle in the pool, 60000),
-- max_head_bytes, max_body_bytes. ca_file and proxy raise (see
-- cosocket.unsupported): nginx configures them, or cannot.
function cosocket.new(opts)
    opts = opts or {}
    local name, instead = cosocket.unsupported(opts)
    if name then error(("luapay.http.cosocket.new: option '%s' %s"):format(name, instead), 2) end
    return setmetatable({
        timeout_ms = opts.timeout_ms or DEFAULT_TIMEOUT_MS,
        connect_timeout_ms = opts.connect_timeout_ms or DEFAULT_CONNECT_TIMEOUT_MS,
        verify = opts.verify ~= false,
        user_agent = opts.user_agent,
        pool_size = check_whole(opts.pool_size, "pool_size", KEEPALIVE_POOL_SIZE, 10000),
        keepalive_ms = check_whole(opts.keepalive_ms, "keepalive_ms", KEEPALIVE_IDLE_MS, 86400000),
        max_head_bytes = check_cap(opts.max_head_bytes, "max_head_bytes", DEFAULT_MAX_HEAD),
        max_body_bytes = check_cap(opts.max_body_bytes, "max_body_bytes", DEFAULT_MAX_BODY),
        urls = {}, url_count = 0, -- parsed URLs (target)
    }, Transport)
end

local function fail(kind, message, sent)
    return nil, { type = kind, message = message, sent = sent }
end

--- Splits an http(s) URL into its parts; nil, err for anything else.
function cosocket.parse_url(url)
    local scheme, rest = url:match("^(https?)://(.+)$")
    if not scheme then return nil, "invalid URL (only http and https are supported)" end
    local authority, path = rest:match("^([^/?#]*)(.*)$")
    path = path:gsub("#.*$", "")
    if path == "" or path:sub(1, 1) == "?" then path = "/" .. path end
    if authority:find("@", 1, true) then return nil, "invalid URL (credentials in the URL are not supported)" end
    local host, port = authority:match("^%[([%x:%.]+)%]:?(%d*)$") -- [IPv6]:port
    if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
    if not host or host == "" then return nil, "invalid URL (no host)" end
    port = tonumber(port) or (scheme == "https" and 443 or 80)
    if port < 1 or port > 65535 then return nil, "invalid URL (port out of range)" end
    return { scheme = scheme, host = host, port = port, path = path, tls = scheme == "https",
             authority = authority }
end

local function single(v)
    if type(v) == "table" then return v[#v] end
    return v
end

---------------------------------------------------------------------------
-- Reading within the deadline. The bytes read past what a step needs stay
-- in a string `buf` from position `pos`; a step returns the new buf, pos.
-- @section reading_within_the_deadline
---------------------------------------------------------------------------

-- Read errors for an exceeded cap (trailers of a chunked body count as head).
local HEAD_TOO_LARGE, BODY_TOO_LARGE = {}, {}

-- The monotonic clock (as luapay.http's deadline): it never jumps, and
-- unlike ngx.update_time it leaves LuaJIT's traces whole.
local monotime = require("luapay.monotime").now

local function ms_left(deadline)
    return floor((deadline - monotime()) * 1000)
end

-- Whatever has arrived, at most `size` bytes, waiting no longer than the
-- deadline allows.
local function receive_some(sock, deadline, size)
    local ms = ms_left(deadline)
    if ms < 1 then return nil, "timeout" end
    sock:settimeout(ms)
    return sock:receiveany(size)
end

-- Reads up to the blank line ending a head of at most `cap` bytes. Returns
-- head, buf, pos (the bytes after it) or nil, err.
local function read_head(sock, deadline, cap, buf, pos)
    local data, err
    if pos > #buf then -- nothing read yet: most heads come whole in the first read
        data, err = receive_some(sock, deadline, READ_SIZE)
        if not data then return nil, err end
        local e = data:find("\r\n\r\n", 1, true)
        if e and e + 3 <= cap then return data:sub(1, e + 3), data, e + 4 end
    else
        data = buf:sub(pos)
    end
    local parts, n, seen, tail = {}, 0, 0, ""
    while true do
        if data ~= "" then
            local joined = tail .. data -- the blank line may straddle two reads
            local e = joined:find("\r\n\r\n", 1, true)
            if e then
                local last = e + 3 - #tail -- the head's last byte within data
                if seen + last > cap then return nil, HEAD_TOO_LARGE end
                n = n + 1
                parts[n] = data:sub(1, last)
                return concat(parts, "", 1, n), data, last + 1
            end
            seen = seen + #data
            if seen > cap then return nil, HEAD_TOO_LARGE end
            n = n + 1
            parts[n] = data
            tail = joined:sub(-3)
        end
        data, err = receive_some(sock, deadline, READ_SIZE)
        if not data then return nil, err end
    end
end

-- Appends the next k bytes to parts; returns buf, pos, n or nil, err. Never
-- reads past them, so nothing of a next response is consumed.
local function take(sock, deadline, buf, pos, k, parts, n)
    local avail = #buf - pos + 1
    if avail >= k then
        n = n + 1
        parts[n] = buf:sub(pos, pos + k - 1)
        return buf, pos + k, n
    end
    if avail > 0 then
        n = n + 1
        parts[n] = buf:sub(pos)
        k = k - avail
    end
    while k > 0 do
        local data, err = receive_some(sock, deadline, min(k, READ_SIZE))
        if not data then return nil, err end
        n = n + 1
        parts[n] = data
        k = k - #data
    end
    return "", 1, n
end

-- read_line when buf holds no whole line yet: reads until it does.
local function read_line_more(sock, deadline, buf, pos, limit)
    while true do
        local e = buf:find("\r\n", pos, true)
        if e then return buf:sub(pos, e - 1), buf, e + 2 end
        if #buf - pos + 1 > limit then return nil, "malformed chunked body (line too long)" end
        local data, err = receive_some(sock, deadline, READ_SIZE)
        if not data then return nil, err end
        buf, pos = buf:sub(pos) .. data, 1
    end
end

-- The next line (without CRLF), at most `limit` bytes: line, buf, pos. A
-- line already read is taken without a loop: an inner loop would abort the
-- LuaJIT trace of the caller's loop.
local function read_line(sock, deadline, buf, pos, limit)
    local e = buf:find("\r\n", pos, true)
    if e then return buf:sub(pos, e - 1), buf, e + 2 end
    return read_line_more(sock, deadline, buf, pos, limit)
end

-- A chunked body of at most `cap` bytes: body, buf, pos or nil, err.
local function read_chunked(sock, deadline, cap, trailer_cap, buf, pos)
    -- a body read whole already (a small answer comes with its head) in one
    -- C pass: no loop here for a LuaJIT trace to stop at
    local body, after = parse_chunked(buf, pos, cap, trailer_cap)
    if body then return body, buf, after end
    local parts, n, total = {}, 0, 0
    local line
    while true do
        line, buf, pos = read_line(sock, deadline, buf, pos, LINE_MAX)
        if not line then return nil, buf end
        local size = tonumber(line:match("^%s*(%x+)%s*;?") or "", 16)
        if not size then return nil, "malformed chunked body (bad chunk size line)" end
        if size == 0 then break end
        total = total + size
        if total > cap then return nil, BODY_TOO_LARGE end
        buf, pos, n = take(sock, deadline, buf, pos, size, parts, n)
        if not buf then return nil, pos end
        line, buf, pos = read_line(sock, deadline, buf, pos, 2)
        if line ~= "" then return nil, line and "malformed chunked body (bad chunk end)" or buf end
    end
    repeat -- trailer lines until the blank line
        line, buf, pos = read_line(sock, deadline, buf, pos, trailer_cap)
        if not line then return nil, buf end
        trailer_cap = trailer_cap - #line - 2
        if trailer_cap < 0 then return nil, HEAD_TOO_LARGE end
    until line == ""
    return concat(parts, "", 1, n), buf, pos
end

-- A body that ends when the server closes: body or nil, err.
local function read_to_close(sock, deadline, cap, buf, pos)
    local parts, n, have = { buf:sub(pos) }, 1, #buf - pos + 1
    if have > cap then return nil, BODY_TOO_LARGE end
    while true do
        local data, err = receive_some(sock, deadline, READ_SIZE)
        if not data then
            if err == "closed" then return concat(parts, "", 1, n) end
            return nil, err
        end
        have = have + #data
        if have > cap then return nil, BODY_TOO_LARGE end
        n = n + 1
        parts[n] = data
    end
end

-- Reads the body as the response frames it: body, reusable or nil, err.
local function read_body(sock, deadline, headers, status, method, cap, trailer_cap, buf, pos)
    if method == "HEAD" or status == 204 or status == 304 then
        return "", pos > #buf
    end
    local te = single(headers["transfer-encoding"])
    if te and te:lower():find("chunked", 1, true) then
        local body, rest, rpos = read_chunked(sock, deadline, cap, trailer_cap, buf, pos)
        if not body then return nil, rest end
        return body, rpos > #rest
    end
    local length = headers["content-length"]
    if length ~= nil then
        length = tonumber(single(length))
        if not length or length < 0 or length ~= floor(length) then return nil, "malformed Content-Length" end
        if length > cap then return nil, BODY_TOO_LARGE end
        if #buf - pos + 1 >= length then -- read already
            return buf:sub(pos, pos + length - 1), pos + length > #buf
        end
        local parts = {}
        local rest, rpos, n = take(sock, deadline, buf, pos, length, parts, 0)
        if not rest then return nil, rpos end
        return concat(parts, "", 1, n), rpos > #rest
    end
    local body, err = read_to_close(sock, deadline, cap, buf, pos)
    if not body then return nil, err end
    return body, false
end

local function timeout_or_network(err, what, timeout_ms, sent)
    if err == "timeout" then
        return fail("timeout", ("%s timeout: no complete response within %d ms"):format(what, timeout_ms), sent)
    end
    return fail("network", ("%s failed: %s"):format(what == "read" and "receiving the response" or what, err), sent)
end

local function too_large(what, cap, status)
    local _, e = fail("http", ("the response %s is larger than max_%s_bytes (%d bytes)"):format(what, what, cap), true)
    e.http_status = status
    return nil, e
end

---------------------------------------------------------------------------
-- One exchange
-- @section one_exchange
---------------------------------------------------------------------------

-- Connects (a kept-alive connection from the pool when there is one) and
-- does the TLS handshake on a new connection: sock or nil, err.
local function connect(self, u, connect_ms, deadline)
    local sock = ngx.socket.tcp()
    local connect_deadline = min(deadline, monotime() + connect_ms / 1000)
    local ms = max(1, ms_left(connect_deadline))
    sock:settimeouts(ms, ms, ms)
    local ok, err = sock:connect(u.host, u.port, u.pooled)
    if not ok then
        if err == "timeout" then
            return fail("timeout", ("connect timeout: no connection to %s:%d within %d ms"):format(u.host, u.port, connect_ms), false)
        end
        if err and err:find("no resolver defined", 1, true) then
            return fail("config", "nginx cannot resolve " .. u.host .. ": add a `resolver` directive to the http block", false)
        end
        return fail("network", ("connection to %s:%d failed: %s"):format(u.host, u.port, tostring(err)), false)
    end
    if u.tls and (sock:getreusedtimes() or 0) == 0 then
        ms = ms_left(connect_deadline)
        if ms < 1 then
            sock:close()
            return fail("timeout", "connect timeout: no time left for the TLS handshake with " .. u.host, false)
        end
        sock:settimeouts(ms, ms, ms)
        -- lua-resty-core 0.1.25 raises an assertion, instead of returning the
        -- error, when a handshake that completed at once failed verification
        -- (nginx has closed the socket by then); that is all it can mean.
        local hok, session, herr = pcall(sock.sslhandshake, sock, nil, u.host, self.verify)
        if not hok then session, herr = nil, "certificate verification failed" end
        if not session then
            sock:close()
            if herr == "timeout" then return fail("timeout", "connect timeout: TLS handshake with " .. u.host .. " timed out", false) end
            local hint = ""
            if self.verify and herr
                and (herr:find("verif", 1, true) or herr:find("certificate", 1, true) or herr:find("issuer", 1, true)) then
                hint = "; nginx checks certificates against lua_ssl_trusted_certificate: set it in the http block"
                    .. " (e.g. lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;) or to your private CA's file"
            end
            return fail("tls", ("TLS handshake with %s failed: %s%s"):format(u.host, tostring(herr), hint), false)
        end
    end
    return sock
end

-- The request head as one string (nginx copies a table of pieces one by
-- one through the Lua API): request line, Host and Connection (kept per
-- URL), the headers but those three (core.http_header_lines: a Lua loop
-- over them here would abort the request's LuaJIT trace), the client's
-- User-Agent unless one was given, Content-Length.
local function request_head(self, u, req)
    local method = req.method or "GET"
    local header_lines, has_ua = http_header_lines(req.headers)
    local lines, n = { method, u.after_method, header_lines }, 3
    if not has_ua and self.user_agent then
        lines[n + 1], lines[n + 2], lines[n + 3] = "User-Agent: ", self.user_agent, "\r\n"
        n = n + 3
    end
    local body = req.body
    if body or method == "POST" or method == "PUT" or method == "PATCH" then
        lines[n + 1], lines[n + 2], lines[n + 3] = "Content-Length: ", #(body or ""), "\r\n"
        n = n + 3
    end
    lines[n + 1] = "\r\n"
    return concat(lines, "", 1, n + 1)
end

-- One exchange on one connection. A connection that closes after the
-- request went out is an error, never a silent resend (the server may have
-- acted on it).
local function exchange(self, u, req, timeout_ms, connect_ms, deadline)
    local sock, cerr = connect(self, u, connect_ms, deadline)
    if not sock then return nil, cerr end

    local ms = ms_left(deadline)
    if ms < 1 then
        sock:close()
        return fail("timeout", ("connect timeout: no time left to send within %d ms"):format(timeout_ms), false)
    end
    sock:settimeout(ms)
    local bytes = request_head(self, u, req)
    if req.body and req.body ~= "" then bytes = { bytes, req.body } end -- the body not copied
    local sent_bytes, serr = sock:send(bytes)
    if not sent_bytes then
        sock:close()
        return timeout_or_network(serr, "send", timeout_ms, true)
    end

    local head_cap, body_cap = req.max_head_bytes or self.max_head_bytes, req.max_body_bytes or self.max_body_bytes
    local buf, pos = "", 1
    repeat -- skip interim 1xx answers such as 100 Continue
        local head
        head, buf, pos = read_head(sock, deadline, head_cap, buf, pos)
        if not head then
            sock:close()
            if buf == HEAD_TOO_LARGE then return too_large("head", req.max_head_bytes or self.max_head_bytes) end
            return timeout_or_network(buf, "read", timeout_ms, true)
        end
        head_cap = head_cap - #head
        -- the status line (three digits, then a space or the end: "HTTP/1.1
        -- 5001.1" is no 500) and the header lines whose name is a token
        local status, headers, http10 = parse_head(head)
        if not status then
            sock:close()
            return fail("network", "malformed status line from " .. u.host, true)
        end
        if status >= 200 or status == 101 then
            local body, reusable = read_body(sock, deadline, headers, status, req.method, body_cap, head_cap, buf, pos)
            if not body then
                sock:close()
                if reusable == HEAD_TOO_LARGE then return too_large("head", req.max_head_bytes or self.max_head_bytes, status) end
                if reusable == BODY_TOO_LARGE then return too_large("body", body_cap, status) end
                return timeout_or_network(reusable, "read", timeout_ms, true)
            end
            local conn = single(headers["connection"])
            if reusable and not (conn and conn:lower() == "close") and not http10 then
                sock:setkeepalive(self.keepalive_ms, self.pool_size)
            else
                sock:close()
            end
            return { status = status, headers = headers, body = body }
        end
    until false
end

-- The parsed URL with its connect options, kept per transport (a client
-- calls the same few URLs): not parsed and formatted again on every call.
local URL_CACHE_MAX = 64

local function target(self, url)
    local u = self.urls[url]
    if u then return u end
    local err
    u, err = cosocket.parse_url(url)
    if not u then return nil, err end
    -- nginx sizes a pool when it is first made, per worker: the size is in
    -- the name, so a client with its own pool_size gets a pool of that size
    local pool = ("%s:%d:%s:%s:%d"):format(u.host, u.port, u.tls and "tls" or "tcp",
        self.verify and "verify" or "noverify", self.pool_size)
    u.pooled = { pool = pool, pool_size = self.pool_size }
    u.after_method = " " .. u.path .. " HTTP/1.1\r\nHost: " .. u.authority .. "\r\nConnection: keep-alive\r\n"
    if self.url_count >= URL_CACHE_MAX then self.urls, self.url_count = {}, 0 end
    self.urls[url], self.url_count = u, self.url_count + 1
    return u
end

function Transport:request(req)
    check_request(req, "luapay.http.cosocket: request")
    return self:request_checked(req)
end

--- transport:request_checked(req): transport:request for a request that
-- core.check_request has accepted (luapay.http's pipeline checks each
-- request before it reaches the transport it built): not checked again.
function Transport:request_checked(req)
    local phase = ngx.get_phase()
    if not COSOCKET_PHASES[phase] then
        return fail("config", ("nginx's '%s' phase has no cosockets, and luapay never blocks a worker:"
            .. " call the provider from rewrite, access or content, or from a timer (ngx.timer.at)"):format(phase), false)
    end
    local u, uerr = target(self, req.url)
    if not u then return fail("config", uerr, false) end
    if not self.verify and not is_loopback_host(u.host) then
        return fail("config", "verify = false is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost):"
            .. " nothing was sent; keep verification on (lua_ssl_trusted_certificate for a private CA)", false)
    end
    local timeout_ms = req.timeout_ms or self.timeout_ms
    local connect_ms = min(req.connect_timeout_ms or self.connect_timeout_ms, timeout_ms)
    return exchange(self, u, req, timeout_ms, connect_ms, monotime() + timeout_ms / 1000)
end

function Transport.close() end

return cosocket
