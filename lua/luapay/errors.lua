--- Error objects for everything that can go wrong at run time (README.md,
-- "How errors look"), and the helpers that keep secrets out of messages and logs.
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
-- finds them. The password in a URL a client holds
-- ("https://user:password@host") is kept as one of its secrets too. Each
-- secret string is registered in every form an answer or an output may
-- echo it in (errors.forms_of). Secrets that belong to no client (the
-- command line's configured values, a merchant's own) are added with
-- errors.add_secret. Errors (errors.new and tostring), errors.hide,
-- errors.mask and luapay.pretty replace every registered form by
-- "[REDACTED]", whichever client it belongs to.
-- @section the_vault

--- The shortest secret that is searched for, in the vault and on the
-- command line alike. 4, not more: a secret of 4 or 5 bytes (a test
-- password, a short PIN-like key) is still a secret, and luapay shows
-- none in any output; the price, look-alike text shown as "[REDACTED]", is
-- visible and only paid by whoever configured so short a credential. Not
-- less: a value of 1 to 3 bytes cannot be told apart from ordinary text
-- (a password "p" would take every "p" out of every message) and protects
-- nothing anyway; it is kept in the vault but not searched for.
errors.MIN_SECRET = 4

-- A key's body is also searched for line by line, and a base64 text at an
-- offset by its inner part: pieces shorter than this (a PEM's short last
-- line, "AQAB") are common base64 text, not the secret.
local MIN_PIECE, MIN_INNER = 16, 8

local vault = setmetatable({}, { __mode = "k" }) -- owner -> { values = {name = v}, forms = {name = {text...}} }
local basic_users = setmetatable({}, { __mode = "k" }) -- class -> { secret field = field of its Basic user }
local version, cached, cached_version = 0, nil, -1

-- Percent-encoded as RFC 3986 (space as %20) or as an HTML form (space as
-- "+"), in upper- or lower-case hex.
local function percent_encode(s, case, plus)
    local fmt = case == "upper" and "%%%02X" or "%%%02x"
    return (s:gsub("[^%w%-%._~]", function(c)
        if c == " " and plus then return "+" end
        return fmt:format(c:byte())
    end))
end

-- s with each UTF-8 character beyond ASCII as \uXXXX (a surrogate pair
-- above U+FFFF), as PHP, Python and Jackson write JSON; nil when s is not
-- UTF-8 (no JSON writer accepts it).
local function json_ascii(s, case)
    local fmt = case == "upper" and "\\u%04X" or "\\u%04x"
    local ok = true
    local out = s:gsub("[\128-\255][\128-\191]*", function(c)
        local b, n = c:byte(1), #c
        local cp, min
        if n == 2 and b >= 0xC2 and b <= 0xDF then
            cp, min = b - 0xC0, 0x80
        elseif n == 3 and b >= 0xE0 and b <= 0xEF then
            cp, min = b - 0xE0, 0x800
        elseif n == 4 and b >= 0xF0 and b <= 0xF4 then
            cp, min = b - 0xF0, 0x10000
        else
            ok = false
            return c
        end
        for i = 2, n do cp = cp * 64 + c:byte(i) - 0x80 end
        if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
            ok = false
            return c
        end
        if cp < 0x10000 then return fmt:format(cp) end
        cp = cp - 0x10000
        return fmt:format(0xD800 + math.floor(cp / 1024)) .. fmt:format(0xDC00 + cp % 1024)
    end)
    return ok and out or nil
end

-- The ways a JSON writer may put a string between its quotes: UTF-8 as is
-- (lua-cjson, Go) or as \uXXXX (PHP, Python in lower case; Jackson in
-- upper), "/" as is or as "\/" (PHP, lua-cjson), and .NET's
-- System.Text.Json, which also writes " < > & ' + ` as \u00XX.
local function json_forms(secret)
    local json = core.json_encode(secret)
    if not json then return {} end
    json = json:sub(2, -2)
    local upper = json_ascii(json, "upper")
    local list = {}
    for _, f in ipairs({ json, json_ascii(json, "lower") or json, upper or json }) do
        list[#list + 1] = f
        list[#list + 1] = (f:gsub("/", "\\/"))
    end
    if upper then
        local function u(c) return ("\\u%04X"):format(c:byte()) end
        list[#list + 1] = (upper:gsub('\\"', "\\u0022"):gsub("[<>&'+`]", u))
    end
    return list
end

-- base64 in both alphabets (standard, and URL-safe "-_"), with and without
-- its "=" padding.
local function base64_forms(encoded)
    local url = encoded:gsub("[+/]", { ["+"] = "-", ["/"] = "_" })
    return { encoded, (encoded:gsub("=+$", "")), url, (url:gsub("=+$", "")) }
end

-- The part of base64(offset zero bytes .. s) that depends on s alone: what
-- any base64 text holding s at that offset (mod 3) contains.
local function base64_core(s, offset)
    local encoded = core.base64_encode(("\0"):rep(offset) .. s)
    return encoded:sub(math.ceil(8 * offset / 6) + 1, math.floor(8 * (offset + #s) / 6))
end

local HTML = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- errors.forms_of(secret [, user]) -> every text form of a secret string
-- an output may show it in, longest first: as is and HTML-escaped; as JSON
-- writers escape it (json_forms); each of those percent-encoded (upper- or
-- lower-case hex, space as %20 or "+"); in base64 (both alphabets, padded
-- or not, alone and at any offset inside a longer base64 text) and hex; and
-- base64 of "user:secret" where it is sent as HTTP Basic. A base64 text
-- form also comes with "\/" and percent-encoded. A key (a PEM, or its bare
-- base64 body) also by the lines of its body, the body joined, and the hex
-- of its DER. Forms shorter than errors.MIN_SECRET are left out. The vault
-- computes them once per secret it is given, not per output.
function errors.forms_of(secret, user)
    local list, seen = {}, {}
    local function add(f, min)
        if f and #f >= (min or errors.MIN_SECRET) and not seen[f] then
            seen[f] = true
            list[#list + 1] = f
        end
    end
    local function encoded(f, min) -- a form inside JSON or a URL
        add(f, min)
        add((f:gsub("/", "\\/")), min)
        add(percent_encode(f, "upper"), min)
        add(percent_encode(f, "lower"), min)
    end
    add((secret:gsub("[&<>\"']", HTML)))
    local texts = json_forms(secret)
    table.insert(texts, 1, secret)
    for _, text in ipairs(texts) do
        add(text)
        for _, case in ipairs({ "upper", "lower" }) do
            add(percent_encode(text, case))
            add(percent_encode(text, case, true))
        end
    end
    for _, f in ipairs(base64_forms(core.base64_encode(secret))) do encoded(f) end
    add(core.hex_encode(secret))
    add(core.hex_encode(secret, true))
    for offset = 0, 2 do
        for _, f in ipairs(base64_forms(base64_core(secret, offset))) do encoded(f, MIN_INNER) end
    end
    if user then
        for _, f in ipairs(base64_forms(core.base64_encode(user .. ":" .. secret))) do encoded(f) end
    end
    -- A key: the base64 body of a PEM (its armour may be gone, its lines
    -- wrapped differently) or a bare body as some back offices show it.
    local body = secret:match("%-%-%-%-%-BEGIN [^\n]*%-%-%-%-%-(.-)%-%-%-%-%-END")
    if not body and #secret >= 64 and secret:match("^[%w+/=%s]+$") then body = secret end
    if body then
        for line in body:gmatch("[%w+/=]+") do add(line, MIN_PIECE) end
        local joined = body:gsub("%s+", "")
        add(joined, MIN_PIECE)
        local der = joined:match("^[%w+/=]+$") and core.base64_decode(joined)
        if der then
            add(core.hex_encode(der), MIN_PIECE)
            add(core.hex_encode(der, true), MIN_PIECE)
        end
    end
    table.sort(list, function(a, b) return #a > #b end)
    return list
end
-- The forms of a secret, computed once per (secret, user) while any owner
-- holds them: clients made per request with the same credentials (as in
-- an nginx handler) share one list. Keys: the secret's length fixes where
-- it ends, so no two pairs share a key. Callers never change a list.
local forms_cache = setmetatable({}, { __mode = "v" })
local function forms_of(secret, user)
    local key = #secret .. ":" .. secret .. (user and ("\0" .. user) or "")
    local forms = forms_cache[key]
    if not forms then
        forms = errors.forms_of(secret, user)
        forms_cache[key] = forms
    end
    return forms
end

local RETIRED = 4 -- replaced secrets still recognised, per owner

local function entry_of(owner)
    local entry = vault[owner]
    if not entry then
        entry = { values = {}, forms = {}, retired = {}, urls = {} }
        vault[owner] = entry
    end
    return entry
end

-- Registers forms (nil: none) under name. The forms of a replaced or
-- removed secret stay registered for a while: a dropped token may still be
-- valid, and an answer may echo it after the client let go of it.
local function set_forms(entry, name, forms)
    local old = entry.forms[name]
    if old then
        table.insert(entry.retired, 1, old)
        entry.retired[RETIRED + 1] = nil
    end
    entry.forms[name] = forms
    version = version + 1
end

local function unescape(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The secret in a URL's userinfo: the password of "user:password@", or the
-- whole userinfo without ":" (a token given as the user); and its user.
local function url_secret(url)
    local userinfo = url:match("^%a[%w+.-]*://([^/?#]*)@")
    if not userinfo then return nil end
    local user, password = userinfo:match("^([^:]*):(.*)$")
    if not user then return unescape(userinfo) end
    if password == "" then return nil end
    return unescape(password), unescape(user)
end

-- Keeps the secret of owner's field `name` when it holds a URL with
-- credentials (and forgets it when the field no longer does).
local function keep_url(owner, name, value)
    local entry = vault[owner]
    if entry and entry.urls[name] == value then return end
    local secret, user
    if type(value) == "string" then secret, user = url_secret(value) end
    if not secret and not (entry and entry.forms["@" .. name]) then return end
    entry = entry_of(owner)
    entry.urls[name] = value
    set_forms(entry, "@" .. name, secret and #secret >= errors.MIN_SECRET and forms_of(secret, user) or nil)
end

-- Stores one secret of owner (nil removes it). A string registers its text
-- forms; a key object replaces the value but keeps the forms of the text
-- it was read from. Also registers the credentials of the URLs owner holds
-- (a client's table is filled before its secrets are set).
local function keep(owner, name, value)
    local entry = entry_of(owner)
    if entry.values[name] == value and value ~= nil then return end
    entry.values[name] = value
    if value == nil or type(value) == "string" then
        local users = basic_users[getmetatable(owner)]
        local user = users and users[name] and rawget(owner, users[name])
        local forms = value and #value >= errors.MIN_SECRET and forms_of(value, user and tostring(user)) or nil
        set_forms(entry, name, forms)
    end
    for k, v in next, owner do
        if type(k) == "string" and type(v) == "string" then keep_url(owner, k, v) end
    end
end

-- Secrets of no client: kept for the life of the process.
local LOOSE = {}

--- errors.add_secret(value): from now on value (a string) is hidden like a
-- client's secret, in every form, from every error and output. For
-- secrets that belong to no client: the command line registers its
-- configured credentials here. Adding the same value again does nothing.
function errors.add_secret(value)
    if type(value) ~= "string" then
        error("errors.add_secret: bad argument #1 'value' (string expected, got " .. type(value) .. ")", 2)
    end
    keep(LOOSE, value, value)
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

--- errors.violation(path, code, message) -> one entry of a validation
-- error's fields, worded as core.validate words them ("path: message";
-- "value: message" for the value itself, path "").
function errors.violation(path, code, message)
    return { path = path, code = code, message = (path == "" and "value" or path) .. ": " .. message }
end

--- errors.validation(what, violations) -> the "validation" error of what (a
-- function or request) listing its violations, in core.validate's order.
function errors.validation(what, violations)
    errors.sort_fields(violations)
    return errors.new("validation", ("%s: %d invalid field%s"):format(what, #violations, #violations == 1 and "" or "s"),
        { fields = violations })
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
-- as HTTP Basic ({secret = "psp_id"}); set the user first. A field that
-- holds a URL with credentials keeps their password in the vault too (the
-- URL itself stays, and shows with "[REDACTED]" for it). Sets
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
        if secret[k] then
            keep(self, k, v)
        else
            rawset(self, k, v)
            if type(k) == "string" then keep_url(self, k, v) end
        end
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
-- the table holds it (never a secret: those live in the vault), and any URL
-- in it without its userinfo ("https://user:password@host" shows as
-- "https://host").
--   Client.__tostring = errors.describe("luapay.x client", { "$environment", "user $username" })
function errors.describe(label, parts)
    return function(self)
        local out = {}
        for i, p in ipairs(parts) do
            out[i] = p:gsub("%$([%a_][%w_]*)", function(k) return tostring(rawget(self, k)) end)
        end
        local text = label .. " (" .. table.concat(out, ", ") .. ")"
        return errors.hide((text:gsub("(%a[%w+.-]*://)[^/?#%s]*@", "%1")))
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
