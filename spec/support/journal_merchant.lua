--- A merchant's notification endpoint for the sandbox journal specs, at
-- /merchant/<name>: keeps what arrived (method, the query string, the raw
-- body, the headers) and answers 200 "OK"; GET /merchant/_received/<name>
-- gives the list kept, oldest first.
local core = require "luapay.core"

local H = {}

local function dict() return ngx.shared.luapay_sandbox end

function H.handle(path)
    local name = path:match("^_received/(.+)$")
    local d = dict()
    if name then
        ngx.header["Content-Type"] = "application/json"
        ngx.print(d:get("merchant:" .. name) or "[]")
        return
    end
    ngx.req.read_body()
    local list = core.json_decode(d:get("merchant:" .. path) or "[]")
    list[#list + 1] = { method = ngx.req.get_method(), query = ngx.var.args or "", body = ngx.req.get_body_data() or "",
                        headers = ngx.req.get_headers() }
    d:set("merchant:" .. path, assert(core.json_encode(setmetatable(list, core.array_mt))))
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("OK")
end

return H
