-- The cosocket transport's response-head parsing over random heads (issue
-- 16): random well-formed and mutated answers served byte for byte over
-- loopback (spec/support/head_handlers.lua) to the cosocket transport
-- inside the sandbox's nginx. Each call gives a response or an error
-- (never raises), within its deadline, within its caps; a well-formed
-- answer gives the same status, headers and body as the libcurl transport.
-- Seeded: a failure names its seed. LUAPAY_PROPERTY_RUNS sets the count.
local core = require "luapay.core"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local heads = require "support.head_handlers"
local util = require "support.util"

local property = require "support.property"
local RUNS, rng, pick = property.RUNS, property.rng, property.pick

local function unhex(h) return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)) end

local function mutate(R, s)
    local n = #s
    local i = R(1, math.max(n, 1))
    local k = R(1, 5)
    if k == 1 and n > 0 then
        return s:sub(1, i - 1) .. string.char((s:byte(i) + R(1, 255)) % 256) .. s:sub(i + 1)
    elseif k == 2 and n > 0 then
        return s:sub(1, i - 1) .. s:sub(i + R(1, 3))
    elseif k == 3 then
        return s:sub(1, i - 1) .. pick(R, { "\r", "\n", "\r\n", "\0", ":", " ", "\t", "\r\n\r\n", string.char(R(0, 255)) }) .. s:sub(i)
    elseif k == 4 then
        return s:sub(1, R(0, n)) -- cut short
    end
    local j = math.min(n, i + R(0, 8))
    return s:sub(1, j) .. s:sub(i, j) .. s:sub(j + 1)
end

local TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
local function token(R)
    local t = {}
    for i = 1, R(1, 12) do local c = R(1, #TOKEN); t[i] = TOKEN:sub(c, c) end
    return table.concat(t)
end
local function field_value(R) -- visible ASCII and inner spaces, no leading or trailing white space
    local t = {}
    for i = 1, R(0, 30) do t[i] = string.char(R(0x21, 0x7E)) .. (R(1, 6) == 1 and " " or "") end
    return (table.concat(t):gsub("%s+$", ""))
end

-- A well-formed HTTP/1.1 answer: status line, header fields (some names
-- repeated, in any case), Content-Length or chunked, the body.
local function well_formed(R)
    local body = {}
    for i = 1, R(0, 300) do body[i] = string.char(R(0, 255)) end
    body = table.concat(body)
    local lines = { ("HTTP/1.1 %d %s"):format(pick(R, { 200, 201, 202, 400, 401, 402, 404, 409, 422, 500, 502, 503 }),
        pick(R, { "OK", "Whatever", "", "Not Found Here" })) }
    local names = {}
    for _ = 1, R(0, 8) do
        local name = (#names > 0 and R(1, 4) == 1) and pick(R, names) or token(R)
        if not name:lower():match("^content%-length$") and not name:lower():match("^transfer%-encoding$")
            and not name:lower():match("^connection$") then
            names[#names + 1] = name
            lines[#lines + 1] = name .. ":" .. pick(R, { "", " ", "  ", "\t" }) .. field_value(R)
        end
    end
    local chunked = R(1, 3) == 1
    if chunked then
        lines[#lines + 1] = "Transfer-Encoding: chunked"
        local parts, i = {}, 1
        while i <= #body do
            local n = R(1, 100)
            local chunk = body:sub(i, i + n - 1) -- concatenated: Lua 5.1's %s stops at a NUL
            parts[#parts + 1] = ("%x\r\n"):format(#chunk) .. chunk .. "\r\n"
            i = i + n
        end
        parts[#parts + 1] = "0\r\n\r\n"
        return table.concat(lines, "\r\n") .. "\r\n\r\n" .. table.concat(parts), #body
    end
    lines[#lines + 1] = "Content-Length: " .. #body
    return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body, #body
end

describe("the cosocket transport's head parsing over random answers", function()
    local sb

    setup(function()
        sb = assert(sandbox.start{ routes = { ["/h/"] = "support.head_handlers" }, lua_path = "spec/?.lua" })
    end)

    teardown(function() util.stop_sandbox(sb) end)

    -- The requests of one seed: well-formed answers and mutations of them.
    local function cases(R)
        local out = {}
        for i = 1, 6 do
            local answer, body_len = well_formed(R)
            local good = i <= 2
            if not good then
                for _ = 1, R(1, 4) do answer = mutate(R, answer) end
            end
            local silence = (not good and R(1, 12) == 1) and 1 or 0
            out[i] = {
                good = good, body_len = body_len,
                req = { method = "GET", url = ("%s/h/raw?a=%s&s=%d"):format(sb.url, http.escape(core.base64_encode(answer)), silence),
                    -- a well-formed answer on a fresh connection: a kept-alive one may still
                    -- be held by an earlier answer's silence (a timeout, rightly)
                    timeout_ms = 400, connect_timeout_ms = 400, idempotent = not good and R(1, 2) == 1,
                    max_head_bytes = good and 65536 or R(16, 2048), max_body_bytes = good and 65536 or R(1, 512) },
            }
        end
        return out
    end

    it("gives a response or an error within the deadline and the caps, the same as libcurl on a well-formed answer", function()
        local runs = math.max(1, math.floor(RUNS / 4))
        local runner = core.http_client{ timeout_ms = 60000 }
        for seed = 1, runs do
            local R = rng(seed * 31337)
            local list = cases(R)
            local reqs = {}
            for i, c in ipairs(list) do reqs[i] = c.req end
            local res = assert(runner:request{ method = "POST", url = sb.url .. "/h/run",
                headers = { ["Content-Type"] = "application/json" }, body = assert(core.json_encode(reqs)) })
            assert.equal(200, res.status, res.body)
            local got = assert(core.json_decode(res.body))
            for i, c in ipairs(list) do
                local o = got[i]
                local why = ("seed %d, case %d: %s -> %s"):format(seed, i, core.base64_decode(
                    http.unescape(c.req.url:match("a=([^&]*)"))):sub(1, 400):gsub("[^\32-\126]", function(x)
                        return ("\\x%02x"):format(x:byte()) end), core.json_encode(o))
                assert(o.raised == nil, "raised: " .. why)
                assert(o.elapsed < c.req.timeout_ms / 1000 + 0.3, "past the deadline: " .. why)
                if o.status then
                    for line in (unhex(o.head) .. "\n"):gmatch("([^\n]*)\n") do
                        if line ~= "" then
                            assert(line:match("^[%w!#$%%&'*+%-.^_`|~]+: "), "a header name that is not a token: " .. why)
                        end
                    end
                    assert(#o.body / 2 <= c.req.max_body_bytes, "a body past the cap: " .. why)
                    assert(#o.head / 2 <= c.req.max_head_bytes, "a head past the cap: " .. why)
                else
                    assert(({ network = true, timeout = true, http = true })[o.type], "an error type: " .. why)
                end
                if c.good then
                    assert(o.status, "a well-formed answer gave an error: " .. why)
                    assert.equal(c.body_len, #o.body / 2, why)
                    -- a fresh client: the raw server closes each connection after its answer
                    local curl = core.http_client{}
                    local mine = heads.observe(curl, c.req, core.monotime)
                    curl:close()
                    o.elapsed, mine.elapsed = nil, nil
                    assert.same(mine, o, why)
                end
            end
        end
        runner:close()
    end)

    -- Found by the test above: cosockets read "HTTP/1.1 5001.1 500" as a
    -- 500 and kept a header whose name is not a token; libcurl refuses the
    -- one (but as a config error, "invalid URL") and leaves the other out.
    it("refuses a status code of more than three digits (a network error in both), leaves out a non-token header name", function()
        local function url(answer) return sb.url .. "/h/raw?a=" .. http.escape(core.base64_encode(answer)) end
        local reqs = {
            { method = "GET", url = url("HTTP/1.1 5001.1 500 \r\nContent-Length: 2\r\n\r\nok"), timeout_ms = 2000 },
            { method = "GET", url = url("HTTP/1.1 200\r\nTra\129sfer-Encoding: x\r\nX a: 1\r\n: 2\r\nX-Ok:  3 \r\n"
                .. "Content-Length: 2\r\n\r\nok"), timeout_ms = 2000 },
        }
        local runner = core.http_client{ timeout_ms = 60000 }
        local res = assert(runner:request{ method = "POST", url = sb.url .. "/h/run",
            headers = { ["Content-Type"] = "application/json" }, body = assert(core.json_encode(reqs)) })
        runner:close()
        local got = assert(core.json_decode(res.body))
        assert.equal("network", got[1].type)
        assert.matches("malformed status line", got[1].message)
        assert.equal(200, got[2].status)
        assert.equal("content-length: 2\nx-ok: 3", unhex(got[2].head))
        local mine = heads.observe(core.http_client{}, reqs[2], core.monotime)
        assert.equal(got[2].head, mine.head)
        -- libcurl called that answer a config error, "invalid URL"
        mine = heads.observe(core.http_client{}, reqs[1], core.monotime)
        assert.equal("network", mine.type)
        assert.not_matches("URL", mine.message)
    end)
end)
