-- The fault matrix: the same faults against both transports (the libcurl
-- client from this process, cosockets inside the sandbox's nginx through
-- /t/matrix), each for a GET refund, a POST that is not idempotent and a
-- POST that is. The server counts how often each request arrived: never more
-- often than the caller sent it, unless the call is idempotent. Before each
-- call a kept-alive connection is left in the client, so the old keep-alive
-- resend (a reused connection dropped after the server read the request)
-- would show, every time.
local core = require "luapay.core"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local faults = require "support.transport_faults"

local OUTCOME = "its outcome is unknown: do not resend it blindly; find out with a status call or from the provider's notification"

-- What each fault must give: an error (type, and a text in its message) or
-- a response (status); capped: an answer beyond a size cap.
local EXPECT = {
    drop = { type = "network" },
    reset = { type = "network", message = "reset" },
    hang = { type = "timeout" },
    trickle = { type = "timeout" },
    huge_head = { type = "http", message = "the response head is larger than max_head_bytes (65536 bytes)", capped = true },
    huge_body = { type = "http", message = "the response body is larger than max_body_bytes (1048576 bytes)", capped = true },
    endless_body = { type = "http", message = "the response body is larger than max_body_bytes (1048576 bytes)", capped = true },
    busy = { status = 503, first_wait = 0.5 },
    busy_retry_after = { status = 503, first_wait = 1 },
    bad_json = { status = 200 },
}

describe("the fault matrix", function()
    local sb

    setup(function()
        sb = assert(sandbox.start{ routes = { ["/t/"] = "support.transport_handlers" }, lua_path = "spec/?.lua" })
    end)

    -- nginx logs a reset cosocket connection at level error, whatever
    -- lua_socket_log_errors says: those lines are the reset fault at work.
    teardown(function()
        local problems = {}
        for _, line in ipairs(sb:errors()) do
            if not (line:find("(104: Connection reset by peer)", 1, true) and line:find("fault=reset", 1, true)) then
                problems[#problems + 1] = line
            end
        end
        assert(sb:stop())
        assert.same({}, problems, "the sandbox logged errors:\n" .. table.concat(problems, "\n"))
    end)

    local function key()
        return core.hex_encode(core.random_bytes(6))
    end

    local runners = {
        libcurl = function(fault, variant)
            return faults.run({ url = sb.url, key = key() }, fault, variant)
        end,
        cosocket = function(fault, variant)
            local c = core.http_client{ timeout_ms = 30000 }
            local res = assert(c:request{ url = ("%s/t/matrix?fault=%s&variant=%s&key=%s"):format(sb.url, fault, variant, key()) })
            c:close()
            assert.equal(200, res.status, res.body)
            return assert(http.decode_json(res.body))
        end,
    }

    for _, transport in ipairs({ "libcurl", "cosocket" }) do
        for _, fault in ipairs(faults.NAMES) do
            for _, variant in ipairs({ "get", "post", "post_idempotent" }) do
                local expect = EXPECT[fault]
                it(("%s, %s, %s"):format(transport, fault, variant), function()
                    local out = runners[transport](fault, variant)
                    local idempotent = out.idempotent

                    -- counted at the server: never more than sent, unless idempotent
                    assert.is_true(out.attempts >= 1)
                    if idempotent then
                        assert.is_true(out.arrivals >= 1)
                    else
                        assert.is_true(out.arrivals <= out.attempts,
                            ("arrived %d times, sent %d times"):format(out.arrivals, out.attempts))
                        assert.is_true(out.arrivals <= 1)
                    end
                    -- bounded by the caller's deadline, whatever the server does
                    assert.is_true(out.elapsed < 3 * out.deadline, ("took %.1f s"):format(out.elapsed))

                    if expect.type then
                        local e = out.error
                        assert.is_table(e, "expected an error, got HTTP " .. tostring(out.status))
                        assert.equal(expect.type, e.type, e.message)
                        assert.is_true(e.sent)
                        if expect.message then assert.matches(expect.message, e.message, 1, true) end
                        if idempotent then
                            -- resent where safe; an answer beyond a cap is never resent
                            assert.equal(not expect.capped, e.retryable)
                        else
                            assert.equal(1, out.attempts)
                            assert.is_false(e.retryable)
                            assert.matches(OUTCOME, e.message, 1, true)
                        end
                        if expect.capped then
                            assert.equal(1, out.attempts)
                            assert.equal(1, out.arrivals)
                            -- what was read stays within the cap: no 32 MiB, no 256 MiB in memory
                            assert.is_true(out.grown_kb < 32 * 1024, ("peak memory grew by %d kB"):format(out.grown_kb))
                            -- and the connection is not used again
                            if idempotent then assert.are_not.equal(out.conn_before, out.conn_after) end
                        end
                    else
                        assert.is_nil(out.error, out.error and out.error.message)
                        assert.equal(expect.status, out.status)
                        local se = out.status_error
                        if expect.status >= 500 then
                            assert.is_true(se.sent)
                            if idempotent then
                                assert.is_true(out.attempts >= 2)
                                assert.equal(expect.first_wait, out.slept[1]) -- Retry-After honoured
                                assert.is_true(se.retryable)
                            else
                                assert.equal(1, out.attempts)
                                assert.is_false(se.retryable)
                                assert.matches(OUTCOME, se.message, 1, true)
                            end
                        else
                            assert.equal(1, out.attempts)
                            assert.equal(1, out.arrivals)
                            assert.is_true(out.json_error)
                        end
                    end
                end)
            end
        end
    end
end)
