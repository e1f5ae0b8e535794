-- Both transports against real servers on loopback: the core's libcurl
-- client from this process, and the cosocket transport inside the sandbox's
-- nginx (driven over HTTP through /t/run). The same scenarios
-- (spec/support/transport_cases.lua) must give the same observations.
local core = require "luapay.core"
local util = require "support.util"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local cases = require "support.transport_cases"
local certs = require "support.certs"

local ROUTES = { ["/t/"] = "support.transport_handlers" }

local function unique_key()
    return core.hex_encode(core.random_bytes(8))
end

describe("transports against the sandbox", function()
    local sb, tls, env

    setup(function()
        tls = certs.generate()
        sb = assert(sandbox.start{ routes = ROUTES, lua_path = "spec/?.lua", tls = { cert = tls.cert, key = tls.key },
            trusted_ca = tls.ca })
        env = { url = sb.url, tls_url = sb.tls_url }
    end)

    teardown(function()
        tls.cleanup()
        util.stop_sandbox(sb)
    end)

    -- Runs a case here (libcurl) or inside nginx (cosockets).
    local runners = {
        libcurl = function(name)
            env.key = unique_key()
            return cases[name](env)
        end,
        cosocket = function(name)
            local c = core.http_client{ timeout_ms = 20000 }
            local res = assert(c:request{ url = sb.url .. "/t/run?case=" .. name .. "&key=" .. unique_key() })
            c:close()
            assert.equal(200, res.status, res.body)
            return assert(http.decode_json(res.body))
        end,
    }

    for transport, run in pairs(runners) do
        describe("through " .. transport, function()
            it("gives status codes as responses, with lower-cased and repeated headers", function()
                local out = run("status_and_headers")
                for i, code in ipairs({ 200, 404, 500, 503 }) do
                    assert.equal(code, out[i].status)
                    assert.same({ "one", "two" }, out[i].x_test)
                    assert.equal("status " .. code, out[i].body)
                    assert.equal("text/plain", out[i].content_type)
                end
            end)

            it("receives a 5 MB binary body intact", function()
                local out = run("big_body")
                assert.equal(5242880, out.length)
                assert.equal(out.expected_sha256, out.sha256)
            end)

            it("reuses one connection for 100 requests (the server's connection number)", function()
                local out = run("keepalive")
                assert.equal(1, out.distinct_connections)
                assert.is_true(out.requests_on_last >= 100)
            end)

            it("keeps the request's credentials out of the error when a server echoes them", function()
                local out = run("echo_credentials")
                assert.is_true(out.echoed) -- the server did echo them
                assert.equal(3, out.redacted)
                assert.same({}, out.leaks)
            end)

            it("holds the caps set on the client, to the byte", function()
                local out = run("client_caps")
                assert.equal(1000, out.got[1])
                assert.same({ type = "http", message = "the response body is larger than max_body_bytes (1000 bytes)", sent = true,
                    http_status = 200 }, out.got[2])
                assert.same({ type = "http", message = "the response head is larger than max_head_bytes (100 bytes)" }, out.got[3])
                assert.same({ "max_body_bytes", "max_head_bytes", "max_body_bytes" }, out.bad)
            end)

            it("gives a read timeout as a timeout error", function()
                local out = run("read_timeout")
                assert.equal("timeout", out.type)
                assert.matches("^read timeout", out.message)
                assert.is_true(out.sent)
            end)

            it("gives a refused port as a network error that was not sent", function()
                local out = run("refused")
                assert.equal("network", out.type)
                assert.matches("refused", out.message:lower())
                assert.is_false(out.sent)
            end)

            it("reads a chunked body", function()
                local out = run("chunked")
                assert.equal("part1-part2", out.body)
                assert.equal("chunked", out.transfer_encoding)
            end)

            it("sends JSON, query strings and basic auth as the server sees them", function()
                local out = run("json_and_query")
                assert.equal(200, out.status)
                assert.equal("POST", out.method)
                assert.equal("list=x&list=y&n=42&q=a%20b%26c%3Dd%2F%C3%A9", out.args)
                assert.equal('{"big":123456789012345,"items":[]}', out.body)
                assert.equal("application/json; charset=utf-8", out.content_type)
                assert.equal("yes", out.custom)
                assert.equal("Basic " .. core.base64_encode("merchant:s3cret"), out.authorization)
            end)

            it("sends each of a client's requests in turn as it was given, nothing kept from the one before", function()
                local out = run("requests_in_turn")
                local host = sb.url:match("^http://(.*)$")
                local function seen(method, args, body, accept, ua, custom, ctype, length)
                    return { method = method, args = args, body = body, accept = accept, user_agent = ua, custom = custom,
                        content_type = ctype, content_length = length, host = host }
                end
                local json = "application/json"
                assert.same({
                    seen("GET", "", "", json, "turns/1"),
                    seen("POST", "a=1", "b1", "text/plain", "turns/1", "one", "text/plain", "2"),
                    seen("GET", "", "", json, "turns/1"),
                    seen("PUT", "", "p", "text/csv", "mine", nil, "text/csv", "1"),
                    seen("GET", "", "", json, "turns/1"),
                    seen("DELETE", "a=1", '{"n":1}', json, "turns/1", nil, json .. "; charset=utf-8", "7"),
                    seen("GET", "a=2", "", json, "turns/1", { "x", "y" }),
                }, out)
            end)

            it("does not resend a POST once the server has received it, even on a reused connection", function()
                local out = run("post_not_retried")
                assert.equal("network", out.type)
                assert.equal(1, out.attempts)
                assert.equal(1, out.server_saw)
                if transport == "libcurl" then -- it went out on the kept-alive connection; libcurl's resend was stopped
                    assert.matches("not sent again: the server may have received it", out.message, 1, true)
                end
            end)

            it("does not resend a GET not declared idempotent after a reused connection dropped it (TrustPay refunds)", function()
                local out = run("get_not_retried")
                for i = 1, 2 do
                    assert.equal("network", out.errors[i].type)
                    assert.equal(1, out.errors[i].attempts)
                    assert.is_true(out.errors[i].sent)
                end
                assert.same({ 1, 1 }, out.server_saw)
            end)

            -- Neither transport can send it twice (libcurl's second attempt is stopped before it
            -- goes out, cosockets never resend: post_not_retried, get_not_retried, spec 19), so
            -- it shares the kept-alive connection.
            it("sends requests not declared idempotent on one kept-alive connection", function()
                local out = run("fresh_connections")
                assert.is_string(out.connections[1], out.message)
                assert.is_true(out.connections[1] == out.connections[2] and out.connections[2] == out.connections[3])
            end)

            it("raises on CR, LF or NUL in the URL, method or a header, before anything is sent", function()
                local out = run("transport_misuse")
                assert.same({ "url", "url", "url", "method", "method", "headers", "headers", "headers" }, out.fields)
                assert.equal(0, out.server_saw)
            end)

            it("refuses verify = false for any host but a loopback one, before anything is sent", function()
                local out = run("verify_off_elsewhere")
                for i = 1, 3 do
                    assert.equal("config", out.refused[i].type, out.refused[i].message)
                    assert.is_false(out.refused[i].sent)
                    assert.matches("verify = false is allowed only for loopback hosts", out.refused[i].message, 1, true)
                end
                assert.equal(200, out.loopback)
            end)

            it("resends an idempotent POST, which the server then sees each time", function()
                local out = run("idempotent_retried")
                assert.equal(3, out.attempts)
                assert.equal(3, out.server_saw)
            end)

            it("does not reuse a connection that idled longer than keepalive_ms", function()
                local out = run("keepalive_ms")
                assert.is_false(out.short_reused)
                assert.is_true(out.default_reused)
            end)

            it("keeps at most pool_size idle connections", function()
                local out = run("pool_size")
                assert.is_nil(out.message)
                assert.is_true(out.reused_with_1 <= 1, "a pool of 1 kept both connections")
                assert.equal(2, out.reused_with_2)
            end)

            it("retries an idempotent request through 503s to success", function()
                local out = run("flaky_idempotent")
                assert.equal(200, out.status)
                assert.equal(3, out.attempts)
                assert.equal(3, out.attempt_seen)
            end)
        end)
    end

    describe("TLS", function()
        it("libcurl rejects a certificate from an unknown CA by default, saying how to pass one", function()
            local out = cases.tls_self_signed(env)
            assert.equal("tls", out.type)
            assert.matches("ca_file", out.message)
            assert.is_false(out.sent)
        end)

        it("libcurl accepts it with the CA file, verification still on", function()
            local out = cases.tls_self_signed(env, { ca_file = tls.ca })
            assert.equal(200, out.status)
        end)

        it("cosockets verify against lua_ssl_trusted_certificate", function()
            local c = core.http_client{}
            local res = assert(c:request{ url = sb.url .. "/t/run?case=tls_self_signed" })
            assert.equal(200, http.decode_json(res.body).status)
        end)

        -- A server that speaks TLS 1.1 only, and clients whose OpenSSL would
        -- allow it (Debian's default security level refuses TLS < 1.2 by
        -- itself; a permissive OPENSSL_CONF, as some hosts have, does not):
        -- luapay still refuses it.
        describe("TLS 1.2 at least", function()
            local old_port, dir, nginx_wrapper

            local write = util.write

            setup(function()
                dir = tls.dir
                write(dir .. "/permissive.cnf", table.concat({
                    "openssl_conf = openssl_init", "[openssl_init]", "ssl_conf = ssl_sect", "[ssl_sect]",
                    "system_default = system_default_sect", "[system_default_sect]",
                    "CipherString = DEFAULT:@SECLEVEL=0", "MinProtocol = TLSv1", "" }, "\n"))
                nginx_wrapper = dir .. "/nginx"
                write(nginx_wrapper, ("#!/bin/sh\nOPENSSL_CONF=%s/permissive.cnf exec /usr/sbin/nginx \"$@\"\n"):format(dir))
                os.execute("chmod +x " .. nginx_wrapper)
                old_port = sandbox.random_port()
            end)

            local function tls11_server()
                return ([[
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.1;
    ssl_ciphers DEFAULT:@SECLEVEL=0;
    location / { return 200 "TLS 1.1"; }
  }]]):format(old_port, tls.cert, tls.key)
            end

            it("libcurl refuses a server that offers only TLS 1.1", function()
                local old = assert(sandbox.start{ routes = ROUTES, lua_path = "spec/?.lua", http_config = tls11_server() })
                local script = dir .. "/old_tls.lua"
                write(script, ([[
                    local core = require "luapay.core"
                    local res, err = core.http_client{ ca_file = %q }:request{ url = "https://127.0.0.1:%d/" }
                    io.write(res and ("HTTP " .. res.status) or (err.type .. ": " .. err.message))
                ]]):format(tls.ca, old_port))
                local lua = util.LUA
                local p = io.popen(("OPENSSL_CONF=%s/permissive.cnf LUA_CPATH='%s/?.so' %s %s 2>&1"):format(
                    dir, os.getenv("LUAPAY_BUILD") or util.PLAIN_BUILD, lua, script))
                local out = p:read("*a")
                p:close()
                assert(old:stop())
                assert.matches("^tls: TLS failure", out)
            end)

            it("the sandbox's cosockets refuse it (lua_ssl_protocols TLSv1.2 TLSv1.3)", function()
                local old = assert(sandbox.start{ routes = ROUTES, lua_path = "spec/?.lua", trusted_ca = tls.ca,
                    nginx = nginx_wrapper, http_config = tls11_server() })
                local c = core.http_client{}
                local res = assert(c:request{ url = old.url .. "/t/run?case=tls_self_signed&tls_url="
                    .. http.escape("https://127.0.0.1:" .. old_port) })
                assert(old:stop())
                local out = http.decode_json(res.body)
                assert.equal("tls", out.type, res.body)
            end)
        end)

        it("cosockets reject the certificate when nginx does not trust its CA, naming the directive", function()
            local other = assert(sandbox.start{ routes = ROUTES, lua_path = "spec/?.lua" })
            local c = core.http_client{}
            -- the case inside `other` calls the first sandbox's TLS port
            local res = assert(c:request{ url = other.url .. "/t/run?case=tls_self_signed&tls_url=" .. http.escape(sb.tls_url) })
            assert(other:stop())
            local out = http.decode_json(res.body)
            assert.equal(200, res.status, res.body)
            assert.equal("tls", out.type, out.message)
            assert.matches("lua_ssl_trusted_certificate", out.message)
        end)
    end)

    describe("inside nginx", function()
        it("refuses ca_file and proxy when a client is built, saying what to do instead", function()
            local c = core.http_client{ timeout_ms = 20000 }
            local res = assert(c:request{ url = sb.url .. "/t/run?case=nginx_refusals&key=" .. unique_key() })
            c:close()
            local out = assert(http.decode_json(res.body))
            for _, who in ipairs({ "luapay.http.new", "ecommpay.new", "luapay.http.cosocket.new" }) do
                local prefix = who == "luapay.http.new" and "" or who:match("^(%w+)%.new$") or "cosocket"
                local ca, proxy = out[(prefix ~= "" and prefix .. "_" or "") .. "ca_file"],
                    out[(prefix ~= "" and prefix .. "_" or "") .. "proxy"]
                assert.matches(who .. ": option 'ca_file' cannot be honoured inside nginx", ca, 1, true)
                assert.matches("lua_ssl_trusted_certificate", ca, 1, true)
                assert.matches(who .. ": option 'proxy' cannot be honoured inside nginx", proxy, 1, true)
                assert.matches("outside nginx (libcurl)", proxy, 1, true)
            end
            assert.equal("ua-spec", out.user_agent)
        end)

        it("refuses to work in a phase without cosockets, naming the phase", function()
            local key = unique_key()
            local c = core.http_client{}
            assert.equal(200, c:request{ url = sb.url .. "/t/phase?key=" .. key }.status)
            local result
            for _ = 1, 100 do -- the log phase runs after the answer was sent
                result = c:request{ url = sb.url .. "/t/result?key=" .. key }.body
                if result ~= "" then break end
                core.sleep(0.01)
            end
            assert.equal("config: nginx's 'log' phase has no cosockets, and luapay never blocks a worker:"
                .. " call the provider from rewrite, access or content, or from a timer (ngx.timer.at)", result)
        end)

        it("serves two handlers in flight at once on one worker", function()
            local key = unique_key()
            local url = sb.url .. "/t/run?case=barrier&key=" .. key
            local out = os.tmpname()
            -- one request from a background curl process, one from here
            os.execute("env -u LD_PRELOAD curl -s -m 10 -o " .. out .. " '" .. url .. "' &")
            local res = assert(core.http_client{}:request{ url = url })
            local other
            for _ = 1, 500 do
                local f = io.open(out, "rb")
                other = f and f:read("*a") or ""
                if f then f:close() end
                if other ~= "" then break end
                core.sleep(0.01)
            end
            os.remove(out)
            assert.equal("together", http.decode_json(res.body).body)
            assert.equal("together", http.decode_json(other).body)
        end)
    end)
end)

describe("the pipeline with the real libcurl transport", function()
    it("goes through the proxy it is given (the sandbox answering absolute URIs)", function()
        local sb = assert(sandbox.start{ routes = ROUTES, lua_path = "spec/?.lua" })
        local res, err = http.new{ proxy = sb.url, retries = 0 }:request{ url = "http://proxied.invalid/t/echo" }
        assert.is_table(res, err and err.message)
        assert.equal(200, res.status)
        assert.equal("proxied.invalid", res.json.headers.host)
        -- without it, the name does not resolve
        local _, derr = http.new{ retries = 0 }:request{ url = "http://proxied.invalid/t/echo" }
        assert.equal("network", derr.type)
        util.stop_sandbox(sb)
    end)

    it("refuses keepalive_ms below a second (libcurl counts whole seconds)", function()
        assert.has_error(function() http.new{ keepalive_ms = 500 } end,
            "luapay.http.new: option 'keepalive_ms' must be at least 1000 outside nginx: libcurl counts idle time in whole seconds")
        assert.has_error(function() core.http_client{ keepalive_ms = 500 } end,
            "http_client: bad argument #1 'keepalive_ms' (at least 1000 expected: libcurl counts idle time in whole seconds)")
    end)

    it("retries a refused connection and succeeds once the server is up", function()
        -- a free port: nothing answers there yet
        local port
        repeat
            port = sandbox.random_port()
            local _, err = core.http_client{}:request{ url = "http://127.0.0.1:" .. port .. "/" }
        until err and err.sent == false
        local sb
        local client = http.new{ retries = 3, random = function() return 0 end,
            sleep = function() -- the server comes up during the first wait
                if not sb then sb = assert(sandbox.start{ routes = ROUTES, lua_path = "spec/?.lua", port = port }) end
            end }
        local res, err = client:request{ method = "POST", url = "http://127.0.0.1:" .. port .. "/t/echo", body = "once" }
        if sb then assert(sb:stop()) end
        assert.is_nil(err)
        assert.equal(200, res.status)
        assert.equal(2, res.attempts)
        assert.equal("once", res.json.body)
    end)

    it("honours the deadline across a slow answer", function()
        local sb = assert(sandbox.start{ routes = ROUTES, lua_path = "spec/?.lua" })
        local client = http.new{ timeout_ms = 10000, deadline_ms = 700, retries = 3 }
        local res, err = client:request{ url = sb.url .. "/t/slow?ms=5000", idempotent = true }
        assert(sb:stop())
        assert.is_nil(res)
        assert.equal("timeout", err.type)
        assert.equal(1, err.attempts) -- no time was left for a second attempt
        assert.is_true(err.elapsed < 3, "took " .. err.elapsed .. " s")
    end)
end)
