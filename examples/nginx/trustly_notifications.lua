--- Receives Trustly notifications inside nginx (see trustly.conf).
--
-- Per notification: verify it (luapay.trustly.verify_notification, Trustly's
-- key), process each notificationid once, answer with the merchant's
-- signature (luapay.trustly.notification_response: the signed status, as
-- client:notification_response(event, true) sends it, with "FAILED" where
-- the shop refuses one). Settings come from
-- nginx variables of the location: $trustly_environment,
-- $trustly_private_key (a PEM file), $trustly_public_key (a PEM file, or
-- empty for the key luapay bundles for the environment).
--
-- The shared dict `trustly_orders` stands in for the shop's database; it is
-- also the store luapay reads refunds from, so that a credit answering a
-- failed refund is a refund failing, not money received: refunds made
-- from here (a client with store = ngx.shared.trustly_orders) are in it,
-- others go in with trustly.record_refund(ngx.shared.trustly_orders, ...).
local cjson = require "cjson.safe"
local trustly = require "luapay.trustly"

local M = {}

local keys = {} -- per worker: file -> core.pkey (read once)

local function key_from_file(path)
    if not keys[path] then
        local f = assert(io.open(path, "rb"), "cannot read the key file set for Trustly")
        local pem = f:read("*a")
        f:close()
        keys[path] = assert(trustly.load_key(pem))
    end
    return keys[path]
end

local function trustly_key()
    local file = ngx.var.trustly_public_key
    if file and file ~= "" then return key_from_file(file) end
    return trustly.keys[ngx.var.trustly_environment == "live" and "live" or "test"]
end

local function db() return ngx.shared.trustly_orders end

-- A payment's state only moves forward: a late "pending" after "credit"
-- (they can come in any order) changes nothing.
local RANK = { pending = 1, succeeded = 2, canceled = 2, reversed = 3 }

local function process(note)
    local x = note.extra -- Trustly's own fields: method, uuid, orderid, notificationid, data, ...
    local order = cjson.decode(db():get("order:" .. x.orderid) or "") or { events = 0 }
    order.events = order.events + 1
    if note.kind == "payment" then
        if (RANK[note.status] or 0) > (RANK[order.state] or 0) then
            order.state = note.status
            order.amount, order.currency = note.amount or order.amount, note.currency or order.currency
            order.merchant_ref = note.merchant_ref
        end
    elseif note.kind == "account" then
        order.accountid = x.data.accountid -- e.g. for refunds, payouts, direct debit
    elseif note.kind == "payout" then
        order.payouts = (order.payouts or 0) + 1
    elseif note.kind == "refund" then -- note.status: pending, refunded or failed
        order.refunds = order.refunds or {}
        order.refunds[#order.refunds + 1] = { status = note.status, amount = note.amount }
    end
    db():set("order:" .. x.orderid, cjson.encode(order))
    return "OK" -- "FAILED" only when the shop must refuse it (e.g. a debit on a withdrawal)
end

function M.handle()
    if ngx.req.get_method() ~= "POST" then return ngx.exit(405) end
    ngx.req.read_body()
    local raw = ngx.req.get_body_data()
    if not raw then return ngx.exit(413) end -- larger than client_body_buffer_size

    local note, err = trustly.verify_notification(raw, ngx.req.get_headers(),
        { trustly_public_key = trustly_key(), store = db() })
    local private_key = key_from_file(ngx.var.trustly_private_key)
    if not note then
        if err.type == "validation" and err.code == "unsupported" then
            -- signed by Trustly, but a method this shop does not handle: acknowledge it
            ngx.header["Content-Type"] = "application/json"
            return ngx.print(trustly.notification_response(err.method, err.uuid, "OK", private_key))
        end
        ngx.log(ngx.WARN, "Trustly notification refused: ", err.message)
        return ngx.exit(400) -- nothing signed for what Trustly did not send
    end

    -- Once per notificationid (add is atomic across workers); a repeat gets
    -- the answer the first delivery got.
    local status
    local seen = "seen:" .. note.extra.notificationid
    local first = db():add(seen, "processing")
    if first then
        status = process(note)
        db():set(seen, status)
    else
        status = db():get(seen)
        if status == "processing" then status = "OK" end
        db():incr("duplicates", 1, 0)
    end
    ngx.header["Content-Type"] = "application/json"
    ngx.print(trustly.notification_response(note.extra.method, note.extra.uuid, status, private_key))
end

function M.show(orderid)
    ngx.header["Content-Type"] = "application/json"
    local order = cjson.decode(db():get("order:" .. orderid) or "") or { events = 0 }
    order.duplicates = db():get("duplicates") or 0
    ngx.print(cjson.encode(order))
end

return M
