--- Sandbox endpoints for the transport bench (mounted at /b/).
local http = require "luapay.http"

local H = {}
local upstream -- one pipeline per worker, so its cosocket pool is reused

function H.handle(path, config)
    if path == "hello" then
        ngx.header["Content-Type"] = "text/plain"
        return ngx.print("hello")
    end
    if path == "jitv" then -- LuaJIT's trace messages (compiled, aborted) from here on into a file
        require("jit.v").on(ngx.var.arg_file)
        return ngx.print("on")
    end
    if path == "proxy" then -- answers after one upstream call through cosockets
        upstream = upstream or http.new{ retries = 0 }
        local res, err = upstream:request{ url = "http://127.0.0.1:" .. config.ports.http .. "/b/hello", idempotent = true }
        if not res then
            ngx.status = 502
            return ngx.print(err.message)
        end
        ngx.header["Content-Type"] = "text/plain"
        return ngx.print(res.body)
    end
    ngx.exit(404)
end

return H
