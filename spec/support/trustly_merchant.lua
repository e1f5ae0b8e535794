--- The merchant's side of Trustly notifications, for the specs: a sandbox
-- route (mounted at /shop/) that uses luapay.trustly inside nginx, as a shop
-- would, and records what it got.
--
--   POST /shop/notify/<secret>   client:notification(raw, headers), recorded, then
--                                client:notification_response(event, true): 200, signed OK;
--                                anything that fails verification -> 400, nothing signed
--   POST /shop/refund/<orderid>?amount=<minor units>&currency=EUR
--                                the shop's back office refunds (client:refund from
--                                inside nginx): {result} or {error = {type, code, message}}
--   GET  /shop/orders/<orderid>  {state, accountid, events = [...], duplicates, refunds}
--   GET  /shop/rejected          how many notifications were refused
--
-- config.shop: username, password, private_key (merchant PEM),
-- trustly_public_key (the fake's public PEM). The shop calls the fake in
-- the same nginx (/trustly/api/1 on the host it was called on).
-- The client keeps what it knows about refunds in the shared dict, as a
-- shop inside nginx would (every worker sees it).
local cjson = require "cjson.safe"
local trustly = require "luapay.trustly"

local M = {}
local client

local function dict() return ngx.shared.luapay_sandbox end

local function get_client(config)
    if not client then
        local c = config.shop
        client = trustly.new{
            username = c.username, password = c.password, private_key = c.private_key,
            trustly_public_key = c.trustly_public_key, environment = "test",
            base_url = ngx.var.scheme .. "://" .. ngx.var.http_host .. "/trustly/api/1",
            store = ngx.shared.luapay_sandbox,
        }
    end
    return client
end

local function load(key, default)
    local text = dict():get("shop:" .. key)
    if text == nil then return default end
    return cjson.decode(text)
end

local function store(key, value)
    dict():set("shop:" .. key, cjson.encode(value))
end

-- What a shop does with each event: payment status only moves forward,
-- whatever order the notifications arrive in.
local RANK = { pending = 1, succeeded = 2, canceled = 2, reversed = 3 }

-- Records a verified notification once per notificationid (a repeat is
-- counted, and answered as the first time: received).
local function apply(note)
    local x = note.extra -- Trustly's own fields
    local order = load("order:" .. x.orderid, { events = {}, duplicates = 0 })
    if load("seen:" .. x.notificationid) then
        order.duplicates = order.duplicates + 1
        store("order:" .. x.orderid, order)
        return
    end
    order.events[#order.events + 1] = {
        method = x.method, kind = note.kind, status = note.status, amount = note.amount,
        currency = note.currency, notificationid = x.notificationid, messageid = x.messageid,
        provider_ref = note.provider_ref, merchant_ref = note.merchant_ref,
    }
    if note.kind == "account" then
        order.accountid = x.data.accountid
        order.mandate = x.data.attributes and x.data.attributes.directdebitmandate
    elseif note.kind == "payment" then
        if (RANK[note.status] or 0) > (RANK[order.state] or 0) then order.state = note.status end
    elseif note.kind == "payout" then
        order.payouts = (order.payouts or 0) + 1
    elseif note.kind == "refund" then
        order.refunds = order.refunds or {}
        order.refunds[#order.refunds + 1] = { status = note.status, amount = note.amount, currency = note.currency }
    end
    store("order:" .. x.orderid, order)
    store("seen:" .. x.notificationid, true)
end

local function send(answer)
    ngx.status = answer.status
    for k, v in pairs(answer.headers) do ngx.header[k] = v end
    ngx.print(answer.body)
end

function M.handle(path, config)
    local c = get_client(config)
    if path:match("^notify/") then
        ngx.req.read_body()
        local raw = ngx.req.get_body_data() or ""
        local note = c:notification(raw, ngx.req.get_headers())
        if not note then
            dict():incr("shop:rejected", 1, 0)
            return send(c:notification_response(nil, false))
        end
        apply(note)
        return send(c:notification_response(note, true))
    end
    local refund_of = path:match("^refund/(%d+)$")
    if refund_of then
        local args = ngx.req.get_uri_args()
        local r, err = c:refund{ OrderID = refund_of, Amount = tonumber(args.amount), Currency = args.currency }
        ngx.header["Content-Type"] = "application/json"
        ngx.print(cjson.encode(r and { result = r } or { error = { type = err.type, code = err.code, message = err.message } }))
        return
    end
    local orderid = path:match("^orders/(%d+)$")
    ngx.header["Content-Type"] = "application/json"
    if orderid then
        local order = load("order:" .. orderid, { events = {}, duplicates = 0 })
        order.events = setmetatable(order.events, cjson.empty_array_mt)
        ngx.print(cjson.encode(order))
        return
    end
    if path == "rejected" then
        ngx.print(cjson.encode({ rejected = dict():get("shop:rejected") or 0 }))
        return
    end
    ngx.exit(404)
end

return M
