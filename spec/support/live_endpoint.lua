--- A stand-in for a provider's live endpoint, served by a sandbox (inside
-- nginx) for the command's specs: it counts every request that reaches it
-- and answers with the request echoed back, as a careless server would.
--
--   {prefix}<status>/...   counts the request; answers <status> with
--                          {method, uri, args, headers, body} as JSON
--   {prefix}_count         {requests = N}
local cjson = require "cjson"

local endpoint = {}

local function json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(value))
end

function endpoint.handle(path)
    local dict = ngx.shared.luapay_sandbox
    if path == "_count" then return json(200, { requests = dict:get("live:requests") or 0 }) end
    dict:incr("live:requests", 1, 0)
    ngx.req.read_body()
    json(tonumber(path:match("^(%d%d%d)/")) or 500, {
        method = ngx.req.get_method(), uri = ngx.var.uri, args = ngx.var.args or "",
        headers = ngx.req.get_headers(), body = ngx.req.get_body_data() or "",
    })
end

return endpoint
