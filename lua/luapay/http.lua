--- luapay.http: the request pipeline every provider call goes through.
--
--   local http = require "luapay.http"
--   local client = http.new{ timeout_ms = 30000, deadline_ms = 60000, retries = 2 }
--   local res, err = client:request{
--       method = "POST", url = "https://api.example.com/v1/pay",
--       query = { page = 2, status = { "a", "b" } },   -- ?page=2&status=a&status=b
--       json = { amount = 1000 } | form = { ... } | body = "raw",
--       basic = { "user", "pass" } | bearer = "token",
--       headers = { ["X-Request-Id"] = "..." },
--       idempotent = true,                             -- safe to resend after it was sent
--       secrets = { "..." },                           -- more strings to keep out of errors
--       find_out = "ask client:status(...)",           -- said when the outcome is unknown
--       max_head_bytes = 65536, max_body_bytes = 16777216,
--   }
--   res = { status, headers, body, json, attempts, elapsed, idempotent, delivered_before }
--   err = luapay.errors object with attempts, elapsed, sent, retryable, delivered_before
--
-- Idempotency is declared by the caller, never inferred from the method (a
-- GET refund is not idempotent). Retries happen only where they are safe:
-- when the request cannot have reached the server (connection refused, DNS,
-- connect timeout), or when the caller marks the request idempotent (the
-- provider deduplicates it, e.g. by ecommpay payment_id or Trustly
-- MessageID); then also network errors, read timeouts and HTTP
-- 429/502/503/504. Backoff: 0.5 s doubling, capped at 5 s, with jitter (each
-- delay is drawn from [d/2, d]); Retry-After is honoured up to the cap. One
-- overall deadline bounds every attempt and every wait. Neither transport
-- resends on its own: a request not declared idempotent never goes out on a
-- reused keep-alive connection.
--
-- delivered_before (on the response and on the error, always a boolean):
-- an attempt before the last one may have reached the server, because it
-- got an answer of any status or failed after sending (sent ~= false).
-- Nothing tells a 503 from a proxy in front of the server from the
-- server's own, so an answer counts. A provider may read the refusal of a
-- resent request as "an earlier attempt did it" (ecommpay's duplicate
-- payment_id, Trustly's duplicate MessageID) only when it is true; false
-- means every earlier attempt failed before sending, so the refusal is
-- about some other request.
--
-- A request that is not idempotent and may have reached the server (a
-- network error or timeout after sending, an answer beyond a size cap, a
-- 5xx through http.status_error) ends in an error with sent = true,
-- retryable = false and a message saying that its outcome is unknown and
-- how to find it out: the request's `find_out` (a provider names its status
-- call or notification), else a generic hint. Providers mark errors of their
-- own (an answer they cannot read) the same way with http.outcome_unknown,
-- and those of idempotent requests with http.may_have_happened.
--
-- Size caps: a response head beyond max_head_bytes (default 64 KiB) or a
-- body beyond max_body_bytes (default 16 MiB) is an error of type "http"
-- (sent = true, never retried); set both on http.new or per request.
--
-- Credentials of the request (Basic user:password in plain and base64 form,
-- the password, a Bearer token, any Authorization header value, and the
-- request's `secrets`) never appear in an error the pipeline builds
-- (message, raw, request_id, so neither in tostring(err)), even when a
-- server echoes the request.
--
-- Misuse raises before anything is sent: CR, LF or NUL in the method, URL
-- or a header; a method that is not an upper-case token.
--
-- The transport is chosen by where the code runs: the libcurl client of the
-- core outside nginx, cosockets inside nginx (never blocking a worker). Any
-- function or table with `request(req)` can be passed as `transport`; so can
-- `sleep`, `clock` and `random`.
local cjson = require "cjson.safe"
local core = require "luapay.core"
local errors = require "luapay.errors"

local http = {}

local BACKOFF_BASE, BACKOFF_CAP = 0.5, 5
local RETRY_STATUS = { [429] = true, [502] = true, [503] = true, [504] = true }

-- Said of a request that is not idempotent and may have reached the server.
local OUTCOME_UNKNOWN = "the request was sent and may have been carried out, so its outcome is unknown:"
    .. " do not resend it blindly; "
local FIND_OUT = "find out with a status call or from the provider's notification"

--- http.outcome_unknown(err [, find_out]) -> err, marked as the failure of
-- a request that is not idempotent and may have been carried out: sent =
-- true, retryable = false, and the message says so and how to find out
-- (find_out, e.g. "ask gate:status(\"p1\")"; a generic hint without it).
function http.outcome_unknown(err, find_out)
    err.sent, err.retryable = true, false
    err.message = tostring(err.message) .. "; " .. OUTCOME_UNKNOWN .. (find_out or FIND_OUT)
    return err
end

--- http.may_have_happened(err, what, find_out) -> err, marked as the
-- failure of an idempotent request that may have been carried out: sent =
-- true, retryable as it was (a boolean: resending is safe, the provider
-- deduplicates it), and the message says what may have happened (e.g.
-- "ecommpay may have taken the sale request") and how to find out.
function http.may_have_happened(err, what, find_out)
    err.sent, err.retryable = true, err.retryable == true
    err.message = ("%s; %s: %s"):format(tostring(err.message), what, find_out or FIND_OUT)
    return err
end

--- http.mark_unknown(err, idempotent, what, find_out) -> err: a sent request
-- that got no clear answer (a 5xx, a lost or unreadable answer) may have
-- been carried out. One that is not idempotent must not be resent, it could
-- happen twice (http.outcome_unknown: not retryable); an idempotent one was
-- resent as far as the pipeline could (http.may_have_happened with what,
-- e.g. "Trustly may have taken the Refund request"). Either way the message
-- says how to find out.
function http.mark_unknown(err, idempotent, what, find_out)
    if not idempotent then return http.outcome_unknown(err, find_out) end
    return http.may_have_happened(err, what, find_out)
end

---------------------------------------------------------------------------
-- Encoding
-- @section encoding
---------------------------------------------------------------------------

--- JSON bodies are encoded by the core (core.json_encode), not lua-cjson:
-- Debian's lua-cjson 2.1.0 prints at most 14 significant digits, so an
-- integer above 10^14 would be sent as 1.2345678901234e+14. The core prints
-- integers exactly and sorts object keys, so equal tables give equal bodies.
--
-- Empty arrays: Lua has one empty table for [] and {}, and an empty table
-- encodes as {}. Mark a table with http.array(t) (core.array_mt) to send []
-- when it is empty. Responses are decoded with lua-cjson (cjson.safe); JSON
-- null decodes to cjson.null, which core.null equals and encodes as null.
http.array_mt = core.array_mt
http.null = core.null

function http.array(t)
    return setmetatable(t or {}, core.array_mt)
end

--- http.encode_json(value) -> text | nil, err
http.encode_json = core.json_encode

--- http.decode_json(text) -> value | nil, err
http.decode_json = cjson.decode

--- Percent-encodes everything but RFC 3986's unreserved characters.
function http.escape(s)
    return core.url_encode(s)
end

local function scalar(v, name)
    local t = type(v)
    if t == "string" then return v end
    if t == "boolean" then return tostring(v) end
    if t == "number" then
        if v ~= v or v == math.huge or v == -math.huge then
            error(("luapay.http: %s is not a finite number"):format(name), 3)
        end
        if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
        if v == math.floor(v) and math.abs(v) <= 2 ^ 53 then return ("%.0f"):format(v) end
        return ("%.16g"):format(v)
    end
    error(("luapay.http: %s must be a string, number or boolean, got %s"):format(name, t), 3)
end

--- http.unescape(s [, plus]) -> s with every %XX decoded to its byte, and
-- with plus also every "+" to a space (a form or query string's reading).
function http.unescape(s, plus)
    return core.url_decode(s, plus)
end

--- http.query_pairs(text [, decode]) -> a list of {key, value} in the order
-- of text: pairs split at "&" (empty pieces skipped), each at its first
-- "="; decode (default: http.unescape with "+" a space) applied to each key
-- and value on its own.
function http.query_pairs(text, decode)
    if decode == nil then return core.query_pairs(text) end -- the same, in C
    local list = {}
    for pair in text:gmatch("[^&]+") do
        local k, v = pair:match("^([^=]*)=?(.*)$")
        list[#list + 1] = { decode(k), decode(v) }
    end
    return list
end

--- http.decode_query(text [, decode]) -> name -> value | nil, name. Pairs
-- as http.query_pairs reads them; an empty name is skipped. A name repeated
-- with the same value is one field; repeated with another value the text
-- is ambiguous (readers disagree on which one counts: first, last or a
-- list, and a signature over the text says nothing about which), so it is
-- refused: nil and the name.
function http.decode_query(text, decode)
    local t = {}
    for _, p in ipairs(http.query_pairs(text, decode)) do
        local k, v = p[1], p[2]
        if k ~= "" then
            if t[k] ~= nil and t[k] ~= v then return nil, k end
            t[k] = v
        end
    end
    return t
end

--- http.encode_query(params) -> "a=1&b=x&b=y": keys in byte order, an array
-- value repeats its key in array order, everything percent-encoded.
function http.encode_query(params)
    local keys = {}
    for k in pairs(params) do
        if type(k) ~= "string" then error("luapay.http: query and form keys must be strings", 2) end
        keys[#keys + 1] = k
    end
    table.sort(keys)
    local list = {} -- name, value, name, value, ... for core.form_encode
    for _, k in ipairs(keys) do
        local v = params[k]
        if type(v) == "table" then
            for _, item in ipairs(v) do
                list[#list + 1] = k
                list[#list + 1] = scalar(item, k)
            end
        else
            list[#list + 1] = k
            list[#list + 1] = scalar(v, k)
        end
    end
    return core.form_encode(list)
end

--- Header values for HTTP Basic and Bearer authentication.
function http.basic_auth(user, password)
    if type(user) ~= "string" or type(password) ~= "string" then
        error("luapay.http: basic auth needs a user and a password string", 2)
    end
    if user:find(":", 1, true) then error("luapay.http: a basic auth user may not contain ':'", 2) end
    return "Basic " .. core.base64_encode(user .. ":" .. password)
end

function http.bearer_auth(token)
    if type(token) ~= "string" or token == "" then error("luapay.http: bearer auth needs a token string", 2) end
    return "Bearer " .. token
end

--- Case-insensitive lookup of a response or request header.
function http.header(headers, name)
    local v = headers[name:lower()]
    if v == nil then
        local lname = name:lower()
        for k, x in pairs(headers) do
            if k:lower() == lname then return x end
        end
    end
    return v
end

---------------------------------------------------------------------------
-- Environment: inside nginx or not
-- @section environment
---------------------------------------------------------------------------

--- http.single_header(headers, name) -> value | nil, repeated: a header
-- that may appear once (a list of one value is that value; more than one
-- gives nil, true: which one counts would be a guess).
function http.single_header(headers, name)
    local v = http.header(headers, name)
    if type(v) == "table" then
        if #v ~= 1 then return nil, #v > 1 end
        v = v[1]
    end
    return v
end

--- http.basic_credentials(authorization) -> "user:password" | nil, why.
-- authorization: the Authorization header's value or a headers table. why:
-- "repeated" (more than one Authorization header), "missing" (no HTTP
-- Basic credentials) or "base64" (they are not base64).
function http.basic_credentials(authorization)
    local value, repeated = authorization, false
    if type(authorization) == "table" then value, repeated = http.single_header(authorization, "Authorization") end
    if repeated then return nil, "repeated" end
    local b64 = type(value) == "string" and value:match("^[Bb]asic%s+(%S+)%s*$")
    if not b64 then return nil, "missing" end
    local decoded = core.base64_decode(b64)
    if not decoded then return nil, "base64" end
    return decoded
end

local function in_nginx()
    return type(ngx) == "table" and type(ngx.socket) == "table" and type(ngx.get_phase) == "function"
end
http.in_nginx = in_nginx

-- Deadlines are measured on the monotonic clock, in nginx too: it never
-- jumps, and unlike ngx.update_time it leaves LuaJIT's traces whole.
local default_clock = require("luapay.monotime").now

local function default_sleep(seconds)
    if in_nginx() then return ngx.sleep(seconds) end
    return core.sleep(seconds)
end

-- The options the default transport takes (see http.new).
local TRANSPORT_OPTIONS = { "timeout_ms", "connect_timeout_ms", "verify", "ca_file", "proxy", "user_agent",
    "pool_size", "keepalive_ms", "max_head_bytes", "max_body_bytes" }

-- The options only the transport luapay builds can honour: refused next
-- to a transport passed in, which they would not reach.
local BUILT_TRANSPORT_ONLY = { "ca_file", "proxy", "pool_size", "keepalive_ms" }

-- The option values the core's libcurl client cannot honour: name, what to
-- do instead | nil. (libcurl counts a connection's idle time in whole seconds.)
local function libcurl_unsupported(opts)
    if opts.keepalive_ms ~= nil and opts.keepalive_ms < 1000 then
        return "keepalive_ms", "must be at least 1000 outside nginx: libcurl counts idle time in whole seconds"
    end
    return nil
end

--- http.default_transport(opts) -> the transport for where the code runs:
-- cosockets inside nginx, the core's libcurl client elsewhere. opts:
-- timeout_ms, connect_timeout_ms, verify, ca_file, proxy, user_agent,
-- pool_size, keepalive_ms, max_head_bytes, max_body_bytes.
function http.default_transport(opts)
    opts = opts or {}
    local topts = {}
    for _, name in ipairs(TRANSPORT_OPTIONS) do topts[name] = opts[name] end
    if in_nginx() then return require("luapay.http.cosocket").new(topts) end
    return core.http_client(topts)
end

--- http.check_verify_option(verify, url, fn_name): for provider
-- constructors, with each base URL the client will call. Raises a misuse
-- error naming fn_name when verify is false and the URL's host is not a
-- loopback host (127.0.0.0/8, ::1, localhost): TLS verification may be
-- switched off for a local sandbox only. verify must be nil or a boolean.
-- (Both transports refuse such a request anyway, before sending it.)
function http.check_verify_option(verify, url, fn_name, level)
    fn_name, level = fn_name or "luapay.http", level or 3
    if verify == nil or verify == true then return end
    if verify ~= false then
        error(("%s: option 'verify' must be a boolean, got %s"):format(fn_name, type(verify)), level)
    end
    local host = type(url) == "string" and core.url_host(url)
    if not host then
        error(("%s: verify = false needs the URL it applies to, got %s"):format(fn_name, type(url)), level)
    end
    if not core.is_loopback_host(host) then
        -- names the host only: a URL may carry credentials
        error(("%s: verify = false is allowed only for a loopback URL (the sandbox), not for host '%s'")
            :format(fn_name, host), level)
    end
end

---------------------------------------------------------------------------
-- Keeping a request's credentials out of errors
-- @section credentials
---------------------------------------------------------------------------

-- The caller's request behind a response, for http.status_error and
-- http.redact (weak: it goes with the response).
local request_of = setmetatable({}, { __mode = "k" })

local function add_authorization(list, value)
    if type(value) ~= "string" or value == "" then return end
    list[#list + 1] = value
    local scheme, cred = value:match("^(%S+)%s+(.+)$")
    if not cred then return end
    list[#list + 1] = cred
    if scheme:lower() == "basic" then
        local plain = core.base64_decode(cred)
        if plain then
            list[#list + 1] = plain
            list[#list + 1] = plain:match("^[^:]*:(.+)$")
        end
    end
end

-- Every form of the request's credentials, longest first.
local function secrets_of(req)
    local list = {}
    if type(req.basic) == "table" and type(req.basic[1]) == "string" and type(req.basic[2]) == "string" then
        list[#list + 1] = req.basic[1] .. ":" .. req.basic[2]
        list[#list + 1] = core.base64_encode(req.basic[1] .. ":" .. req.basic[2])
        list[#list + 1] = req.basic[2]
    end
    if type(req.bearer) == "string" then list[#list + 1] = req.bearer end
    if type(req.headers) == "table" then
        for name, value in pairs(req.headers) do
            if type(name) == "string" and name:lower() == "authorization" then
                if type(value) == "table" then
                    for _, v in ipairs(value) do add_authorization(list, v) end
                else
                    add_authorization(list, value)
                end
            end
        end
    end
    if type(req.secrets) == "table" then
        for _, v in ipairs(req.secrets) do
            if type(v) == "string" then list[#list + 1] = v end
        end
    end
    table.sort(list, function(a, b) return #a > #b end)
    return list
end

--- http.redact(res, text) -> text without the credentials of the request
-- that `res` answers (see above). For providers that build errors of their
-- own from a response body, which a server may have filled with an echo of
-- the request.
function http.redact(res, text)
    local req = request_of[res]
    if not req or text == nil then return text end
    return errors.redact(text, secrets_of(req))
end

-- Takes the request's credentials out of every string of an error that
-- tostring shows or that carries server text.
local function scrub(err, req)
    local secrets = secrets_of(req)
    if #secrets == 0 then return err end
    for _, k in ipairs({ "message", "raw", "request_id", "code" }) do
        if type(err[k]) == "string" then err[k] = errors.redact(err[k], secrets) end
    end
    return err
end

---------------------------------------------------------------------------
-- The pipeline
-- @section the_pipeline
---------------------------------------------------------------------------

local Client = {}
Client.__index = Client
http.Client = Client

-- The checks of http.new's options: name -> (value -> true | what it
-- must be). Each value is checked here once, for both transports.
local function whole(lo, hi)
    return function(v) return type(v) == "number" and v >= lo and v <= hi and v == math.floor(v) end
end
local MS = whole(1, 86400000)
local BYTES = whole(1, 2 ^ 32)
local function nonempty(v) return type(v) == "string" and v ~= "" end
local function fn(v) return type(v) == "function" end
local OPTION_CHECKS = {
    transport = { function(v) return fn(v) or (type(v) == "table" or type(v) == "userdata") and v.request ~= nil end,
        "a function or an object with request(req)" },
    timeout_ms = { MS, "a whole number of milliseconds from 1 to 86400000" },
    connect_timeout_ms = { MS, "a whole number of milliseconds from 1 to 86400000" },
    deadline_ms = { MS, "a whole number of milliseconds from 1 to 86400000" },
    keepalive_ms = { MS, "a whole number of milliseconds from 1 to 86400000" },
    retries = { whole(0, 100), "a whole number from 0 to 100" },
    verify = { function(v) return type(v) == "boolean" end, "a boolean" },
    ca_file = { nonempty, "a non-empty string (the path of a PEM file of CA certificates)" },
    proxy = { nonempty, "a non-empty string (the proxy's URL)" },
    user_agent = { function(v) return nonempty(v) and not v:find("[%c]") end,
        "a non-empty string without control characters" },
    pool_size = { whole(1, 10000), "a whole number of connections from 1 to 10000" },
    max_head_bytes = { BYTES, "a whole number of bytes from 1 to 4294967296" },
    max_body_bytes = { BYTES, "a whole number of bytes from 1 to 4294967296" },
    sleep = { fn, "a function" },
    clock = { fn, "a function" },
    random = { fn, "a function" },
}
local CHECKED = {} -- in a fixed order: the same message whatever the table's order
for name in pairs(OPTION_CHECKS) do CHECKED[#CHECKED + 1] = name end
table.sort(CHECKED)

--- http.new(opts [, who [, level]]) -> client. opts: transport (built for
-- where the code runs when absent), timeout_ms (per attempt, 30000),
-- connect_timeout_ms (10000), deadline_ms (overall, 60000), retries (extra
-- attempts where safe, 2), verify (false: loopback hosts only), ca_file,
-- proxy, user_agent, pool_size (kept-alive connections, libcurl 5,
-- cosockets 32), keepalive_ms (how long one may idle, libcurl 118000 in
-- whole seconds, cosockets 60000), max_head_bytes (65536), max_body_bytes
-- (16777216), live (refuses verify = false), sleep, clock, random. A bad
-- value, or an option the transport cannot honour (inside nginx: ca_file
-- and proxy; with a transport passed in: ca_file, proxy, pool_size,
-- keepalive_ms, verify = false, which configure the transport luapay
-- builds), raises "who: option 'name' ..." (who: "luapay.http.new") at
-- the caller `level` frames up (1: http.new's caller).
function http.new(opts, who, level)
    opts = opts or {}
    who, level = who or "luapay.http.new", (level or 1) + 1
    local function refuse(name, message) error(("%s: option '%s' %s"):format(who, name, message), level + 1) end
    if opts.verify == false and opts.live then
        refuse("verify", "cannot be false in the live environment: TLS verification stays on")
    end
    for _, name in ipairs(CHECKED) do
        local v, check = opts[name], OPTION_CHECKS[name]
        if v ~= nil and not check[1](v) then
            local got = (type(v) == "number" or type(v) == "boolean") and tostring(v) or type(v)
            refuse(name, "must be " .. check[2] .. ", got " .. got)
        end
    end
    if opts.transport ~= nil then
        for _, name in ipairs(BUILT_TRANSPORT_ONLY) do
            if opts[name] ~= nil then
                refuse(name, "configures the transport luapay builds and cannot be given with 'transport'"
                    .. " (set it on the transport you pass)")
            end
        end
        if opts.verify == false then
            refuse("verify", "= false configures the transport luapay builds and cannot be given with 'transport'")
        end
    else
        local name, instead
        if in_nginx() then
            name, instead = require("luapay.http.cosocket").unsupported(opts)
        else
            name, instead = libcurl_unsupported(opts)
        end
        if name then refuse(name, instead) end
    end
    local self = setmetatable({}, Client)
    self.timeout_ms = opts.timeout_ms or 30000
    self.connect_timeout_ms = opts.connect_timeout_ms or 10000
    self.deadline_ms = opts.deadline_ms or 60000
    self.retries = opts.retries or 2
    self.max_head_bytes, self.max_body_bytes = opts.max_head_bytes, opts.max_body_bytes
    self.user_agent = opts.user_agent or ("luapay/" .. core.VERSION .. " (" .. (jit and jit.version or _VERSION) .. ")")
    if opts.transport then
        self.transport = opts.transport
    else
        local topts = {}
        for _, name in ipairs(TRANSPORT_OPTIONS) do topts[name] = opts[name] end
        topts.timeout_ms, topts.connect_timeout_ms, topts.user_agent = self.timeout_ms, self.connect_timeout_ms, self.user_agent
        self.transport = http.default_transport(topts)
    end
    self.built = not opts.transport and self.transport or nil
    self.sleep = opts.sleep or default_sleep
    -- chosen once: a check per call is one more exit from a LuaJIT trace
    self.clock = opts.clock or default_clock
    self.random = opts.random or math.random
    return self
end

-- The lower-cased names of the headers every request starts with; read only
-- (a request that sets headers gets a copy).
local DEFAULT_INDEX = { accept = "Accept", ["user-agent"] = "User-Agent" }

-- Sets a header, replacing one of the same name in another case (a
-- function of its own: a closure made per request stops LuaJIT's trace).
local function set_header(headers, index, name, value)
    local lname = name:lower()
    if index[lname] then headers[index[lname]] = nil end
    index[lname] = name
    headers[name] = value
end

-- Builds the transport request once; it is the same for every attempt.
local function prepare(self, req)
    if type(req) ~= "table" then error("luapay.http: request needs a table", 3) end
    if type(req.url) ~= "string" then error("luapay.http: request needs a url string", 3) end
    local url = req.url
    if req.query and next(req.query) then
        url = url .. (url:find("?", 1, true) and "&" or "?") .. http.encode_query(req.query)
    end
    local headers, index = { Accept = "application/json", ["User-Agent"] = self.user_agent }, DEFAULT_INDEX
    if req.json ~= nil or req.form ~= nil or req.basic or req.bearer or req.headers then
        index = { accept = "Accept", ["user-agent"] = "User-Agent" }
    end
    local body = req.body
    if req.json ~= nil then
        local err
        body, err = http.encode_json(req.json)
        if not body then return nil, errors.new("validation", "request body cannot be encoded as JSON: " .. err) end
        set_header(headers, index, "Content-Type", "application/json; charset=utf-8")
    elseif req.form ~= nil then
        body = http.encode_query(req.form)
        set_header(headers, index, "Content-Type", "application/x-www-form-urlencoded")
    end
    if req.basic then set_header(headers, index, "Authorization", http.basic_auth(req.basic[1], req.basic[2])) end
    if req.bearer then set_header(headers, index, "Authorization", http.bearer_auth(req.bearer)) end
    if req.headers then
        for name, value in pairs(req.headers) do set_header(headers, index, name, value) end
    end
    -- Raises, naming the field, on CR, LF or NUL in the method, URL or a
    -- header, before any transport sees the request.
    return core.check_request({
        method = req.method or (body and "POST" or "GET"),
        url = url,
        headers = headers,
        body = body,
        idempotent = req.idempotent == true,
        -- the client's caps reach a transport passed in too
        max_head_bytes = req.max_head_bytes or self.max_head_bytes,
        max_body_bytes = req.max_body_bytes or self.max_body_bytes,
        timeout_ms = 0, connect_timeout_ms = 0, -- set for each attempt (room made once)
    }, "luapay.http: request")
end

local function call_transport(self, treq)
    local transport = self.transport
    local ok, res, err
    if type(transport) == "function" then
        ok, res, err = pcall(transport, treq)
    else
        -- prepare checks each request as the transport would (core.check_request):
        -- the cosocket transport luapay built takes it without a second check
        local send = transport == self.built and transport.request_checked or transport.request
        ok, res, err = pcall(send, transport, treq)
    end
    if not ok then -- a transport that raises is treated as a network failure of unknown reach
        return nil, errors.new("network", "transport raised an error: " .. tostring(res), { sent = true })
    end
    if res then return res end
    if errors.is(err) then return nil, err end
    if type(err) == "table" then
        return nil, errors.new(errors.TYPES[err.type] and err.type or "network", err.message or "transport failed", err)
    end
    return nil, errors.new("network", tostring(err or "transport failed"), { sent = true })
end

-- May this outcome be retried? Failures that cannot have reached the server
-- always; the rest only for idempotent requests. TLS and configuration
-- failures never: a retry cannot fix them.
local function retryable(req, res, err)
    if res then return req.idempotent == true and RETRY_STATUS[res.status] == true end
    if err.type == "tls" or err.type == "config" or err.type == "validation" then return false end
    if err.sent == false then return true end
    return req.idempotent == true and (err.type == "network" or err.type == "timeout")
end

local function retry_after(res)
    local v = res and http.header(res.headers or {}, "retry-after")
    if type(v) == "table" then v = v[1] end
    return tonumber(v)
end

--- The n-th delay (n from 1): 0.5, 1, 2, 4, 5, 5, ... with jitter.
function http.backoff(n, random)
    local d = math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ^ (n - 1))
    return d / 2 + (d / 2) * (random or math.random)()
end

function Client:request(req)
    local treq, perr = prepare(self, req)
    if not treq then return nil, perr end
    local start = self.clock()
    local deadline = start + (req.deadline_ms or self.deadline_ms) / 1000
    local max_attempts = 1 + (req.retries or self.retries)
    local attempts, res, err = 0, nil, nil
    local delivered_before = false
    while true do
        local remaining_ms = math.floor((deadline - self.clock()) * 1000)
        if remaining_ms < 1 then
            if not (res or err) then err = errors.new("timeout", "deadline reached before the request was sent", { sent = false }) end
            break
        end
        -- the attempt before this one may have reached the server
        if res or (err and err.sent ~= false) then delivered_before = true end
        attempts = attempts + 1
        treq.timeout_ms = math.min(req.timeout_ms or self.timeout_ms, remaining_ms)
        treq.connect_timeout_ms = math.min(req.connect_timeout_ms or self.connect_timeout_ms, treq.timeout_ms)
        res, err = call_transport(self, treq)
        local again = retryable(req, res, err)
        if not again or attempts >= max_attempts then break end
        local delay = http.backoff(attempts, self.random)
        local hint = retry_after(res)
        if hint then delay = math.min(BACKOFF_CAP, math.max(delay, hint)) end
        if self.clock() + delay >= deadline then break end
        self.sleep(delay)
    end
    local elapsed = self.clock() - start
    if err then
        err.attempts, err.elapsed, err.delivered_before = attempts, elapsed, delivered_before
        if err.sent == nil then err.sent = true end -- not known: it may have been
        err.retryable = retryable(req, nil, err)
        if err.sent and not treq.idempotent and (err.type == "network" or err.type == "timeout" or err.type == "http") then
            http.outcome_unknown(err, req.find_out)
        end
        return nil, scrub(err, req)
    end
    res.attempts, res.elapsed, res.idempotent = attempts, elapsed, treq.idempotent
    res.delivered_before = delivered_before
    request_of[res] = req
    if req.decode ~= false and res.body and res.body ~= "" then
        local ctype = http.header(res.headers or {}, "content-type")
        if type(ctype) == "string" and (ctype:find("json", 1, true)) then
            res.json, res.json_error = http.decode_json(res.body)
        end
    end
    return res
end

--- http.status_error(res, what) -> the error for a response whose status
-- the caller did not expect: type "http", http_status, raw (the start of the
-- body), request_id, sent = true, delivered_before. retryable follows
-- res.idempotent, which the pipeline records on every response: an
-- idempotent request may be resent after 429, 502, 503 and 504; one that is
-- not (res.idempotent not true) only after 429 (refused unread), and a 5xx
-- says that its outcome is unknown and how to find it out. The request's
-- credentials are redacted.
function http.status_error(res, what)
    local status = res.status
    local unknown = res.idempotent ~= true and type(status) == "number" and status >= 500 and status <= 599
    local message = ("%s answered HTTP %d"):format(what or "the server", status)
    local req = request_of[res]
    if unknown then message = message .. "; " .. OUTCOME_UNKNOWN .. (req and req.find_out or FIND_OUT) end
    local secrets = req and secrets_of(req) or {}
    local snippet
    if type(res.body) == "string" then
        -- redact a window that holds every secret starting in the first 300
        -- bytes whole, then cut: no part of a secret is left at the cut
        local window = 300 + (secrets[1] and #secrets[1] or 0)
        snippet = errors.redact(res.body:sub(1, window), secrets):sub(1, 300)
    end
    local request_id = http.header(res.headers or {}, "x-request-id")
    if type(request_id) == "string" then request_id = errors.redact(request_id, secrets) end
    return errors.new("http", message, {
        http_status = status, raw = snippet, attempts = res.attempts, elapsed = res.elapsed,
        request_id = request_id, sent = true, delivered_before = res.delivered_before,
        retryable = status == 429 or (res.idempotent == true and RETRY_STATUS[status] == true),
    })
end

--- http.malformed(res, message) -> the "provider" error for an answer
-- that is not what the provider documents for the call: nothing of it is
-- taken as data. http_status, raw (the start of the body, the request's
-- credentials redacted), attempts, elapsed, sent = true.
function http.malformed(res, message)
    return errors.new("provider", message, {
        http_status = res.status, raw = type(res.body) == "string" and http.redact(res, res.body:sub(1, 300)) or nil,
        attempts = res.attempts, elapsed = res.elapsed, sent = true,
    })
end

--- http.refused(res, what, message, code) -> the error for a response that
-- is not a 200: the provider's refusal ("provider", message and code read
-- from its error document by the caller) when it gave a message, except for
-- 401 and 403 (the credentials, not the request: an "http" error as
-- http.status_error(res, what) gives, as for any other status).
function http.refused(res, what, message, code)
    if type(message) == "string" and res.status ~= 401 and res.status ~= 403 then
        return errors.new("provider", message, {
            http_status = res.status, code = code,
            raw = type(res.body) == "string" and http.redact(res, res.body:sub(1, 300)) or nil,
        })
    end
    return http.status_error(res, what)
end

function Client:close()
    local t = self.transport
    if type(t) ~= "function" and t.close then t:close() end
end

return http
