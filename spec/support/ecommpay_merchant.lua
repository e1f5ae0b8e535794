--- A merchant's callback endpoint for the ecommpay specs, served by the
-- sandbox at /merchant/ (inside nginx, next to the fake ecommpay):
--   POST /merchant/callback/{name}: verifies the callback with the project's
--     secret, answers as gate:notification_response says, keeps the raw body
--   GET  /merchant/callbacks/{name}: the raw bodies received, in order, and
--     the status each was answered with
local cjson = require "cjson"
local ecommpay = require "luapay.ecommpay"
local fake = require "luapay.sandbox.ecommpay"

local M = {}
local gate

local function merchant_gate(config)
    if not gate then
        local c = config.ecommpay or {}
        gate = ecommpay.new { project_id = c.project_id or fake.PROJECT_ID, secret = c.secret or fake.SECRET }
    end
    return gate
end

function M.handle(path, config)
    local dict = ngx.shared.luapay_sandbox
    local name = path:match("^callback/(.+)$")
    if name and ngx.req.get_method() == "POST" then
        ngx.req.read_body()
        local raw = ngx.req.get_body_data() or ""
        local g = merchant_gate(config)
        local event = g:notification(raw, ngx.req.get_headers())
        local answer = g:notification_response(event, event ~= nil)
        local key = "merchant:" .. name
        local list = cjson.decode(dict:get(key) or "[]")
        list[#list + 1] = { body = raw, answered = answer.status }
        dict:set(key, cjson.encode(list))
        ngx.status = answer.status
        for k, v in pairs(answer.headers) do ngx.header[k] = v end
        ngx.print(answer.body)
        return ngx.exit(answer.status)
    end
    name = path:match("^callbacks/(.+)$")
    if name then
        ngx.header["Content-Type"] = "application/json"
        ngx.print(dict:get("merchant:" .. name) or "[]")
        return
    end
    return ngx.exit(404)
end

return M
