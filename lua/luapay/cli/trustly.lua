--- `luapay` subcommands for Trustly: sign, verify, call.
local cli = require "luapay.cli"
local core = require "luapay.core"
local errors = require "luapay.errors"
local trustly = require "luapay.trustly"

local adapter = { name = "trustly", repl_name = "trustly_client", secrets = { "password", "private_key" } }

local FIELDS = { "username", "password", "private_key", "environment", "base_url", "trustly_public_key" }

-- Key settings: the PEM itself or the path of a file holding it.
local function private_key(s) return cli.key(s.private_key, "trustly private_key", true) end
local function public_key(s) return cli.key(s.trustly_public_key, "trustly trustly_public_key") end

function adapter.sandbox_settings(base_url)
    local d = require("luapay.sandbox.trustly").describe(base_url)
    return { username = d.credentials.username, password = d.credentials.password, base_url = d.base_url,
        private_key = d.credentials.private_key, trustly_public_key = d.credentials.trustly_public_key }
end

local function settings(ctx)
    return cli.settings(ctx, adapter, FIELDS, { "username", "password", "private_key" })
end

--- A client for the given settings (the sandbox's or the configured ones).
function adapter.client(s)
    return cli.new_client(trustly.new, { username = s.username, password = s.password, private_key = private_key(s),
        environment = s.environment, base_url = s.base_url, trustly_public_key = public_key(s) })
end

-- A copy of value in which whatever errors.mask hides (masked is its
-- result) is "[REDACTED]": the credentials in Data, whatever the key's case
-- or the value's type.
local function redacted(value, masked)
    local out = {}
    for k, v in pairs(value) do
        local m = type(masked) == "table" and masked[k]
        if type(v) == "table" and type(m) == "table" then
            out[k] = redacted(v, m)
        elseif m == v then
            out[k] = v
        else
            out[k] = "[REDACTED]"
        end
    end
    return setmetatable(out, getmetatable(value))
end

-- Input: {"method": "Deposit", "data": {...} [, "uuid": "..."]} -> the signed
-- JSON-RPC request; --explain adds the plaintext that was signed.
function adapter.sign(ctx, pos, opts)
    local input = cli.json_input(cli.read_input(pos[2]), "the request")
    if type(input) ~= "table" or type(input.method) ~= "string" or type(input.data) ~= "table" then
        cli.usage_error('a Trustly request to sign is {"method": "Deposit", "data": {...}}')
    end
    local s = settings(ctx)
    local key, err = core.pkey(private_key(s) or "")
    if not key then cli.config_error("the Trustly private key cannot be read: " .. err) end
    local uuid = input.uuid or core.uuid4()
    local out = { request = core.json_decode(trustly.request(input.method, uuid, input.data, key)) }
    if opts.explain then -- the credentials are in Data: keep them out of the output
        local data = redacted(input.data, errors.mask(input.data))
        out.plaintext = errors.redact(trustly.plaintext(input.method, uuid, data), { s.password })
    end
    return out
end

-- A saved notification body -> the verified event.
function adapter.verify(ctx, pos, opts)
    local body = cli.read_input(pos[2])
    local note, err = adapter.client(settings(ctx)):notification(body)
    if not note then return nil, err end
    if opts.explain then
        local decoded = core.json_decode(body, { numbers = "lexeme" })
        note.plaintext = trustly.plaintext(decoded.method, decoded.params.uuid, decoded.params.data)
    end
    return note
end

-- call trustly <Method> [json Data]: Deposit, Refund, Balance, ... (any API method).
function adapter.call(ctx, pos)
    local method = pos[2]
    if type(method) ~= "string" or not method:match("^%u%a+$") then
        cli.usage_error("a Trustly method name such as Deposit, Refund or Balance")
    end
    local data = cli.request_input(pos[3], "the request data")
    return adapter.client(settings(ctx)):call(method, data)
end

return adapter
