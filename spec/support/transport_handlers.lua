--- Test endpoints served by the sandbox (inside nginx) for the transport
-- specs. Mounted at /t/.
local cjson = require "cjson"
local core = require "luapay.core"

local dict = ngx.shared.luapay_sandbox
local H = {}

local function arg(name)
    local v = ngx.var["arg_" .. name]
    return v and ngx.unescape_uri(v)
end

local function json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(value))
end

H["status"] = function(rest)
    local code = tonumber(rest)
    ngx.status = code
    ngx.header["X-Test"] = { "one", "two" }
    ngx.header["Content-Type"] = "text/plain"
    if code ~= 204 and code ~= 304 then ngx.print("status ", code) end
end

H["big"] = function()
    local n = tonumber(arg("bytes"))
    local block = {}
    for i = 0, 255 do block[#block + 1] = string.char((i * 7 + 3) % 256) end
    block = table.concat(block)
    local body = block:rep(math.ceil(n / 256)):sub(1, n)
    ngx.header["Content-Type"] = "application/octet-stream"
    ngx.header["X-Body-SHA256"] = core.digest("sha256", body, "hex")
    ngx.print(body)
end

H["conn"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(ngx.var.connection, " ", ngx.var.connection_requests)
end

H["slow"] = function()
    ngx.sleep(tonumber(arg("ms")) / 1000)
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("slow")
end

H["echo"] = function()
    ngx.req.read_body()
    json(200, {
        method = ngx.req.get_method(),
        args = ngx.var.args or "",
        headers = ngx.req.get_headers(),
        body = ngx.req.get_body_data() or "",
    })
end

H["chunked"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("part1-")
    ngx.flush(true)
    ngx.print("part2")
end

-- Reads the request, counts it, and closes the connection without answering.
H["drop"] = function()
    ngx.req.read_body()
    dict:incr("count:" .. arg("key"), 1, 0)
    ngx.exit(444)
end

-- 503 for the first `fail` requests of a key, then 200.
H["flaky"] = function()
    local n = dict:incr("count:" .. arg("key"), 1, 0)
    if n <= tonumber(arg("fail")) then
        ngx.status = 503
        ngx.header["Retry-After"] = "0"
        ngx.print("busy")
        return
    end
    json(200, { ok = true, attempt = n })
end

H["count"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(dict:get("count:" .. arg("key")) or 0)
end

H["result"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(dict:get("result:" .. arg("key")) or "")
end

-- Waits (without blocking the worker) until `n` requests of a key are here.
H["barrier"] = function()
    local key = "barrier:" .. arg("key")
    local n = dict:incr(key, 1, 0)
    local need = tonumber(arg("n"))
    for _ = 1, 300 do
        if n >= need then break end
        ngx.sleep(0.01)
        n = dict:get(key)
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(n >= need and "together" or "alone")
end

-- Runs a case of spec/support/transport_cases.lua through the cosocket
-- transport and answers with what it observed.
H["run"] = function(_, config)
    local cases = require "support.transport_cases"
    local env = {
        url = "http://127.0.0.1:" .. config.ports.http,
        tls_url = arg("tls_url") or (config.ports.https and ("https://127.0.0.1:" .. config.ports.https)),
        key = arg("key"),
    }
    local observed = cases[arg("case")](env)
    json(200, observed)
end

-- In the log phase there are no cosockets: try a request there and keep
-- the error for /t/result to report.
H["phase"] = function()
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("logged later")
end

local log_hooks = {
    phase = function()
        local http = require "luapay.http"
        local transport = require("luapay.http.cosocket").new()
        local res, err = transport:request{ method = "GET", url = "http://127.0.0.1:1/" }
        dict:set("result:" .. arg("key"), res and "a response" or (err.type .. ": " .. err.message))
        assert(http.in_nginx())
    end,
}

function H.handle(path)
    local name, rest = path:match("^([^/]+)/?(.*)$")
    local f = H[name]
    if not f then return ngx.exit(404) end
    return f(rest, require("luapay.sandbox.router").config)
end

function H.log(path)
    local hook = log_hooks[path:match("^([^/]+)")]
    if hook then hook() end
end

return H
