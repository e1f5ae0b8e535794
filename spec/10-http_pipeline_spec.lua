-- The request pipeline with a recording fake transport and a fake clock:
-- encoding, the retry policy, backoff, the deadline. (The real transports
-- are exercised against the sandbox in 11-transport_spec.lua.)
local http = require "luapay.http"
local errors = require "luapay.errors"

-- A transport that answers from a script and records each request.
local function scripted(script)
    local t = { seen = {} }
    function t.request(_, req)
        local copy = {}
        for k, v in pairs(req) do copy[k] = v end
        t.seen[#t.seen + 1] = copy
        local step = script[#t.seen] or script[#script]
        if type(step) == "function" then return step(req) end
        if step.status then return { status = step.status, headers = step.headers or {}, body = step.body or "" } end
        return nil, step
    end
    return t
end

-- A clock that only moves when the pipeline sleeps (or a step advances it).
local function fake_time()
    local time = { now = 100, slept = {} }
    time.clock = function() return time.now end
    time.sleep = function(s)
        time.slept[#time.slept + 1] = s
        time.now = time.now + s
    end
    return time
end

local function client(transport, opts)
    local time = fake_time()
    opts = opts or {}
    opts.transport = transport
    opts.clock, opts.sleep = time.clock, time.sleep
    opts.random = opts.random or function() return 1 end
    return http.new(opts), time
end

describe("http.encode_query", function()
    it("sorts keys, repeats array values in order and percent-encodes all but unreserved", function()
        assert.equal("a=1&b=x&b=y&c=%20%2B%26%3D%2F%3F%23%C3%A9~._-",
            http.encode_query{ c = " +&=/?#é~._-", b = { "x", "y" }, a = 1 })
    end)

    it("prints numbers exactly and booleans as words", function()
        assert.equal("big=9007199254740992&f=1.5&t=true&z=0", http.encode_query{ big = 2 ^ 53, f = 1.5, t = true, z = 0 })
    end)

    it("refuses values it cannot represent", function()
        assert.has_error(function() http.encode_query{ x = {} and function() end } end)
        assert.has_error(function() http.encode_query{ x = 0 / 0 } end)
        assert.has_error(function() http.encode_query{ [1] = "positional" } end)
    end)
end)

describe("http.encode_json", function()
    it("keeps integers exact, sorts keys and writes marked empty arrays as []", function()
        assert.equal('{"a":123456789012345,"b":[],"c":{},"d":null,"e":[1,"x",true],"f":0.1}',
            http.encode_json{ f = 0.1, e = { 1, "x", true }, d = http.null, c = {}, b = http.array(), a = 123456789012345 })
    end)

    it("escapes strings as JSON requires and keeps UTF-8 as is", function()
        assert.equal('["q\\"\\\\\\n\\u0001é/"]', http.encode_json{ "q\"\\\n\1é/" })
    end)

    it("reports values with no JSON form instead of guessing", function()
        local text, err = http.encode_json{ [1] = 1, [3] = 3 }
        assert.is_nil(text)
        assert.matches("mixes array and object keys", err)
        assert.is_nil((http.encode_json{ 0 / 0 }))
        assert.is_nil((http.encode_json{ f = print }))
    end)
end)

describe("building a request", function()
    it("sends JSON with its content type, auth and the caller's headers", function()
        local t = scripted{ { status = 200 } }
        local c = client(t)
        assert(c:request{ method = "POST", url = "https://x.test/pay?v=1", query = { b = "2" },
            json = { amount = 100 }, basic = { "user", "pw" }, headers = { ["X-Trace"] = "t1" } })
        local req = t.seen[1]
        assert.equal("POST", req.method)
        assert.equal("https://x.test/pay?v=1&b=2", req.url)
        assert.equal('{"amount":100}', req.body)
        assert.equal("application/json; charset=utf-8", req.headers["Content-Type"])
        assert.equal("Basic dXNlcjpwdw==", req.headers["Authorization"])
        assert.equal("t1", req.headers["X-Trace"])
        assert.equal("application/json", req.headers["Accept"])
    end)

    it("lets a caller's header replace a default whatever its case", function()
        local t = scripted{ { status = 200 } }
        assert(client(t):request{ url = "https://x.test/", json = {}, headers = { ["content-type"] = "application/vnd+json" } })
        assert.is_nil(t.seen[1].headers["Content-Type"])
        assert.equal("application/vnd+json", t.seen[1].headers["content-type"])
    end)

    it("sends forms url-encoded and bearer tokens", function()
        local t = scripted{ { status = 200 } }
        assert(client(t):request{ url = "https://x.test/", form = { grant_type = "client_credentials", scope = "a b" }, bearer = "tok" })
        assert.equal("POST", t.seen[1].method)
        assert.equal("grant_type=client_credentials&scope=a%20b", t.seen[1].body)
        assert.equal("application/x-www-form-urlencoded", t.seen[1].headers["Content-Type"])
        assert.equal("Bearer tok", t.seen[1].headers["Authorization"])
    end)

    it("returns a validation error, sending nothing, when the body cannot be encoded", function()
        local t = scripted{ { status = 200 } }
        local res, err = client(t):request{ url = "https://x.test/", json = { f = print } }
        assert.is_nil(res)
        assert.equal("validation", err.type)
        assert.equal(0, #t.seen)
    end)

    it("refuses a basic auth user containing ':'", function()
        assert.has_error(function() http.basic_auth("a:b", "pw") end, "luapay.http: a basic auth user may not contain ':'")
    end)

    it("refuses to switch TLS verification off in live mode", function()
        assert.has_error(function() http.new{ verify = false, live = true, transport = scripted{} } end,
            "luapay.http: TLS verification cannot be switched off in live mode")
    end)
end)

describe("responses", function()
    it("decodes JSON answers and reports undecodable ones", function()
        local t = scripted{
            { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"ok":true,"n":null}' },
            { status = 200, headers = { ["content-type"] = "application/json" }, body = "{oops" },
            { status = 200, headers = { ["content-type"] = "text/plain" }, body = '{"ok":true}' },
        }
        local c = client(t)
        local res = c:request{ url = "https://x.test/" }
        assert.is_true(res.json.ok)
        assert.equal(http.null, res.json.n)
        res = c:request{ url = "https://x.test/" }
        assert.is_nil(res.json)
        assert.is_string(res.json_error)
        res = c:request{ url = "https://x.test/" }
        assert.is_nil(res.json)
    end)

    it("returns 4xx and 5xx as responses with attempts and elapsed time", function()
        local c = client(scripted{ { status = 503 } })
        local res = c:request{ url = "https://x.test/" }
        assert.equal(503, res.status)
        assert.equal(1, res.attempts)
        assert.equal(0, res.elapsed)
        local e = http.status_error(res, "ecommpay")
        assert.equal("http", e.type)
        assert.equal("luapay http error: ecommpay answered HTTP 503 (HTTP 503)", tostring(e))
    end)
end)

describe("retries", function()
    local refused = { type = "network", message = "connection refused", sent = false }
    local reset = { type = "network", message = "connection reset", sent = true }

    it("retries a failure that cannot have reached the server, then succeeds", function()
        local t = scripted{ refused, refused, { status = 200 } }
        local c, time = client(t, { retries = 2 })
        local res = c:request{ method = "POST", url = "https://x.test/", body = "x" }
        assert.equal(200, res.status)
        assert.equal(3, res.attempts)
        assert.same({ 0.5, 1 }, time.slept)
        assert.equal(1.5, res.elapsed)
    end)

    it("does not resend a request the server may have received", function()
        local t = scripted{ reset, { status = 200 } }
        local res, err = client(t, { retries = 3 }):request{ method = "POST", url = "https://x.test/", body = "x" }
        assert.is_nil(res)
        assert.is_true(errors.is(err, "network"))
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert.equal(1, #t.seen)
    end)

    it("resends an idempotent request after a reset, a read timeout or a 503", function()
        local t = scripted{ reset, { type = "timeout", message = "read timeout", sent = true }, { status = 503 }, { status = 201 } }
        local res = client(t, { retries = 3 }):request{ method = "POST", url = "https://x.test/", body = "x", idempotent = true }
        assert.equal(201, res.status)
        assert.equal(4, res.attempts)
        for i = 2, 4 do assert.equal(t.seen[1].body, t.seen[i].body) end
    end)

    it("never retries TLS or configuration failures", function()
        for _, kind in ipairs({ "tls", "config" }) do
            local t = scripted{ { type = kind, message = "no", sent = false } }
            local _, err = client(t, { retries = 3 }):request{ url = "https://x.test/", idempotent = true }
            assert.equal(kind, err.type)
            assert.equal(1, #t.seen)
        end
    end)

    it("does not retry a 503 of a request that is not idempotent", function()
        local t = scripted{ { status = 503 }, { status = 200 } }
        local res = client(t, { retries = 3 }):request{ method = "POST", url = "https://x.test/", body = "x" }
        assert.equal(503, res.status)
        assert.equal(1, #t.seen)
    end)

    it("honours Retry-After up to the 5 s cap", function()
        local t = scripted{ { status = 429, headers = { ["retry-after"] = "3" } }, { status = 503, headers = { ["retry-after"] = "120" } }, { status = 200 } }
        local c, time = client(t, { retries = 2 })
        assert.equal(200, c:request{ url = "https://x.test/", idempotent = true }.status)
        assert.same({ 3, 5 }, time.slept)
    end)

    it("backs off 0.5 s doubling to a 5 s cap, with jitter in [d/2, d]", function()
        local full, half = {}, {}
        for n = 1, 7 do
            full[n] = http.backoff(n, function() return 1 end)
            half[n] = http.backoff(n, function() return 0 end)
        end
        assert.same({ 0.5, 1, 2, 4, 5, 5, 5 }, full)
        assert.same({ 0.25, 0.5, 1, 2, 2.5, 2.5, 2.5 }, half)
        for _ = 1, 100 do
            local d = http.backoff(3)
            assert.is_true(d >= 1 and d <= 2)
        end
    end)

    it("keeps every attempt and wait inside the overall deadline", function()
        local t = scripted{ refused }
        local c, time = client(t, { retries = 10, deadline_ms = 4000, timeout_ms = 30000 })
        local res, err = c:request{ url = "https://x.test/" }
        assert.is_nil(res)
        -- waits 0.5, 1, 2 fit in 4 s (3.5 s); the next (4 s) would not.
        assert.same({ 0.5, 1, 2 }, time.slept)
        assert.equal(4, err.attempts)
        assert.equal(3.5, err.elapsed)
        assert.is_true(err.retryable)
        -- each attempt may use at most what is left of the deadline
        assert.same({ 4000, 3500, 2500, 500 }, { t.seen[1].timeout_ms, t.seen[2].timeout_ms, t.seen[3].timeout_ms, t.seen[4].timeout_ms })
    end)

    it("counts the time an attempt takes against the deadline", function()
        local time_ref
        local slow_refused = function() time_ref.now = time_ref.now + 3; return nil, refused end
        local t = scripted{ slow_refused }
        local c, time = client(t, { retries = 5, deadline_ms = 5000 })
        time_ref = time
        local _, err = c:request{ url = "https://x.test/" }
        -- attempt 1 takes 3 s, wait 0.5, attempt 2 is given 1.5 s and takes 3
        assert.equal(2, err.attempts)
        assert.equal(1500, t.seen[2].timeout_ms)
        assert.equal(6.5, err.elapsed)
    end)
end)

describe("transports", function()
    it("accepts a plain function as transport", function()
        local c = client(function(req) return { status = 204, headers = {}, body = "", url = req.url } end)
        assert.equal(204, c:request{ url = "https://x.test/" }.status)
    end)

    it("turns a transport that raises into a network error that is not retried blindly", function()
        local calls = 0
        local c = client(function() calls = calls + 1; error("boom") end, { retries = 2 })
        local res, err = c:request{ method = "POST", url = "https://x.test/", body = "x" }
        assert.is_nil(res)
        assert.equal("network", err.type)
        assert.matches("boom", err.message)
        assert.equal(1, calls)
    end)

    it("wraps a plain error table into a luapay error", function()
        local c = client(scripted{ { type = "timeout", message = "connect timeout", sent = false } }, { retries = 0 })
        local _, err = c:request{ url = "https://x.test/" }
        assert.is_true(errors.is(err, "timeout"))
        assert.equal("luapay timeout error: connect timeout", tostring(err))
    end)

    it("picks the libcurl client of the core outside nginx", function()
        local t = http.default_transport{}
        assert.equal("luapay.http_client", tostring(t))
        t:close()
    end)
end)
