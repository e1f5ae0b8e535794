--- The merchant's side of the beGateway notification specs, served by the
-- sandbox (inside nginx) at /shop/: the handler a shop writes, verifying
-- with luapay and answering with client:notification_response.
--   POST /shop/<mode>-<name>   client:notification on the raw body and headers; mode ok records the
--                              event (received = true), busy cannot (received = false), forged holds
--                              another shop's key (no event). Records {raw_exact, kind, status, type,
--                              answered} under <name>.
--   GET /shop/<mode>-<name>    what was recorded (JSON)
local cjson = require "cjson"
local begateway = require "luapay.begateway"
local test_keys = require "luapay.sandbox.test_keys"

local dict = ngx.shared.luapay_sandbox
local H = {}

function H.handle(path)
    local mode, name = path:match("^(%a+)%-([%w_%-]+)$")
    if not mode then return ngx.exit(404) end
    local key = "bgshop:" .. name
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Content-Type"] = "application/json"
        return ngx.print(dict:get(key) or "{}")
    end
    ngx.req.read_body()
    local body = ngx.req.get_body_data() or ""
    local c = begateway.new{ psp_id = "1", secret = "unused", dwh_url = "http://127.0.0.1:1",
        public_key = mode == "forged" and test_keys.merchant_public or test_keys.provider_public }
    local event = c:notification(body, ngx.req.get_headers())
    local answer = c:notification_response(event, event ~= nil and mode == "ok")
    c:close()
    dict:set(key, cjson.encode{ raw_exact = event ~= nil and event.raw == body, kind = event and event.kind or false,
        status = event and event.status or false, type = event and event.extra.type or false, answered = answer.status })
    ngx.status = answer.status
    for k, v in pairs(answer.headers) do ngx.header[k] = v end
    ngx.print(answer.body)
end

return H
