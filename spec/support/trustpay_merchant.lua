--- The merchant's side of the TrustPay specs, served by the sandbox (inside
-- nginx) at /shop/: a notification URL that records what it receives, so
-- the TrustPay fake posts to a real HTTP endpoint and the spec reads back
-- exactly what arrived.
--   GET /shop/notify/<box>?...   records the query string under <box>, answers 200
--   GET /shop/down/<box>?...     counts the attempt under <box>, answers 500
--   GET /shop/received/<box>     the recorded query strings, in arrival order (JSON)
--   GET /shop/attempts/<box>     how many times /shop/down/<box> was called
local cjson = require "cjson"

local dict = ngx.shared.luapay_sandbox
local H = {}

function H.handle(path)
    local action, box = path:match("^(%w+)/([%w_%-]+)$")
    if action == "notify" then
        local n = dict:incr("shop:" .. box .. ":n", 1, 0)
        dict:set("shop:" .. box .. ":" .. n, ngx.var.args or "")
        ngx.header["Content-Type"] = "text/plain"
        ngx.print("OK")
    elseif action == "down" then
        dict:incr("shop:" .. box .. ":attempts", 1, 0)
        ngx.status = 500
        ngx.print("down")
    elseif action == "received" then
        local out = {}
        for i = 1, dict:get("shop:" .. box .. ":n") or 0 do out[i] = dict:get("shop:" .. box .. ":" .. i) end
        ngx.header["Content-Type"] = "application/json"
        ngx.print(#out == 0 and "[]" or cjson.encode(out))
    elseif action == "attempts" then
        ngx.header["Content-Type"] = "text/plain"
        ngx.print(dict:get("shop:" .. box .. ":attempts") or 0)
    else
        ngx.exit(404)
    end
end

return H
