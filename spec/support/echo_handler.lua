--- A server that echoes every request back, for the secrets spec: the
-- request's Authorization header (and its Basic credentials decoded), body
-- and head, then all of that again in base64 and in hex. Mounted at
-- /echo/, the first path segment says how to answer:
--   /echo/500/...     HTTP 500, a JSON error object carrying the echo in
--                     every field a provider's error reader looks at
--   /echo/400t/...    HTTP 400, the echo as text/plain
--   /echo/tok500/...  the same, but .../api/oauth2/token hands out
--                     config.echo.token (TrustPay's OAuth), so the next
--                     call carries it as a Bearer token
local core = require "luapay.core"
local cjson = require "cjson"

local H = {}

local function echo()
    ngx.req.read_body()
    local auth = ngx.var.http_authorization or ""
    local parts = { "Authorization: " .. auth }
    local basic = auth:match("^[Bb]asic%s+(%S+)")
    if basic then parts[#parts + 1] = "Basic credentials: " .. tostring(ngx.decode_base64(basic)) end
    parts[#parts + 1] = ngx.req.get_body_data() or ""
    parts[#parts + 1] = ngx.req.raw_header()
    local text = table.concat(parts, "\n")
    return table.concat({ text, core.base64_encode(text), core.hex_encode(text) }, "\n")
end

function H.handle(path, config)
    local how, rest = path:match("^([^/]*)/?(.*)$")
    local token = how:sub(1, 3) == "tok"
    local status, plain = how:gsub("^tok", ""):match("^(%d+)(t?)$")
    if not status then return ngx.exit(404) end
    if token and rest:match("api/oauth2/token$") then
        ngx.header["Content-Type"] = "application/json"
        return ngx.print(cjson.encode{ access_token = config.echo.token, token_type = "Bearer", expires_in = 3600 })
    end
    local text = echo()
    ngx.status = tonumber(status)
    if plain == "t" then
        ngx.header["Content-Type"] = "text/plain"
        return ngx.print(text)
    end
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode{
        status = "error", code = "echo", message = text,
        errors = { { field = "echo", code = "echo", message = text } },
        error = { code = 620, message = text },
    })
end

return H
