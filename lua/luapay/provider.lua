--- luapay.provider: the provider contract and the toolkit that implements
-- its common parts. Every provider module `luapay.<name>` has:
--
--  * `<name>.new(opts)`, a `<name>.Client`; options listed in `<name>.OPTIONS`
--    (its own and `TRANSPORT_OPTIONS`), an unknown one raises;
--    `environment = "test"` (default) or `"live"`; secrets listed in
--    `<name>.SECRET_OPTIONS`, held in the vault, never on the client;
--  * `<name>.verify_notification(raw_body, headers, keys)`, pure, and
--    `client:notification(raw_body, headers)`: an event (`provider.event`)
--    or nil and a "signature" (or "validation", "provider") error;
--  * `client:notification_response(event, received)`: `{status, headers, body}`;
--  * lists as `luapay.pager` iterators, `err.resume` to continue;
--  * `client:close()`, also `__close`;
--  * misuse raising `<name>.<function>: ...`, naming a function that exists.
--
-- README.md ("One contract for every provider") says it in full, and
-- spec/63-conformance_spec.lua checks it on every provider.
local core = require "luapay.core"
local http = require "luapay.http"
local type, setmetatable = type, setmetatable -- upvalues: no lookup in _ENV on each event

local provider = {}

-- The largest whole number a double holds exactly, and all below it: under
-- LuaJIT (no integer subtype) an "integer" is a whole number within it, so
-- that 2^60 or math.huge is never taken as an exact count of minor units.
local EXACT = 2 ^ 53

--- provider.is_integer(v) -> boolean: v is an integer. Under Lua 5.4 an
-- integer subtype (3.0 is not); under LuaJIT a whole number of magnitude
-- at most 2^53 (finite, exact in a double).
-- math.type, or (LuaJIT) what provider.is_integer calls an integer.
local math_type = math.type or function(v)
    if type(v) == "number" and v == math.floor(v) and v >= -EXACT and v <= EXACT then return "integer" end
end

function provider.is_integer(v)
    return math_type(v) == "integer"
end

--- provider.integer(v) -> integer | nil: an integer, or a float with an
-- integral value within 2^53 (652801.0, as lua-cjson may decode a JSON
-- integer) as an integer (under LuaJIT: that double); nil for anything
-- else (a float past 2^53 no longer says which integer it was).
function provider.integer(v)
    if type(v) ~= "number" then return nil end
    if math.type and math.type(v) == "integer" then return v end
    if v == math.floor(v) and v >= -EXACT and v <= EXACT then return math.tointeger and math.tointeger(v) or v end
    return nil
end

--- provider.check_options(fn, opts, accepted): raises naming fn and the
-- option when opts holds a key not in accepted (the list of option names
-- next to the constructor), so that a typo such as `enviroment = "live"`
-- fails instead of silently giving a test client. fn is how the error
-- names the constructor ("trustly.new", or "trustpay.new: option 'banking'"
-- style prefixes for a nested table: pass the prefix for its keys).
function provider.check_options(fn, opts, accepted, prefix)
    if type(opts) ~= "table" then
        error(("%s: bad argument #1 'opts' (table expected, got %s)"):format(fn, type(opts)), 3)
    end
    local known = {}
    for _, name in ipairs(accepted) do known[name] = true end
    local unknown = {}
    for k in pairs(opts) do
        if not known[k] then unknown[#unknown + 1] = tostring(k) end
    end
    if #unknown == 0 then return end
    table.sort(unknown) -- the same message whatever the table's order
    error(("%s: unknown option '%s%s' (accepted: %s)"):format(
        fn, prefix or "", unknown[1], table.concat(accepted, ", ")), 3)
end

--- provider.digits(v) -> a whole number as its digits, with no exponent
-- and no ".0" (an integer subtype with %d, a float rounded with %.0f).
function provider.digits(v)
    if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
    return ("%.0f"):format(v)
end

-- provider.plain's walk where the C pass gives up: open holds the tables
-- being copied (one met again is a cycle, not a stack overflow). A
-- function of its own: a closure here, even one not made, makes every
-- return of provider.plain close upvalues, which LuaJIT does not compile
-- (NYI UCLO).
local function plain_value(x, as_text, open)
    if type(x) ~= "table" then return x end
    local mt = getmetatable(x)
    if mt == core.number_mt then
        if as_text then return x[1] end
        local n = tonumber(x[1])
        return math.tointeger and n and math.tointeger(n) or n
    end
    if open[x] then error("provider.plain: bad argument #1 'v' (a table contains itself (a cycle))", 0) end
    open[x] = true
    local t = {}
    for k, y in pairs(x) do t[k] = plain_value(y, as_text, open) end
    open[x] = nil
    return setmetatable(t, mt == core.array_mt and core.array_mt or nil)
end

--- provider.plain(v [, as_text]) -> v with every JSON number object
-- (core.number_mt, the exact text of a decoded number) made a Lua number,
-- an integer where its value is one (under LuaJIT: a double), or with
-- as_text its text; arrays keep core.array_mt. A copy: v is not changed.
function provider.plain(v, as_text)
    local done, copy = core.json_plain(v, as_text) -- in one pass in C, unless nested deep
    if done then return copy end
    return plain_value(v, as_text, {})
end

--- provider.plain_owned(t [, as_text]) -> provider.plain(t, as_text), made
-- in t itself: for a table fresh from core.json_decode that nobody else
-- holds (a copy of a verified body costs more than its walk).
function provider.plain_owned(t, as_text)
    local done, same = core.json_plain(t, as_text, true)
    if done then return same end
    return provider.plain(t, as_text)
end

-- provider.copy's walk where the C pass leaves it (a cycle, deep nesting,
-- __pairs): a function of its own, not a closure made on each call.
local function copy_value(x, depth, who)
    if type(x) ~= "table" then return x end
    local mt = getmetatable(x)
    if mt == core.number_mt then return x end
    if depth > 32 then error((who or "luapay") .. ": request nested too deeply (a cycle?)", 0) end
    local t = {}
    for k, y in pairs(x) do t[k] = copy_value(y, depth + 1, who) end
    return setmetatable(t, mt == core.array_mt and core.array_mt or nil)
end

--- provider.copy(v, who) -> a deep copy of plain request data, so that
-- the caller's table is never changed. JSON number objects (core.number_mt)
-- are kept as they are, arrays keep core.array_mt; other metatables are
-- dropped. A table nested deeper than 32 levels (a cycle) raises, naming who.
function provider.copy(v, who)
    local done, copy = core.copy(v) -- in one pass in C: no loop to break LuaJIT's trace of the request
    if done then return copy end
    return copy_value(v, 1, who)
end

---------------------------------------------------------------------------
-- The event: one shape for every verified callback, notification and webhook
-- @section the_event
---------------------------------------------------------------------------

--- The kinds of event, the same words for every provider (the provider's
-- own word for it stays in event.extra): payment (money in from the
-- customer), authorization (money reserved, not taken), capture (a
-- reservation taken), void (a reservation released), refund (money given
-- back by the merchant), payout (money out to the customer), reversal
-- (money taken back after it moved: a returned debit, a reversed payout),
-- chargeback (the customer's bank took a payment back), account (the
-- customer's bank account or mandate: verified, authorized, revoked),
-- other (a documented event none of these words fits).
-- @table KINDS
provider.KINDS = { "payment", "authorization", "capture", "void", "refund", "payout", "reversal", "chargeback",
    "account", "other" }

--- The statuses, the same words for every provider: pending, authorized,
-- succeeded, failed, canceled, refunded, partially_refunded, reversed,
-- partially_reversed (part of the money was taken back).
-- @table STATUSES
provider.STATUSES = { "pending", "authorized", "succeeded", "failed", "canceled", "refunded", "partially_refunded",
    "reversed", "partially_reversed" }

local KIND, STATUS = {}, {}
for _, k in ipairs(provider.KINDS) do KIND[k] = true end
for _, s in ipairs(provider.STATUSES) do STATUS[s] = true end

-- The common fields; everything else a provider says is under extra.
local EVENT_FIELDS = { "provider", "kind", "status", "merchant_ref", "provider_ref", "amount", "currency", "raw",
    "extra" }
local COMMON = {}
for _, f in ipairs(EVENT_FIELDS) do COMMON[f] = true end

-- Until 0.3, event.<name> still reads event.extra.<name> (the extras were
-- top-level fields in 0.1): deprecated, see CHANGELOG.md.
local event_mt = { __index = function(event, k)
    local extra = rawget(event, "extra")
    if type(k) == "string" and not COMMON[k] and type(extra) == "table" then return extra[k] end
end }
provider.event_mt = event_mt

-- provider.event's checks in one C pass (core.event_holds) under Lua 5.4,
-- whose interpreter walks the table for several times what that costs;
-- LuaJIT compiles the Lua checks, which cost less than its C API.
local C_CHECKS = not jit

-- The checks of an event's values; level: the caller of the caller.
local function check_event(name, kind, status, raw, amount)
    local who = "luapay.provider.event"
    if type(name) ~= "string" then error(who .. ": provider must be a string", 3) end
    if not KIND[kind] then error(("%s: kind '%s' is not in provider.KINDS"):format(who, tostring(kind)), 3) end
    if not STATUS[status] then
        error(("%s: status '%s' is not in provider.STATUSES"):format(who, tostring(status)), 3)
    end
    if type(raw) ~= "string" then error(who .. ": raw must be the body as received (a string)", 3) end
    if amount ~= nil and math_type(amount) ~= "integer" then error(who .. ": amount must be an integer", 3) end
end

--- provider.event(fields) -> the event (fields itself, given event_mt): {provider, kind, status,
-- merchant_ref, provider_ref, amount, currency, raw, extra}. kind and status
-- are words of KINDS and STATUSES; raw is the body exactly as received (a
-- string); amount an integer in minor units (or nil, as currency);
-- extra a table of what only this provider says. A field outside that
-- shape, or a value outside the vocabulary, is the provider module's bug:
-- it raises.
function provider.event(f)
    -- The common case in one pass in C (the checks below all hold, extra is set).
    if C_CHECKS and core.event_holds(f, COMMON, KIND, STATUS) then return setmetatable(f, event_mt) end
    for k in pairs(f) do
        if not COMMON[k] then
            error(("luapay.provider.event: '%s' is not an event field (put it under extra)"):format(tostring(k)), 2)
        end
    end
    check_event(f.provider, f.kind, f.status, f.raw, f.amount)
    -- f is the event: every caller passes a table of its own, and a copy
    -- (one insertion at a time) costs more than the rest of a verification.
    if f.extra == nil then f.extra = {} end
    return setmetatable(f, event_mt)
end

--- provider.make_event(provider, kind, status, merchant_ref, provider_ref, amount, currency, raw, extra) ->
-- provider.event{provider = provider, kind = kind, ...}, the same checks and
-- errors, with the table built here: no field to look for outside the shape
-- (a verification's hot path).
function provider.make_event(name, kind, status, merchant_ref, provider_ref, amount, currency, raw, extra)
    -- Under Lua 5.4 the checks in one C call first (a fifth of the cost of
    -- building the event), the Lua ones only to word what failed.
    if not (C_CHECKS and core.event_fields_hold(name, kind, status, raw, amount, KIND, STATUS)) then
        check_event(name, kind, status, raw, amount)
    end
    local event = setmetatable({ provider = name, kind = kind, status = status, merchant_ref = merchant_ref,
        provider_ref = provider_ref, amount = amount, currency = currency, raw = raw, extra = extra or {} }, event_mt)
    return event
end

--- provider.answer(status, body [, content_type]) -> {status, headers,
-- body}: an answer for the merchant's server to send, text/plain unless
-- content_type says.
function provider.answer(status, body, content_type)
    return { status = status, headers = { ["Content-Type"] = content_type or "text/plain" }, body = body }
end

--- provider.notification_response(who, name, event, received) -> {status,
-- headers, body}: client:notification_response for provider name. An
-- event of that provider (from its verifier) and received true: 200 "OK"
-- (a provider that signs its answer sets its own body on that one):
-- recorded, do not send it again. That event and received false or
-- nil: 500, send it again later (every provider resends on a 5xx). No
-- such event (nil: it did not verify; an error; another provider's): 400,
-- nothing acknowledged. Raises naming who when event is neither a table
-- nor nil, or received neither a boolean nor nil.
function provider.notification_response(who, name, event, received)
    if event ~= nil and type(event) ~= "table" then
        error(("%s: bad argument #1 'event' (table or nil expected, got %s)"):format(who, type(event)), 3)
    end
    if received ~= nil and type(received) ~= "boolean" then
        error(("%s: bad argument #2 'received' (boolean expected, got %s)"):format(who, type(received)), 3)
    end
    if getmetatable(event) ~= event_mt or event.provider ~= name then return provider.answer(400, "ERROR") end
    if not received then return provider.answer(500, "ERROR") end
    return provider.answer(200, "OK")
end

---------------------------------------------------------------------------
-- The constructor: options, environment, pipeline
-- @section the_constructor
---------------------------------------------------------------------------

--- The transport options, the same set for every provider's `new`: `http`
-- (a ready luapay.http pipeline, alone) or the options provider.pipeline
-- gives http.new to build one. Each provider's OPTIONS is its own options
-- and these (provider.options).
provider.TRANSPORT_OPTIONS = { "http", "transport", "timeout_ms", "connect_timeout_ms", "deadline_ms", "retries",
    "verify", "ca_file", "proxy", "user_agent", "pool_size", "keepalive_ms", "max_head_bytes", "max_body_bytes",
    "sleep", "clock", "random" }

--- provider.options(own) -> a new list: the provider's own option names,
-- then provider.TRANSPORT_OPTIONS (a provider's OPTIONS).
function provider.options(own)
    local list = {}
    for _, name in ipairs(own) do list[#list + 1] = name end
    for _, name in ipairs(provider.TRANSPORT_OPTIONS) do list[#list + 1] = name end
    return list
end

--- provider.pipeline(fn, opts, live) -> opts.http, or a new luapay.http
-- pipeline built from the transport options of opts, with live (which
-- refuses verify = false). A ready pipeline comes with none of the others
-- (they would be ignored: it is built already), and a bad value raises,
-- naming fn and the option.
function provider.pipeline(fn, opts, live)
    if opts.http ~= nil then
        local h = opts.http
        if type(h) ~= "table" or type(h.request) ~= "function" then
            provider.option_error(fn, "http", "must be a luapay.http pipeline (http.new{...})", 4)
        end
        for _, name in ipairs(provider.TRANSPORT_OPTIONS) do
            if name ~= "http" and opts[name] ~= nil then
                provider.option_error(fn, name, "cannot be given with 'http': that pipeline is built already"
                    .. " (pass it to http.new instead)", 4)
            end
        end
        return h
    end
    local hopts = { live = live }
    for _, name in ipairs(provider.TRANSPORT_OPTIONS) do hopts[name] = opts[name] end
    local pipeline = http.new(hopts, fn, 3) -- not a tail call: the errors' level counts this frame
    return pipeline
end

--- provider.environment(fn, opts [, old]) -> "test" | "live": the
-- `environment` option, "test" by default. old names the provider's
-- spellings from before the contract, deprecated until 0.3: `live = true`
-- (old.live) and environment "sandbox"/"production" (old.words). Both an
-- old and the new form that disagree raise.
function provider.environment(fn, opts, old)
    old = old or {}
    local env = opts.environment
    if env ~= nil then
        local word = old.words and old.words[env] or env
        if word ~= "test" and word ~= "live" then
            provider.option_error(fn, "environment", 'must be "test" or "live"', 4)
        end
        env = word
    end
    if old.live and opts.live ~= nil then
        if type(opts.live) ~= "boolean" then provider.option_error(fn, "live", "must be a boolean (deprecated: use environment)", 4) end
        local from_live = opts.live and "live" or "test"
        if env ~= nil and env ~= from_live then
            provider.option_error(fn, "live", ("disagrees with environment = %q (live is deprecated: use environment)")
                :format(env), 4)
        end
        env = from_live
    end
    return env or "test"
end

--- provider.check_urls(fn, opts, environment, urls): urls is a list of
-- {option name, URL [, browser = true]}: the URLs the client calls, or
-- (browser) builds for the customer's browser. In live: each URL must be
-- https, and verify = false is refused; in either environment verify =
-- false is allowed only when every URL the client calls is loopback (the
-- sandbox).
function provider.check_urls(fn, opts, environment, urls)
    for _, u in ipairs(urls) do
        if environment == "live" and not u[2]:find("^https://") then
            provider.option_error(fn, u[1], "must be an https URL in the live environment", 4)
        end
    end
    if environment == "live" and opts.verify == false then
        provider.option_error(fn, "verify", "cannot be false in the live environment: TLS verification stays on", 4)
    end
    for _, u in ipairs(urls) do
        if not u.browser then http.check_verify_option(opts.verify, u[2], fn, 4) end
    end
end

--- provider.option_error(fn, name, message [, level]): raises
-- "fn: option 'name' message", by default at the caller of the
-- constructor that calls it.
function provider.option_error(fn, name, message, level)
    error(("%s: option '%s' %s"):format(fn, name, message), level or 3)
end

--- provider.string_option(fn, opts, name, required) -> the option's value:
-- a non-empty string, or nil when absent and not required. Raises at the
-- constructor's caller otherwise.
function provider.string_option(fn, opts, name, required)
    local v = opts[name]
    if v == nil then
        if required then provider.option_error(fn, name, "is required", 4) end
        return nil
    end
    if type(v) ~= "string" or v == "" then provider.option_error(fn, name, "must be a non-empty string", 4) end
    return v
end

-- The clients closed and the clients whose pipeline and transport are
-- their own (built by the constructor, not passed in), weakly keyed: the
-- client table carries no field for them.
local closed = setmetatable({}, { __mode = "k" })
local owned = setmetatable({}, { __mode = "k" })

--- provider.client(self, opts) -> self. Records whether the client built
-- its transport itself (neither `http` nor `transport` given): only then
-- does close release it, since a pipeline or transport passed in may be
-- shared by other clients and is its owner's to close.
function provider.client(self, opts)
    owned[self] = opts.http == nil and opts.transport == nil
    return self
end

local function release(self)
    if closed[self] then return end
    closed[self] = true
    local pipeline = rawget(self, "http")
    if owned[self] and pipeline then pipeline:close() end
end

--- provider.lifetime(Class, name): gives the client class of provider name
-- an idempotent close (also __close, for Lua 5.4's `local c <close> =`),
-- and makes every other method raise a misuse error naming it
-- once the client is closed. Call it after the class's last method.
function provider.lifetime(Class, name)
    for k, f in pairs(Class) do
        if type(k) == "string" and type(f) == "function" and k:sub(1, 2) ~= "__" and k ~= "close" then
            Class[k] = function(self, ...)
                if closed[self] then
                    error(("%s.Client:%s: called after client:close()"):format(name, k), 2)
                end
                return f(self, ...)
            end
        end
    end
    --- client:close(): releases the client's transport (the libcurl handle);
    -- calling it again does nothing.
    Class.close = release
    Class.__close = release
    -- No __gc on the client: an iterator (luapay.pager) keeps using the
    -- pipeline after its client is collected. The libcurl handle's own __gc
    -- (idempotent with close) frees it once nothing refers to it.
    return Class
end

return provider
