--- luapay.inbox: one durable notification inbox for the five providers,
-- on Redis (luapay.store.redis), for shops that run several nginx boxes.
--
--   local inbox = require("luapay.inbox").new{
--       store = store.redis{ host = "10.0.0.5" },
--       clients = { trustly = trustly.new(...), ecommpay = ecommpay.new(...), ... },
--   }
--   -- nginx, the provider's notification URL (content_by_lua_block):
--   inbox:handle("trustly")
--   -- a Lua 5.4 script or an nginx timer:
--   inbox:consume{ group = "orders", handler = function(event, ctx) ... end }
--   inbox:payment("trustly", "4400") --> {status, history = {...}}
--
-- A notification is verified with the provider's client, deduplicated by
-- the provider's notification identity (inbox.IDENTITY), appended to a Redis
-- stream and folded into the payment's state, all in one Redis script; only
-- then does the provider get the answer that means "received"
-- (client:notification_response(event, true)). When Redis cannot take it,
-- the provider gets notification_response(event, false) and sends it again:
-- nothing is acknowledged that was not recorded. A repeat is acknowledged
-- too (it was recorded the first time) and appended nowhere.
--
-- Consumers read the stream in consumer groups (XREADGROUP, XACK). An event
-- a consumer took and did not acknowledge (it crashed, or its handler
-- failed) is claimed again by any consumer of the group once it has been
-- idle for claim_after_ms; after max_deliveries it goes to the dead-letter
-- stream instead. Delivery is at least once: a consumer killed after its
-- handler's work and before the XACK leaves the event to be handled again
-- (ctx.deliveries > 1), so a handler's effect must be idempotent by ctx.id
-- (or by ctx.identity) where a second run would matter.
local core = require "luapay.core"

local M = {}

local Inbox = {}
Inbox.__index = Inbox

local function misuse(fn, message)
    error(("luapay.inbox.%s: %s"):format(fn, message), 3)
end

local function join(...)
    local parts = {}
    for i = 1, select("#", ...) do
        local v = select(i, ...)
        if v == nil or v == "" then return nil end
        parts[#parts + 1] = tostring(v)
    end
    return table.concat(parts, "/")
end

-- The notification identity, per provider: what makes two deliveries the
-- same notification. A provider's repeat carries the same identity; a new
-- state of the same payment carries another. Without one, the body's hash.
M.IDENTITY = {
    -- Trustly numbers every notification and resends it under the same id
    trustly = function(e) return e.extra.notificationid end,
    -- ecommpay: one callback per operation and operation status; the card's
    -- registration for recurring payments comes as a second callback of the
    -- same operation, carrying recurring.id
    ecommpay = function(e)
        local x = e.extra
        local id = join(e.provider_ref or e.merchant_ref, x.operation_type or x.payment_type,
            x.operation_status or x.payment_status)
        if id and type(x.recurring) == "table" and x.recurring.id ~= nil then id = id .. "/recurring:" .. tostring(x.recurring.id) end
        return id
    end,
    -- TrustPay: the payment (PaymentId, or PaymentRequestId for cards), its result code and direction
    trustpay = function(e) return join(e.provider_ref, e.extra.result_code, e.extra.type) end,
    -- beGateway: the transaction's uid and status
    begateway = function(e) return join(e.provider_ref, e.extra.status) end,
    -- Trustly North America: the transaction, its event and its status
    trustly_na = function(e)
        local f = e.extra.fields or {}
        return join(f.transactionId or e.provider_ref, f.eventType, f.status)
    end,
}

-- How far a status has gone; a notification moves a payment only forward
-- (a late "pending" after "succeeded" goes into the history and changes
-- nothing; of two final statuses the first one stays).
M.RANK = { pending = 1, authorized = 2, succeeded = 3, failed = 3, canceled = 3,
           partially_refunded = 4, refunded = 5, reversed = 5 }

-- A refund's or payout's pending or failure says nothing about the payment's own state.
local function rank(event)
    if event.kind ~= "payment" and (event.status == "failed" or event.status == "pending") then return 0 end
    return M.RANK[event.status] or 0
end

local OPTIONS = { store = true, clients = true, stream = true, dedupe_ttl = true, maxlen = true }

--- inbox.new{store, clients, stream = "inbox", dedupe_ttl = 30 days, maxlen}
-- store: a luapay.store.redis; clients: {provider name = client}.
function M.new(opts)
    if type(opts) ~= "table" then misuse("new", "bad argument #1 'opts' (a table expected)") end
    for k in pairs(opts) do
        if not OPTIONS[k] then misuse("new", ("option '%s' is unknown"):format(tostring(k))) end
    end
    if type(opts.store) ~= "table" or opts.store.backend ~= "redis" then
        misuse("new", "option 'store' must be a luapay.store.redis (streams and consumer groups)")
    end
    if type(opts.clients) ~= "table" then misuse("new", "option 'clients' must be a table {provider = client}") end
    return setmetatable({
        store = opts.store, clients = opts.clients, stream = opts.stream or "inbox",
        dedupe_ttl = opts.dedupe_ttl or 30 * 86400, maxlen = opts.maxlen,
    }, Inbox)
end

-- The event as plain JSON (its fields, not the deprecated read-through).
local EVENT_FIELDS = { "provider", "kind", "status", "merchant_ref", "provider_ref", "amount", "currency", "raw", "extra" }

local function encode(event)
    local plain = {}
    for _, k in ipairs(EVENT_FIELDS) do
        plain[k] = rawget(event, k)
    end
    return assert(core.json_encode(plain))
end

-- Records one notification, atomically: the identity is taken (SET NX), the
-- event appended to the stream, the payment's status moved forward only and
-- the notification added to its history. A repeat changes nothing and gets
-- the stream id of the first delivery.
local RECORD = [[
local first = redis.call('SET', KEYS[1], 'taking', 'NX', 'PX', ARGV[5])
if not first then return {0, redis.call('GET', KEYS[1]) or ''} end
local xadd = {KEYS[2]}
if ARGV[6] ~= '' then xadd[#xadd+1] = 'MAXLEN'; xadd[#xadd+1] = '~'; xadd[#xadd+1] = ARGV[6] end
xadd[#xadd+1] = '*'
for _, v in ipairs({'event', ARGV[1], 'identity', ARGV[2]}) do xadd[#xadd+1] = v end
local id = redis.call('XADD', unpack(xadd))
redis.call('SET', KEYS[1], id, 'PX', ARGV[5])
if ARGV[7] == '1' then
  local have = tonumber(redis.call('HGET', KEYS[3], 'rank') or '0')
  local moved = 0
  if tonumber(ARGV[3]) > have then
    redis.call('HSET', KEYS[3], 'status', ARGV[4], 'rank', ARGV[3], 'id', id)
    moved = 1
  end
  redis.call('RPUSH', KEYS[4], cjson.encode({status = ARGV[4], id = id, identity = ARGV[2], moved = moved}))
end
return {1, id}
]]

local function state_keys(name, ref)
    local base = ("payment:%s:%s"):format(name, ref)
    return base, base .. ":history"
end

--- inbox:record(event) -> stream id, first (true: new; false: a repeat) |
-- nil, err (the store could not take it).
function Inbox:record(event)
    local name = event.provider
    local identity = M.IDENTITY[name] and M.IDENTITY[name](event)
    if not identity then identity = "raw:" .. core.hex_encode(core.digest("sha256", event.raw)) end
    local ref = event.provider_ref
    local pkey, hkey = state_keys(name, ref or "-")
    local res, err = self.store:eval(RECORD,
        { ("seen:%s:%s"):format(name, identity), self.stream, pkey, hkey },
        { encode(event), name .. ":" .. identity, rank(event), event.status, math.floor(self.dedupe_ttl * 1000),
          self.maxlen or "", ref and "1" or "0" })
    if not res then return nil, err end
    return res[2], res[1] == 1
end

--- inbox:receive(provider, raw_body, headers) -> answer, event | nil, how.
-- The whole job of the notification URL, without nginx: answer is
-- {status, headers, body} for the provider; how is "recorded", "repeat",
-- "refused" (not verified) or "unrecorded" (the store failed: the provider
-- will send it again).
function Inbox:receive(name, raw_body, headers)
    local client = self.clients[name]
    if not client then misuse("receive", ("no client for provider '%s'"):format(tostring(name))) end
    local event, err = client:notification(raw_body, headers)
    if not event then return client:notification_response(nil, false), nil, "refused", err end
    local id, first = self:record(event)
    if not id then return client:notification_response(event, false), event, "unrecorded", first end
    return client:notification_response(event, true), event, first and "recorded" or "repeat", id
end

--- inbox:handle(provider): serves the provider's notification URL inside
-- nginx (content phase). The raw body is the request body as received, or
-- for a GET (TrustPay) the query string.
function Inbox:handle(name)
    local raw
    if ngx.req.get_method() == "GET" then
        raw = ngx.var.args or ""
    else
        ngx.req.read_body()
        raw = ngx.req.get_body_data() or ""
    end
    local answer, _, how, why = self:receive(name, raw, ngx.req.get_headers())
    if how == "unrecorded" then ngx.log(ngx.ERR, "luapay.inbox: not recorded, the provider will retry: ", tostring(why))
    elseif how == "refused" then ngx.log(ngx.WARN, "luapay.inbox: notification refused: ", tostring(why and why.message)) end
    ngx.status = answer.status
    for k, v in pairs(answer.headers or {}) do ngx.header[k] = v end
    ngx.print(answer.body or "")
    return how
end

--- inbox:payment(provider, provider_ref) -> {status, id, history = {{status, id, identity, moved}...}} | nil, err
function Inbox:payment(name, ref)
    local pkey, hkey = state_keys(name, ref)
    local s = self.store
    local state, err = s:command("hgetall", s:key(pkey))
    if not state then return nil, err end
    local out = { history = {} }
    for i = 1, #state, 2 do out[state[i]] = state[i + 1] end
    out.rank = nil
    local list
    list, err = s:command("lrange", s:key(hkey), 0, -1)
    if not list then return nil, err end
    for i, entry in ipairs(list) do
        local h = core.json_decode(entry)
        h.moved = h.moved == 1
        out.history[i] = h
    end
    return out
end

-- Stream entries ({id, {field, value, ...}}) as {id, fields}.
local function entries(list)
    local out = {}
    for _, item in ipairs(list or {}) do
        if type(item) == "table" and type(item[2]) == "table" then
            local f = {}
            for i = 1, #item[2], 2 do f[item[2][i]] = item[2][i + 1] end
            out[#out + 1] = { id = item[1], fields = f }
        end
    end
    return out
end

-- Moves one entry to the dead-letter stream and acknowledges it, atomically.
local DEAD = [[
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if e[1] then
  local f = e[1][2]
  f[#f+1] = 'from_id'; f[#f+1] = ARGV[2]; f[#f+1] = 'group'; f[#f+1] = ARGV[1]
  f[#f+1] = 'deliveries'; f[#f+1] = ARGV[3]
  redis.call('XADD', KEYS[2], '*', unpack(f))
end
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
]]

--- inbox:consume{group, handler, consumer, count = 10, block_ms = 1000,
-- claim_after_ms = 30000, max_deliveries = 5, dead_letter = stream..":dead",
-- stop = function() -> true to end, once = true (one round)}.
-- handler(event, ctx): ctx = {id, identity, deliveries, group}; returning
-- false or raising leaves the event to be delivered again. Returns the
-- number of events handled, or nil, err when the store failed.
function Inbox:consume(o)
    if type(o) ~= "table" then misuse("consume", "bad argument #1 'opts' (a table expected)") end
    if type(o.group) ~= "string" or o.group == "" then misuse("consume", "option 'group' must be a non-empty string") end
    if type(o.handler) ~= "function" then misuse("consume", "option 'handler' must be a function") end
    local s = self.store
    local stream, group = s:key(self.stream), o.group
    local me = o.consumer or ("%s-%s"):format(ngx and ngx.worker and ngx.worker.pid() or "lua",
        core.hex_encode(core.random_bytes(4)))
    local count, block_ms = o.count or 10, o.block_ms or 1000
    local claim_ms, max = o.claim_after_ms or 30000, o.max_deliveries or 5
    local dead = (o.dead_letter or (self.stream .. ":dead"))
    local _, err = s:command("xgroup", "CREATE", stream, group, "0", "MKSTREAM")
    if err and not tostring(err.message):find("BUSYGROUP", 1, true) then return nil, err end
    local handled = 0

    local function deliver(entry, deliveries)
        local event = core.json_decode(entry.fields.event or "")
        local ok, result = pcall(o.handler, event, { id = entry.id, identity = entry.fields.identity,
                                                     deliveries = deliveries, group = group })
        if ok and result ~= false then
            local _, ack_err = s:command("xack", stream, group, entry.id)
            if ack_err then return nil, ack_err end
            handled = handled + 1
        elseif not ok and o.on_error then
            o.on_error(result, entry.id)
        end
        return true
    end

    repeat
        -- 1. what other consumers (or this one) left unacknowledged for too long
        local pending
        pending, err = s:command("xpending", stream, group, "IDLE", claim_ms, "-", "+", count)
        if not pending then return nil, err end
        for _, p in ipairs(pending) do
            local id, deliveries = p[1], tonumber(p[4])
            if deliveries >= max then
                _, err = s:eval(DEAD, { self.stream, dead }, { group, id, deliveries })
                if err then return nil, err end
            else
                local claimed
                claimed, err = s:command("xclaim", stream, group, me, claim_ms, id)
                if not claimed then return nil, err end
                for _, entry in ipairs(entries(claimed)) do
                    local ok, derr = deliver(entry, deliveries + 1)
                    if not ok then return nil, derr end
                end
            end
        end
        -- 2. new events
        local read
        read, err = s:call(s.timeout_ms + block_ms, "xreadgroup", "GROUP", group, me, "COUNT", count,
            "BLOCK", block_ms, "STREAMS", stream, ">")
        if err then return nil, err end
        for _, per_stream in ipairs(type(read) == "table" and read or {}) do
            for _, entry in ipairs(entries(per_stream[2])) do
                local ok, derr = deliver(entry, 1)
                if not ok then return nil, derr end
            end
        end
    until o.once or (o.stop and o.stop())
    return handled
end

return M
