--- The merchant's side of the TrustPay specs, served by the sandbox (inside
-- nginx) at /shop/: a notification URL that records what it receives, so
-- the TrustPay fake posts to a real HTTP endpoint and the spec reads back
-- exactly what arrived.
--   GET /shop/notify/<box>?...   records the query string under <box>, answers 200
--   GET /shop/down/<box>?...     counts the attempt under <box>, answers 500
--   GET /shop/received/<box>     the recorded query strings, in arrival order (JSON)
--   GET /shop/attempts/<box>     how many times /shop/down/<box> or /shop/answer/<box> was called
--   GET /shop/answer/<box>?...   the merchant's handler: verifies with luapay (client:notification on
--                                ngx.var.args) and answers with client:notification_response; a box
--                                named ok-* records the event (received = true), busy-* cannot
--                                (received = false), forged-* holds the wrong secret (no event).
--                                Records {raw, kind, status, type, answered} under <box> as JSON.
local cjson = require "cjson"
local trustpay = require "luapay.trustpay"
local fake = require "luapay.sandbox.trustpay"

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
    elseif action == "answer" then
        dict:incr("shop:" .. box .. ":attempts", 1, 0)
        local mode = box:match("^(%a+)%-")
        local c = trustpay.new{ account_id = fake.DEFAULTS.account_id,
            secret = mode == "forged" and "not-the-secret" or fake.DEFAULTS.secret }
        local event = c:notification(ngx.var.args or "")
        local answer = c:notification_response(event, event ~= nil and mode == "ok")
        c:close()
        local n = dict:incr("shop:" .. box .. ":n", 1, 0)
        dict:set("shop:" .. box .. ":" .. n, cjson.encode{ args = ngx.var.args, raw = event and event.raw or false,
            kind = event and event.kind or false, status = event and event.status or false,
            type = event and event.extra.type or false, answered = answer.status })
        ngx.status = answer.status
        for k, v in pairs(answer.headers) do ngx.header[k] = v end
        ngx.print(answer.body)
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
