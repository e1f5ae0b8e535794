--- The fault matrix's client side (spec/19-fault_matrix_spec.lua): one call
-- through the pipeline against a misbehaving endpoint of the sandbox
-- (spec/support/transport_handlers.lua, /t/fault/<name>), run with the
-- libcurl client (spec process) or with cosockets (inside nginx, /t/matrix).
-- Returns plain data: what the caller saw, how often the server saw the
-- request arrive, how long it took and how much the process's peak memory
-- grew.
local http = require "luapay.http"
local core = require "luapay.core"

local faults = {}

faults.DEADLINE_MS = 1000
-- 5xx faults: time for the (recorded, skipped) waits of a Retry-After: 1
faults.RETRY_DEADLINE_MS = 5000
faults.MAX_BODY_BYTES = 1024 * 1024 -- per request; the head keeps the default cap (64 KiB)

faults.NAMES = { "drop", "reset", "hang", "trickle", "huge_head", "huge_body", "endless_body", "busy",
    "busy_retry_after", "bad_json" }

-- A GET refund (TrustPay), a POST that the provider does not deduplicate,
-- and one it does (declared idempotent).
faults.VARIANTS = {
    get = { method = "GET" },
    post = { method = "POST", body = "refund 10.00 EUR" },
    post_idempotent = { method = "POST", body = "payment_id=p-1", idempotent = true },
}

local function now()
    if ngx then
        ngx.update_time()
        return ngx.now()
    end
    return core.monotime()
end

-- The process's peak resident memory (kB), and a reset of it (Linux).
local function peak_kb()
    local f = assert(io.open("/proc/self/status"))
    local status = f:read("*a")
    f:close()
    return tonumber(status:match("VmHWM:%s*(%d+)"))
end

local function reset_peak()
    local f = assert(io.open("/proc/self/clear_refs", "w"))
    f:write("5")
    f:close()
end

local function connection_of(res)
    return res and res.body:match("^(%d+) ")
end

function faults.run(env, fault, variant)
    local v = assert(faults.VARIANTS[variant], variant)
    -- waits are recorded and skipped, on a clock that counts them
    local offset, slept = 0, {}
    local deadline_ms = fault:match("^busy") and faults.RETRY_DEADLINE_MS or faults.DEADLINE_MS
    local c = http.new{
        deadline_ms = deadline_ms, retries = 2, random = function() return 1 end,
        clock = function() return now() + offset end,
        sleep = function(s) slept[#slept + 1] = s; offset = offset + s end,
    }
    local id = env.key .. "-" .. fault .. "-" .. variant
    -- a kept-alive connection the call could take (and libcurl resend on)
    local before = c:request{ url = env.url .. "/t/conn", idempotent = true }

    collectgarbage()
    collectgarbage()
    reset_peak()
    local peak = peak_kb()
    local started = now()
    local out
    do -- the answer is let go of before the next requests
        local res, err = c:request{
            method = v.method, url = env.url .. "/t/fault/" .. fault, body = v.body, idempotent = v.idempotent,
            headers = { ["X-Fault-Id"] = id }, max_body_bytes = faults.MAX_BODY_BYTES,
        }
        out = { elapsed = now() - started, grown_kb = peak_kb() - peak, slept = slept, idempotent = v.idempotent == true,
            deadline = deadline_ms / 1000 }
        if res then
            out.status, out.attempts, out.json_error = res.status, res.attempts, res.json_error ~= nil
            local e = http.status_error(res, "the fault server")
            out.status_error = { retryable = e.retryable, sent = e.sent, message = e.message }
        else
            out.attempts = err.attempts
            out.error = { type = err.type, message = err.message, sent = err.sent, retryable = err.retryable,
                http_status = err.http_status }
        end
    end

    local after = c:request{ url = env.url .. "/t/conn", idempotent = true }
    out.conn_before, out.conn_after = connection_of(before), connection_of(after)
    out.arrivals = tonumber(c:request{ url = env.url .. "/t/count?key=" .. id }.body)
    c:close()
    return out
end

return faults
