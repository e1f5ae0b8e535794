-- The libcurl transport reading any bytes as the answer to a request, off
-- a real loopback socket (fuzz/driver.c's server): a response with an
-- integer status, lower-cased header names, string values (a list for a
-- repeated header) and a string body, or an error of a known type.
local core = require "luapay.core"

local client = core.http_client{ timeout_ms = 3000, connect_timeout_ms = 1000, max_head_bytes = 8192,
    max_body_bytes = 65536 }
local TYPES = { network = true, timeout = true, tls = true, config = true, http = true }

return function(s)
    local url = fuzz.respond(s)
    local res, err = client:request{ url = url .. "p", method = #s % 2 == 0 and "GET" or "POST",
        body = #s % 2 == 1 and "b" or nil }
    if not res then
        assert(type(err) == "table" and TYPES[err.type] and type(err.message) == "string", "a malformed error")
        assert(type(err.sent) == "boolean")
        return
    end
    assert(math.type(res.status) == "integer" and res.status >= 0, "status")
    assert(type(res.body) == "string" and #res.body <= 65536, "body")
    for name, v in pairs(res.headers) do
        assert(type(name) == "string" and name ~= "" and not name:find("[A-Z:\r\n]"), "header name " .. name)
        if type(v) == "table" then
            assert(#v >= 2, "a list of one")
            for _, x in ipairs(v) do assert(type(x) == "string" and not x:find("\n"), "header value") end
        else
            assert(type(v) == "string" and not v:find("\n"), "header value")
        end
    end
end
