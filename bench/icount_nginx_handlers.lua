--- Sandbox endpoints for bench/icount_nginx.sh (mounted at /n/): one call
-- to the same upstream (/n/hello, on this nginx), through luapay or bare.
local http = require "luapay.http"

local H = {}
local client -- one pipeline per worker, so its cosocket pool is reused
local REQUEST = "GET /n/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

-- The bare cosocket call: what luapay's transport does, with nothing else
-- (kept-alive connection, one request, the head read to its blank line,
-- the body by Content-Length).
local function bare(port)
    local sock = ngx.socket.tcp()
    sock:settimeouts(10000, 10000, 10000)
    assert(sock:connect("127.0.0.1", port))
    assert(sock:send(REQUEST))
    local head = assert(sock:receiveuntil("\r\n\r\n")())
    local len = tonumber(head:match("\r\n[Cc]ontent%-[Ll]ength: *(%d+)"))
    local body = assert(sock:receive(len))
    sock:setkeepalive(60000, 16)
    return body
end

function H.handle(path, config)
    ngx.header["Content-Type"] = "text/plain"
    if path == "hello" then
        ngx.header["Content-Length"] = 5
        return ngx.print("hello")
    end
    if path == "bare" then return ngx.print(bare(config.ports.http)) end
    if path == "luapay" then -- one provider-style call: luapay.http over the cosocket transport
        client = client or http.new{ retries = 0 }
        local res = assert(client:request{ url = "http://127.0.0.1:" .. config.ports.http .. "/n/hello", idempotent = true })
        return ngx.print(res.body)
    end
    ngx.status = 404
    return ngx.print("no such bench endpoint")
end

return H
