--- luapay.http.cosocket: the transport used inside nginx. HTTP/1.1 over
-- ngx.socket.tcp, so a request yields to nginx's event loop instead of
-- blocking the worker. Same contract as the core's libcurl client:
--   request{method, url, headers, body, timeout_ms, connect_timeout_ms}
--     -> {status, headers, body} | nil, {type, message, sent}
-- Connections are kept alive in a pool per host, port, TLS, server name and
-- verification (setkeepalive). TLS verification is on unless verify = false;
-- nginx verifies against `lua_ssl_trusted_certificate`.
local cosocket = {}

local Transport = {}
Transport.__index = Transport

local DEFAULT_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS = 30000, 10000
local KEEPALIVE_IDLE_MS, KEEPALIVE_POOL_SIZE = 60000, 32

-- Phases in which the Lua module provides cosockets.
local COSOCKET_PHASES = {
    rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

function cosocket.new(opts)
    opts = opts or {}
    return setmetatable({
        timeout_ms = opts.timeout_ms or DEFAULT_TIMEOUT_MS,
        connect_timeout_ms = opts.connect_timeout_ms or DEFAULT_CONNECT_TIMEOUT_MS,
        verify = opts.verify ~= false,
        user_agent = opts.user_agent,
        pool_size = opts.pool_size or KEEPALIVE_POOL_SIZE,
        keepalive_ms = opts.keepalive_ms or KEEPALIVE_IDLE_MS,
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

-- Parses the header lines of a response head (the text before the blank
-- line, status line first): lower-cased names, repeated ones as lists.
local function parse_headers(head)
    local headers = {}
    for line in head:gmatch("\r\n([^\r\n]*)") do
        local name, value = line:match("^([^:]+):[ \t]*(.-)[ \t]*$")
        if name then
            name = name:lower()
            local old = headers[name]
            if old == nil then
                headers[name] = value
            elseif type(old) == "table" then
                old[#old + 1] = value
            else
                headers[name] = { old, value }
            end
        end
    end
    return headers
end

local function single(v)
    if type(v) == "table" then return v[#v] end
    return v
end

-- Reads the body as the response frames it; returns body, reusable.
local function read_body(sock, headers, status, method, deadline)
    if method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
        return "", true
    end
    local function remaining()
        ngx.update_time()
        return math.max(1, math.floor((deadline - ngx.now()) * 1000))
    end
    local te = single(headers["transfer-encoding"])
    if te and te:lower():find("chunked", 1, true) then
        local parts = {}
        while true do
            sock:settimeout(remaining())
            local line, err = sock:receive("*l")
            if not line then return nil, err end
            local size = tonumber(line:match("^%s*(%x+)"), 16)
            if not size then return nil, "bad chunk size line" end
            if size == 0 then
                repeat -- trailers until the blank line
                    line, err = sock:receive("*l")
                    if not line then return nil, err end
                until line == ""
                return table.concat(parts), true
            end
            sock:settimeout(remaining())
            local chunk, cerr = sock:receive(size)
            if not chunk then return nil, cerr end
            parts[#parts + 1] = chunk
            local crlf, lerr = sock:receive("*l")
            if crlf ~= "" then return nil, lerr or "bad chunk terminator" end
        end
    end
    local length = tonumber(single(headers["content-length"]))
    if length then
        if length == 0 then return "", true end
        sock:settimeout(remaining())
        local body, err = sock:receive(length)
        if not body then return nil, err end
        return body, true
    end
    sock:settimeout(remaining()) -- no framing: the body ends when the server closes
    local body, err = sock:receive("*a")
    if not body then return nil, err end
    return body, false
end

local function timeout_or_network(err, what, timeout_ms, sent)
    if err == "timeout" then
        return fail("timeout", ("%s timeout: no complete response within %d ms"):format(what, timeout_ms), sent)
    end
    return fail("network", ("%s failed: %s"):format(what == "read" and "receiving the response" or what, err), sent)
end

-- One exchange on one connection. A pooled connection that the server closes
-- while idle is dropped from the pool by nginx itself; one that closes after
-- the request went out is an error, never a silent resend (the server may
-- have acted on it).
local function exchange(self, u, req, timeout_ms, connect_ms, deadline)
    local sock = ngx.socket.tcp()
    sock:settimeouts(connect_ms, timeout_ms, timeout_ms)
    local pool = ("%s:%d:%s:%s:%s"):format(u.host, u.port, u.tls and "tls" or "tcp", u.host,
        self.verify and "verify" or "noverify")
    local ok, err = sock:connect(u.host, u.port, { pool = pool, pool_size = self.pool_size })
    if not ok then
        if err == "timeout" then return fail("timeout", ("connect timeout: no connection to %s:%d within %d ms"):format(u.host, u.port, connect_ms), false) end
        if err and err:find("no resolver defined", 1, true) then
            return fail("config", "nginx cannot resolve " .. u.host .. ": add a `resolver` directive to the http block", false)
        end
        return fail("network", ("connection to %s:%d failed: %s"):format(u.host, u.port, tostring(err)), false)
    end
    if u.tls and (sock:getreusedtimes() or 0) == 0 then
        -- lua-resty-core 0.1.25 raises an assertion, instead of returning the
        -- error, when a handshake that completed at once failed verification
        -- (nginx has closed the socket by then); that is all it can mean.
        local ok, session, herr = pcall(sock.sslhandshake, sock, nil, u.host, self.verify)
        if not ok then session, herr = nil, "certificate verification failed" end
        if not session then
            sock:close()
            if herr == "timeout" then return fail("timeout", "connect timeout: TLS handshake with " .. u.host .. " timed out", false) end
            local hint = ""
            if self.verify and herr and (herr:find("verif", 1, true) or herr:find("certificate", 1, true) or herr:find("issuer", 1, true)) then
                hint = "; nginx checks certificates against lua_ssl_trusted_certificate: set it in the http block"
                    .. " (e.g. lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;) or to your private CA's file"
            end
            return fail("tls", ("TLS handshake with %s failed: %s%s"):format(u.host, tostring(herr), hint), false)
        end
    end

    local lines = {
        req.method, " ", u.path, " HTTP/1.1\r\n",
        "Host: ", u.authority, "\r\n",
        "Connection: keep-alive\r\n",
    }
    local has_ua = false
    for name, value in pairs(req.headers or {}) do
        local values = type(value) == "table" and value or { value }
        if name:lower() == "user-agent" then has_ua = true end
        if name:lower() ~= "host" and name:lower() ~= "content-length" and name:lower() ~= "connection" then
            for _, v in ipairs(values) do
                if tostring(name):find("[:\r\n]") or tostring(v):find("[\r\n]") then
                    sock:close()
                    return fail("config", "header names and values must not contain CR or LF", false)
                end
                lines[#lines + 1] = name .. ": " .. v .. "\r\n"
            end
        end
    end
    if not has_ua and self.user_agent then lines[#lines + 1] = "User-Agent: " .. self.user_agent .. "\r\n" end
    if req.body or req.method == "POST" or req.method == "PUT" or req.method == "PATCH" then
        lines[#lines + 1] = "Content-Length: " .. #(req.body or "") .. "\r\n"
    end
    lines[#lines + 1] = "\r\n"
    lines[#lines + 1] = req.body or ""

    local sent_bytes, serr = sock:send(lines)
    if not sent_bytes then
        sock:close()
        return timeout_or_network(serr, "send", timeout_ms, true)
    end

    -- One read for the whole head: far fewer calls into nginx than a
    -- receive per header line.
    local read_head = sock:receiveuntil("\r\n\r\n")
    repeat -- skip interim 1xx answers such as 100 Continue
        local head, rerr = read_head()
        if not head then
            sock:close()
            return timeout_or_network(rerr, "read", timeout_ms, true)
        end
        local status_line = head:match("^[^\r\n]*")
        local status = tonumber(status_line:match("^HTTP/%d%.%d (%d%d%d)"))
        if not status then
            sock:close()
            return fail("network", "malformed status line from " .. u.host, true)
        end
        if status >= 200 or status == 101 then
            local headers = parse_headers(head)
            local body, reusable = read_body(sock, headers, status, req.method, deadline)
            if not body then
                sock:close()
                return timeout_or_network(reusable, "read", timeout_ms, true)
            end
            local conn = single(headers["connection"])
            local http10 = status_line:match("^HTTP/1%.0") ~= nil
            if reusable and not (conn and conn:lower() == "close") and not http10 then
                sock:setkeepalive(self.keepalive_ms, self.pool_size)
            else
                sock:close()
            end
            return { status = status, headers = headers, body = body }
        end
    until false
end

function Transport:request(req)
    local phase = ngx.get_phase()
    if not COSOCKET_PHASES[phase] then
        return fail("config", ("nginx's '%s' phase has no cosockets, and luapay never blocks a worker:"
            .. " call the provider from rewrite, access or content, or from a timer (ngx.timer.at)"):format(phase), false)
    end
    local u, uerr = cosocket.parse_url(req.url)
    if not u then return fail("config", uerr, false) end
    local timeout_ms = req.timeout_ms or self.timeout_ms
    local connect_ms = math.min(req.connect_timeout_ms or self.connect_timeout_ms, timeout_ms)
    ngx.update_time()
    local deadline = ngx.now() + timeout_ms / 1000
    req.method = req.method or "GET"
    return exchange(self, u, req, timeout_ms, connect_ms, deadline)
end

function Transport.close() end

return cosocket
