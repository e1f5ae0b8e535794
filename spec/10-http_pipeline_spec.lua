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
            "luapay.http.new: option 'verify' cannot be false in the live environment: TLS verification stays on")
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
        local res = c:request{ url = "https://x.test/", idempotent = true, retries = 0 }
        assert.equal(503, res.status)
        assert.equal(1, res.attempts)
        assert.equal(0, res.elapsed)
        local e = http.status_error(res, "ecommpay")
        assert.equal("http", e.type)
        assert.equal("luapay http error: ecommpay answered HTTP 503 (HTTP 503)", tostring(e))
    end)
end)

describe("the outcome of a request that is not idempotent", function()
    local OUTCOME = "outcome is unknown: do not resend it blindly; find out with a status call or from the provider's notification"

    it("records on the response whether the request was declared idempotent (the method does not tell)", function()
        local c = client(scripted{ { status = 200 } })
        assert.is_false(c:request{ method = "GET", url = "https://x.test/refund" }.idempotent)
        assert.is_true(c:request{ method = "POST", url = "https://x.test/", body = "x", idempotent = true }.idempotent)
    end)

    it("a 5xx to a GET refund is not retryable, was sent, and the message says how to find out", function()
        for _, code in ipairs({ 500, 502, 503, 504 }) do
            local t = scripted{ { status = code, headers = { ["retry-after"] = "1" } }, { status = 200 } }
            local res = client(t, { retries = 3 }):request{ method = "GET", url = "https://x.test/refund?id=1" }
            assert.equal(1, #t.seen)
            local e = http.status_error(res, "TrustPay refund")
            assert.is_false(e.retryable)
            assert.is_true(e.sent)
            assert.equal(code, e.http_status)
            assert.equal("TrustPay refund answered HTTP " .. code .. "; the request was sent and may have been carried out, so its "
                .. OUTCOME, e.message)
        end
    end)

    it("an idempotent request keeps its retry behaviour: 429/502/503/504 retryable, 500 not", function()
        for code, expected in pairs({ [429] = true, [500] = false, [502] = true, [503] = true, [504] = true }) do
            local res = client(scripted{ { status = code } }, { retries = 0 }):request{ url = "https://x.test/", idempotent = true }
            local e = http.status_error(res, "x")
            assert.equal(expected, e.retryable, code)
            assert.equal("x answered HTTP " .. code, e.message)
        end
    end)

    it("a 429 was refused unread: retryable even when the request is not idempotent", function()
        local res = client(scripted{ { status = 429 } }):request{ method = "POST", url = "https://x.test/", body = "x" }
        assert.is_true(http.status_error(res, "x").retryable)
    end)

    it("a response the pipeline did not make counts as not idempotent", function()
        local e = http.status_error({ status = 503, headers = {}, body = "" }, "x")
        assert.is_false(e.retryable)
    end)

    it("a network error or timeout after sending says the outcome is unknown, not retryable", function()
        for _, step in ipairs({
            { type = "network", message = "connection reset", sent = true },
            { type = "timeout", message = "read timeout", sent = true },
            { type = "network", message = "who knows" }, -- a transport that does not say: it may have been sent
        }) do
            local t = scripted{ step, { status = 200 } }
            local _, err = client(t, { retries = 3 }):request{ method = "GET", url = "https://x.test/capture" }
            assert.equal(1, #t.seen)
            assert.is_true(err.sent)
            assert.is_false(err.retryable)
            assert.equal(step.message .. "; the request was sent and may have been carried out, so its " .. OUTCOME, err.message)
        end
    end)

    it("a failure before sending is retried and says nothing of an unknown outcome", function()
        local t = scripted{ { type = "network", message = "connection refused", sent = false } }
        local _, err = client(t, { retries = 1 }):request{ method = "POST", url = "https://x.test/", body = "x" }
        assert.equal(2, #t.seen)
        assert.equal("connection refused", err.message)
        assert.is_true(err.retryable)
    end)
end)

describe("misuse raises before anything is sent", function()
    local cases = {
        { "url", { url = "https://x.test/a\r\nX-Injected: 1" } },
        { "url", { url = "https://x.test/a\nb" } },
        { "url", { url = "https://x.test/a\0b" } },
        { "method", { method = "GET\r\nX: y", url = "https://x.test/" } },
        { "method", { method = "get", url = "https://x.test/" } },
        { "method", { method = "", url = "https://x.test/" } },
        { "headers", { url = "https://x.test/", headers = { ["X-A"] = "v\r\nX-Injected: 1" } } },
        { "headers", { url = "https://x.test/", headers = { ["X-A"] = "v\0" } } },
        { "headers", { url = "https://x.test/", headers = { ["X-A\r\nX-B"] = "v" } } },
        { "headers", { url = "https://x.test/", headers = { ["X-A:"] = "v" } } },
        { "headers", { url = "https://x.test/", headers = { ["X-A"] = { "ok", "v\n" } } } },
        { "headers", { url = "https://x.test/", bearer = "tok\r\nX-Injected: 1" } },
    }
    for i, case in ipairs(cases) do
        it(("a bad %s (case %d)"):format(case[1], i), function()
            local t = scripted{ { status = 200 } }
            local ok, err = pcall(client(t).request, client(t), case[2])
            assert.is_false(ok)
            assert.matches("luapay.http: request: bad argument #1 '" .. case[1] .. "'", err, 1, true)
            assert.equal(0, #t.seen)
        end)
    end

    it("hands the caps to the transport, checked", function()
        local t = scripted{ { status = 200 } }
        assert(client(t):request{ url = "https://x.test/", max_head_bytes = 100, max_body_bytes = 1000 })
        assert.equal(100, t.seen[1].max_head_bytes)
        assert.equal(1000, t.seen[1].max_body_bytes)
        assert.has_error(function() client(t):request{ url = "https://x.test/", max_body_bytes = 0 } end)
        assert.has_error(function() client(t):request{ url = "https://x.test/", max_head_bytes = "1k" } end)
    end)
end)

describe("the request's credentials never reach an error", function()
    local USER, PASS, TOKEN, KEY = "merchant-7", "p4ss:w0rd/+x", "tok-3b9f1c", "ApiKey k-7f3e2a"
    local B64 = require("luapay.core").base64_encode(USER .. ":" .. PASS)

    -- A server that echoes the request it got, in its body and X-Request-Id.
    local function echo(status)
        return function(req)
            local lines = { req.method .. " " .. req.url }
            for k, v in pairs(req.headers) do lines[#lines + 1] = k .. ": " .. v end
            local text = table.concat(lines, "\n")
            return { status = status, headers = { ["x-request-id"] = req.headers.Authorization }, body = text }
        end
    end

    local function assert_clean(err, ...)
        for _, s in ipairs({ err.message, err.raw, err.request_id, tostring(err) }) do
            for _, secret in ipairs({ ... }) do
                assert.is_nil(s:find(secret, 1, true), ("%q leaks in %q"):format(secret, s))
            end
        end
    end

    it("Basic user:password, plain and base64, from status_error's raw, request_id and tostring", function()
        local res = client(scripted{ echo(502) }):request{ url = "https://x.test/", basic = { USER, PASS },
            headers = { ["X-Echo"] = USER .. ":" .. PASS .. " and " .. PASS } }
        local e = http.status_error(res, "x")
        assert.matches("[REDACTED]", e.raw, 1, true)
        assert.matches("GET https://x.test/", e.raw, 1, true) -- the rest stays, for diagnosis
        assert_clean(e, B64, USER .. ":" .. PASS, PASS)
    end)

    it("a Bearer token and a caller's own Authorization header, whatever its case", function()
        local e = http.status_error(client(scripted{ echo(500) }):request{ url = "https://x.test/", bearer = TOKEN }, "x")
        assert_clean(e, TOKEN)
        e = http.status_error(client(scripted{ echo(500) }):request{ url = "https://x.test/",
            headers = { authorization = KEY, ["X-Copy"] = "k-7f3e2a" } }, "x")
        assert_clean(e, KEY, "k-7f3e2a")
    end)

    it("no part of a secret is left where the snippet is cut", function()
        local res = client(scripted{ function(req)
            return { status = 500, headers = {}, body = ("x"):rep(290) .. req.headers.Authorization }
        end }):request{ url = "https://x.test/", basic = { USER, PASS } }
        local e = http.status_error(res, "x")
        assert.is_nil(e.raw:find(B64:sub(1, 4), 1, true))
        -- nor of a token longer than the snippet (a JWT)
        local jwt = ("eyJhbGciOiJSUzI1NiJ9."):rep(40)
        res = client(scripted{ function(req)
            return { status = 500, headers = {}, body = ("x"):rep(200) .. req.headers.Authorization }
        end }):request{ url = "https://x.test/", bearer = jwt }
        e = http.status_error(res, "x")
        assert.is_nil(e.raw:find("eyJhbGciOiJSUzI1NiJ9", 1, true), e.raw)
    end)

    it("from the errors the pipeline builds out of a transport's error or raise", function()
        local _, err = client(scripted{ function(req)
            return nil, { type = "network", message = "peer said: " .. req.headers.Authorization,
                raw = req.headers.Authorization, sent = true }
        end }):request{ url = "https://x.test/", basic = { USER, PASS } }
        assert_clean(err, B64, PASS)
        _, err = client(function(req) error("boom " .. req.headers.Authorization) end):request{ url = "https://x.test/", bearer = TOKEN }
        assert_clean(err, TOKEN)
    end)

    it("and from what a provider builds with http.redact", function()
        local res = client(scripted{ echo(200) }):request{ url = "https://x.test/", basic = { USER, PASS }, secrets = { "sig-secret" },
            headers = { ["X-Sig"] = "sig-secret" } }
        local text = http.redact(res, res.body)
        for _, secret in ipairs({ B64, PASS, "sig-secret" }) do assert.is_nil(text:find(secret, 1, true)) end
        assert.equal("plain", http.redact({}, "plain"))
    end)
end)

describe("http.check_verify_option", function()
    it("lets verify be switched off for loopback hosts only", function()
        for _, url in ipairs({ "https://127.0.0.1:8443/api", "http://127.9.8.7/", "https://localhost/x", "https://LOCALHOST:1/",
            "https://[::1]:8443/" }) do
            http.check_verify_option(false, url, "provider.new")
        end
        http.check_verify_option(nil, "https://api.example.com/", "provider.new")
        http.check_verify_option(true, "https://api.example.com/", "provider.new")
    end)

    it("raises a misuse error naming the function for any other host", function()
        for _, url in ipairs({ "https://api.ecommpay.com/v2", "https://10.0.0.1/", "https://127.0.0.1.example.com/",
            "https://localhost.example.com/", "https://[::2]/", "https://user:Pa55@api.example.com/",
            "https://127.0.0.1@evil.example/" }) do
            local ok, err = pcall(http.check_verify_option, false, url, "trustpay.new")
            assert.is_false(ok, url)
            assert.matches("trustpay.new: verify = false is allowed only for a loopback URL (the sandbox), not for host '", err, 1, true)
            assert.not_matches("Pa55", err)
        end
        assert.has_error(function() http.check_verify_option("no", "https://127.0.0.1/", "x.new") end,
            "x.new: option 'verify' must be a boolean, got string")
        assert.has_error(function() http.check_verify_option(false, nil, "x.new") end)
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

    it("says whether an attempt before the last one may have reached the server (delivered_before)", function()
        local timeout = { type = "timeout", message = "read timeout", sent = true }
        local unknown = { type = "network", message = "transport failed" } -- sent not known: it may have been
        for _, case in ipairs({
            { "one attempt", { { status = 200 } }, false },
            { "refused twice, then an answer", { refused, refused, { status = 200 } }, false },
            { "refused, then a reset", { refused, reset }, false },
            { "a reset, then an answer", { reset, { status = 200 } }, true },
            { "a 503 (a proxy's or the server's), then an answer", { { status = 503 }, { status = 200 } }, true },
            { "a read timeout, then refused", { timeout, refused }, true },
            { "a failure of unknown reach, then an answer", { unknown, { status = 201 } }, true },
        }) do
            local c = client(scripted(case[2]), { retries = #case[2] - 1 })
            local res, err = c:request{ url = "https://x.test/", idempotent = true }
            assert.equal(#case[2], (res or err).attempts, case[1])
            assert.equal(case[3], (res or err).delivered_before, case[1])
        end
        -- and the error built from such a response says it too
        local c = client(scripted{ reset, { status = 504 } }, { retries = 1 })
        local res = c:request{ url = "https://x.test/", idempotent = true }
        assert.is_true(http.status_error(res, "x").delivered_before)
    end)

    it("marks the failure of a request that may have been carried out: outcome_unknown, may_have_happened", function()
        local err = http.outcome_unknown(errors.new("network", "reset", { retryable = true }), "ask x:status()")
        assert.same({ true, false }, { err.sent, err.retryable })
        assert.matches("reset; the request was sent and may have been carried out, so its outcome is unknown:"
            .. " do not resend it blindly; ask x:status()", err.message, 1, true)
        for _, retryable in ipairs({ true, false }) do
            err = http.may_have_happened(errors.new("http", "HTTP 502", { retryable = retryable }),
                "X may have taken it", "ask x:status()")
            assert.same({ true, retryable }, { err.sent, err.retryable })
            assert.equal("HTTP 502; X may have taken it: ask x:status()", err.message)
        end
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
        local t = scripted{ { status = 429, headers = { ["retry-after"] = "3" } },
            { status = 503, headers = { ["retry-after"] = "120" } }, { status = 200 } }
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

describe("http.new's options (the transport options every provider forwards)", function()
    local provider = require "luapay.provider"

    it("raises on a bad value, naming the option and the caller's function", function()
        local bad = {
            transport = 1, timeout_ms = 0, connect_timeout_ms = 1.5, deadline_ms = "1", keepalive_ms = -1,
            retries = -1, verify = "yes", ca_file = "", proxy = 42, user_agent = "a\r\nX-Injected: 1",
            pool_size = 0, max_head_bytes = 2 ^ 33, max_body_bytes = 0, sleep = 1, clock = "now", random = {},
        }
        for name, value in pairs(bad) do
            local ok, err = pcall(http.new, { [name] = value })
            assert.is_false(ok, name)
            assert.matches("luapay.http.new: option '" .. name .. "' must be ", err, 1, true)
        end
        local ok, err = pcall(http.new, { pool_size = 0 }, "trustly.new")
        assert.is_false(ok)
        assert.matches("trustly.new: option 'pool_size' must be a whole number", err, 1, true)
    end)

    it("names every provider transport option (the one set) as an option it takes", function()
        for _, name in ipairs(provider.TRANSPORT_OPTIONS) do
            if name ~= "http" then
                local ok, err = pcall(http.new, { [name] = setmetatable({}, {}) })
                -- a table is a bad value for each of them but transport (then: no request method)
                assert.is_false(ok, name)
                assert.matches("option '" .. name .. "' must be ", err, 1, true)
            end
        end
    end)

    it("refuses, next to a transport passed in, the options that configure the transport luapay builds", function()
        for name, value in pairs({ ca_file = "/x.pem", proxy = "http://127.0.0.1:3128", pool_size = 2,
            keepalive_ms = 5000, verify = false }) do
            local ok, err = pcall(http.new, { transport = scripted{}, [name] = value })
            assert.is_false(ok, name)
            assert.matches("luapay.http.new: option '" .. name, err, 1, true)
            assert.matches("cannot be given with 'transport'", err, 1, true)
        end
    end)

    it("gives a transport passed in the client's caps, user agent and timeouts with every request", function()
        local t = scripted{ { status = 200 } }
        local c = client(t, { max_head_bytes = 100, max_body_bytes = 200, user_agent = "ua/1", timeout_ms = 900,
            connect_timeout_ms = 300 })
        assert(c:request{ url = "https://x.test/" })
        assert.equal(100, t.seen[1].max_head_bytes)
        assert.equal(200, t.seen[1].max_body_bytes)
        assert.equal("ua/1", t.seen[1].headers["User-Agent"])
        assert.equal(900, t.seen[1].timeout_ms)
        assert.equal(300, t.seen[1].connect_timeout_ms)
        assert(c:request{ url = "https://x.test/", max_body_bytes = 50 })
        assert.equal(50, t.seen[2].max_body_bytes)
    end)
end)
