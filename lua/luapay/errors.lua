--- Error objects for everything that can go wrong at run time (DESIGN.md,
-- "Errors"), and the helpers that keep secrets out of messages and logs.
local core = require "luapay.core"

local errors = {}

errors.TYPES = {
    network = true, timeout = true, tls = true, http = true, provider = true,
    signature = true, validation = true, config = true,
}

local function escape_pattern(s)
    return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

--- errors.redact(text, secrets): text with every occurrence of each secret
-- string replaced by "[REDACTED]". Secrets shorter than 4 bytes are still
-- replaced: a short password is still a password.
function errors.redact(text, secrets)
    text = tostring(text)
    for _, secret in ipairs(secrets or {}) do
        if type(secret) == "string" and secret ~= "" then
            text = text:gsub(escape_pattern(secret), "[REDACTED]")
        end
    end
    return text
end

---------------------------------------------------------------------------
-- The vault: every client's secrets, out of the client table
---------------------------------------------------------------------------
-- A provider declares which fields of its client are secrets
-- (errors.secret_fields); their values live here, keyed weakly by the
-- client, so nothing that walks a client (pretty, a REPL, a serializer)
-- finds them. Each secret string is also registered in the forms an answer
-- may echo it back in: raw, JSON-escaped, percent-encoded, base64 (alone
-- and at any offset inside a longer base64 text), hex, and base64 of
-- "user:secret" where it is sent as HTTP Basic. Errors (errors.new and
-- tostring), errors.mask and luapay.pretty replace every registered form
-- by "[REDACTED]", whichever client it belongs to.
-- @section the_vault

--- A secret shorter than this cannot be told apart from ordinary text (a
-- password "p" would take every "p" out of every message): it is kept in
-- the vault but not searched for.
errors.MIN_SECRET = 4

local vault = setmetatable({}, { __mode = "k" }) -- owner -> { values = {name = v}, forms = {name = {text...}} }
local basic_users = setmetatable({}, { __mode = "k" }) -- class -> { secret field = field of its Basic user }
local version, cached, cached_version = 0, nil, -1

local function percent_encode(s)
    return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- The part of base64(offset zero bytes .. s) that depends on s alone: what
-- any base64 text holding s at that offset (mod 3) contains.
local function base64_core(s, offset)
    local encoded = core.base64_encode(("\0"):rep(offset) .. s)
    return encoded:sub(math.ceil(8 * offset / 6) + 1, math.floor(8 * (offset + #s) / 6))
end

-- Every text form of a secret string, longest first.
local function forms_of(secret, user)
    local list, seen = {}, {}
    local function add(f, min)
        if #f >= (min or errors.MIN_SECRET) and not seen[f] then
            seen[f] = true
            list[#list + 1] = f
        end
    end
    local function echoed(f, min) -- as is, as lua-cjson writes it ("\/"), percent-encoded
        add(f, min)
        add((f:gsub("/", "\\/")), min)
        add(percent_encode(f), min)
    end
    echoed(secret)
    local json = core.json_encode(secret)
    if json then echoed(json:sub(2, -2)) end
    echoed(core.base64_encode(secret))
    add(core.hex_encode(secret))
    add(core.hex_encode(secret, true))
    for offset = 0, 2 do echoed(base64_core(secret, offset), 8) end
    if user then echoed(core.base64_encode(user .. ":" .. secret)) end
    -- A PEM key: its base64 body, joined and line by line (it may come back
    -- without its armour or wrapped differently).
    local body = secret:match("%-%-%-%-%-BEGIN [^\n]*%-%-%-%-%-(.-)%-%-%-%-%-END")
    if body then
        for line in body:gmatch("[%w%+/=]+") do add(line, 16) end
        add((body:gsub("%s+", "")), 16)
    end
    table.sort(list, function(a, b) return #a > #b end)
    return list
end

local RETIRED = 4 -- replaced secrets still recognised, per owner

-- Stores one secret of owner (nil removes it). A string registers its text
-- forms; a key object replaces the value but keeps the forms of the text
-- it was read from. The forms of a replaced or removed secret stay
-- registered for a while: a dropped token may still be valid, and an
-- answer may echo it after the client let go of it.
local function keep(owner, name, value)
    local entry = vault[owner]
    if not entry then
        entry = { values = {}, forms = {}, retired = {} }
        vault[owner] = entry
    end
    entry.values[name] = value
    if value == nil or type(value) == "string" then
        local old = entry.forms[name]
        if old then
            table.insert(entry.retired, 1, old)
            entry.retired[RETIRED + 1] = nil
        end
        local users = basic_users[getmetatable(owner)]
        local user = users and users[name] and rawget(owner, users[name])
        entry.forms[name] = value and #value >= errors.MIN_SECRET and forms_of(value, user and tostring(user)) or nil
        version = version + 1
    end
end

-- Every registered form of every live owner, longest first; nil when none.
local function live_forms()
    if next(vault) == nil then return nil end
    if cached_version ~= version then
        local list, seen = {}, {}
        local function add(forms)
            for _, f in ipairs(forms) do
                if not seen[f] then
                    seen[f] = true
                    list[#list + 1] = f
                end
            end
        end
        for _, entry in pairs(vault) do
            for _, forms in pairs(entry.forms) do add(forms) end
            for _, forms in ipairs(entry.retired) do add(forms) end
        end
        table.sort(list, function(a, b) return #a > #b end)
        cached, cached_version = list, version
    end
    if #cached == 0 then return nil end
    return cached
end

local REDACTED = "[REDACTED]"
local TAIL = 6 -- a snippet cut this far into a secret still ends in it

local function hide_in(s, list)
    for _, f in ipairs(list) do
        if s:find(f, 1, true) then s = s:gsub(escape_pattern(f), REDACTED) end
    end
    -- A body snippet (raw = body:sub(1, 300)) may end inside a secret.
    for _, f in ipairs(list) do
        if #f > TAIL then
            local head = f:sub(1, TAIL)
            local at = s:find(head, math.max(1, #s - #f + 2), true)
            while at do
                if s:sub(at) == f:sub(1, #s - at + 1) then
                    s = s:sub(1, at - 1) .. REDACTED
                    break
                end
                at = s:find(head, at + 1, true)
            end
        end
    end
    return s
end

--- errors.hide(text) -> text with every registered secret, in any of its
-- forms, replaced by "[REDACTED]".
function errors.hide(text)
    text = tostring(text)
    local list = live_forms()
    if not list then return text end
    return hide_in(text, list)
end

-- value with every string in it hidden; a table that changes is copied
-- (with its metatable), so what the caller handed in is never changed.
local function scrub(v, list, seen)
    local t = type(v)
    if t == "string" then return hide_in(v, list) end
    if t ~= "table" then return v end
    if seen[v] ~= nil then return seen[v] end
    seen[v] = v
    local out = v
    for k, x in next, v do
        local y = scrub(x, list, seen)
        local k2 = type(k) == "string" and hide_in(k, list) or k
        if y ~= x or k2 ~= k then
            if out == v then
                out = {}
                for a, b in next, v do out[a] = b end
                seen[v] = out
            end
            out[k] = nil
            out[k2] = y
        end
    end
    if out ~= v then
        local mt = getmetatable(v)
        if type(mt) == "table" then setmetatable(out, mt) end
    end
    return out
end

local Error = {}
Error.__index = Error
errors.Error = Error

local function describe_fields(fields)
    local parts = {}
    for i, f in ipairs(fields) do
        parts[i] = f.message or ((f.path or "?") .. ": " .. (f.code or "invalid"))
    end
    return table.concat(parts, "; ")
end

function Error.__tostring(e)
    local s = "luapay " .. e.type .. " error: " .. tostring(e.message)
    if e.fields and #e.fields > 0 then s = s .. " [" .. describe_fields(e.fields) .. "]" end
    local extra = {}
    if e.http_status then extra[#extra + 1] = "HTTP " .. e.http_status end
    if e.code ~= nil then extra[#extra + 1] = "code " .. tostring(e.code) end
    if e.request_id then extra[#extra + 1] = "request " .. tostring(e.request_id) end
    if #extra > 0 then s = s .. " (" .. table.concat(extra, ", ") .. ")" end
    return errors.hide(s)
end

--- errors.new(type, message [, extra]) -> error object.
-- extra may carry http_status, code, retryable, request_id, fields, raw and
-- anything else the caller should see (attempts, elapsed, resume, ...).
-- Every string in it is cleared of registered secrets (see the vault below);
-- a table that holds one is copied, never changed.
-- An unknown type is a programming error and raises.
function errors.new(kind, message, extra)
    if not errors.TYPES[kind] then
        error("errors.new: bad argument #1 'type' (unknown error type '" .. tostring(kind) .. "')", 2)
    end
    local e = {}
    if extra then for k, v in pairs(extra) do e[k] = v end end
    e.type = kind
    e.message = message
    local list = live_forms()
    if list then -- whatever a server echoed, no registered secret stays in it
        local seen = {}
        for k, v in pairs(e) do e[k] = scrub(v, list, seen) end
    end
    return setmetatable(e, Error)
end

--- errors.sort_fields(list) -> list, sorted in place into core.validate's
-- order: by path, array indexes compared as numbers (items[2] before
-- items[10]) and a path before its extensions, then by code. Providers that
-- add violations of their own keep one order for the merchant.
function errors.sort_fields(list)
    local function key(p)
        return (p:gsub("%[(%d+)%]", function(d) return ("[%012d]"):format(tonumber(d)) end))
    end
    table.sort(list, function(a, b)
        local ka, kb = key(a.path), key(b.path)
        if ka ~= kb then return ka < kb end
        return a.code < b.code
    end)
    return list
end

--- errors.is(value [, type]): is value a luapay error (of that type)?
function errors.is(value, kind)
    return getmetatable(value) == Error and (kind == nil or value.type == kind)
end

-- Secret key names, compared lower-cased without "_" and "-": the value of
-- such a key is masked wherever it appears, so a table can be shown in a
-- REPL or a log. The secret fields providers declare are added.
errors.SECRET_KEYS = {
    password = true, secret = true, privatekey = true, accesskey = true,
    token = true, accesstoken = true, refreshtoken = true, idtoken = true, clientsecret = true,
    authorization = true, proxyauthorization = true, passphrase = true, apikey = true,
    privatekeypassphrase = true, shopkey = true, basic = true, bearer = true,
}
--- Any key containing one of these is a secret too (banking_password,
-- private_key_passphrase, client_secret, ...).
errors.SECRET_KEY_PARTS = { "password", "passphrase", "secret" }

local function normalize(k)
    return (k:lower():gsub("[_%-]", ""))
end

local function is_secret_key(k)
    if type(k) ~= "string" then return false end
    local n = normalize(k)
    if errors.SECRET_KEYS[n] then return true end
    for _, part in ipairs(errors.SECRET_KEY_PARTS) do
        if n:find(part, 1, true) then return true end
    end
    return false
end

--- errors.secret_fields(Class, names [, basic]) -> Class. Instances of
-- Class keep the named fields in the vault: `obj.secret = v` stores v
-- there and `obj.secret` reads it back, and the table never holds it.
-- basic maps a secret field to the field holding the user it is sent with
-- as HTTP Basic ({secret = "psp_id"}); set the user first. Sets
-- Class.__index and Class.__newindex.
function errors.secret_fields(Class, names, basic)
    local secret = {}
    for _, name in ipairs(names) do
        secret[name] = true
        errors.SECRET_KEYS[normalize(name)] = true
    end
    basic_users[Class] = basic
    Class.__index = function(self, k)
        local v = Class[k]
        if v == nil and secret[k] then
            local entry = vault[self]
            return entry and entry.values[k]
        end
        return v
    end
    Class.__newindex = function(self, k, v)
        if secret[k] then keep(self, k, v) else rawset(self, k, v) end
    end
    return Class
end

--- errors.keep_secrets(owner, opts, names): stores opts[name] for each
-- name as owner's secret field (owner's class declared them with
-- secret_fields).
function errors.keep_secrets(owner, opts, names)
    for _, name in ipairs(names) do owner[name] = opts[name] end
end

--- errors.secrets_of(owner) -> the text forms of owner's secrets and of the
-- secrets of the objects in its fields (a client's banking part), longest
-- first, for errors.redact.
function errors.secrets_of(owner)
    local list = {}
    local function add(o)
        local entry = vault[o]
        if not entry then return end
        for _, forms in pairs(entry.forms) do
            for _, f in ipairs(forms) do list[#list + 1] = f end
        end
        for _, forms in ipairs(entry.retired) do
            for _, f in ipairs(forms) do list[#list + 1] = f end
        end
    end
    add(owner)
    for _, v in next, owner do add(v) end
    table.sort(list, function(a, b) return #a > #b end)
    return list
end

--- errors.describe(label, parts) -> a __tostring for a client: label, then
-- the parts in parentheses, each "$field" replaced by the field's value as
-- the table holds it (never a secret: those live in the vault).
--   Client.__tostring = errors.describe("luapay.x client", { "$environment", "user $username" })
function errors.describe(label, parts)
    return function(self)
        local out = {}
        for i, p in ipairs(parts) do
            out[i] = p:gsub("%$([%a_][%w_]*)", function(k) return tostring(rawget(self, k)) end)
        end
        return errors.hide(label .. " (" .. table.concat(out, ", ") .. ")")
    end
end

--- errors.mask(value): a deep copy in which the value of every secret-named
-- key is "***" and every registered secret inside a string is
-- "[REDACTED]". Tables with a metatable (clients, errors) are copied too and
-- keep it; cycles are kept as cycles.
function errors.mask(value)
    local list = live_forms()
    local seen = {}
    local function walk(v)
        if type(v) == "string" then return list and hide_in(v, list) or v end
        if type(v) ~= "table" then return v end
        if seen[v] then return seen[v] end
        local copy = {}
        seen[v] = copy
        for k, x in next, v do
            copy[walk(k)] = is_secret_key(k) and "***" or walk(x)
        end
        local mt = getmetatable(v)
        if type(mt) == "table" then setmetatable(copy, mt) end
        return copy
    end
    return walk(value)
end

return errors
