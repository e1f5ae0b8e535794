--- Error objects for everything that can go wrong at run time (DESIGN.md,
-- "Errors"), and the helpers that keep secrets out of messages and logs.
local errors = {}

errors.TYPES = {
    network = true, timeout = true, tls = true, http = true, provider = true,
    signature = true, validation = true, config = true,
}

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
    return s
end

--- errors.new(type, message [, extra]) -> error object.
-- extra may carry http_status, code, retryable, request_id, fields, raw and
-- anything else the caller should see (attempts, elapsed, resume, ...).
-- An unknown type is a programming error and raises.
function errors.new(kind, message, extra)
    if not errors.TYPES[kind] then
        error("errors.new: bad argument #1 'type' (unknown error type '" .. tostring(kind) .. "')", 2)
    end
    local e = {}
    if extra then for k, v in pairs(extra) do e[k] = v end end
    e.type = kind
    e.message = message
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

-- Keys whose values are secrets wherever they appear (compared lower-cased,
-- without "_" and "-"), so a table can be shown in a REPL or a log.
errors.SECRET_KEYS = {
    password = true, secret = true, privatekey = true, accesskey = true,
    token = true, accesstoken = true, refreshtoken = true, clientsecret = true,
    authorization = true, passphrase = true, apikey = true,
}

local function is_secret_key(k)
    if type(k) ~= "string" then return false end
    return errors.SECRET_KEYS[k:lower():gsub("[_%-]", "")] == true
end

--- errors.mask(value): a deep copy in which the value of every secret-named
-- key is "***". Cycles are kept as cycles.
function errors.mask(value, seen)
    if type(value) ~= "table" or getmetatable(value) then return value end
    seen = seen or {}
    if seen[value] then return seen[value] end
    local copy = {}
    seen[value] = copy
    for k, v in pairs(value) do
        copy[k] = is_secret_key(k) and "***" or errors.mask(v, seen)
    end
    return copy
end

return errors
