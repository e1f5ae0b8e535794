--- `luapay` subcommands for Trustly North America: export, verify.
local cli = require "luapay.cli"
local core = require "luapay.core"
local export = require "luapay.cli.export"
local trustly_na = require "luapay.trustly_na"

local adapter = {
    name = "trustly_na", repl_name = "trustly_na_client", secrets = { "access_key" },
    options = { verify = { authorization = "value" } },
}

local FIELDS = { "access_id", "access_key", "environment", "base_url" }
local CSV_FIELDS = { "paymentId", "merchantReference", "paymentType", "amount", "paid", "currency", "createdAt",
    "auth.status", "auth.message" }

function adapter.sandbox_settings(base_url)
    local fake = require "luapay.sandbox.trustly_na"
    return { access_id = fake.DEFAULTS.access_id, access_key = fake.DEFAULTS.access_key, base_url = base_url }
end

local function settings(ctx)
    return cli.settings(ctx, adapter, FIELDS, { "access_id", "access_key" })
end

--- A client for the given settings (the sandbox's or the configured ones).
function adapter.client(s)
    return cli.new_client(trustly_na.new, {
        access_id = s.access_id, access_key = s.access_key, environment = s.environment, base_url = s.base_url,
    })
end

-- The payment's money fields, which Trustly NA gives as decimal strings.
local MONEY = { "amount", "paid", "pending", "refunded", "reversed", "balance" }

-- Exports print amounts as every luapay event does: integers in minor units
-- of the payment's currency ("1146.95" USD -> 114695), the unit beGateway's
-- export already uses. A value that does not convert stays as given.
local function in_minor_units(iterator)
    return function()
        local tx, err = iterator()
        if type(tx) == "table" then
            for _, field in ipairs(MONEY) do
                local v = type(tx[field]) == "string" and core.to_minor(tx[field], tx.currency)
                if v then tx[field] = v end
            end
        end
        return tx, err
    end
end

function adapter.export(ctx, _, opts)
    local from = export.unix_ms(export.datetime(opts.from, "from"))
    local to = export.unix_ms(export.datetime(opts.to, "to", true)) + 999
    local it = adapter.client(settings(ctx)):payments{ createdAt = { start = from, ["end"] = to },
        resume = export.resume(opts.resume) }
    return export.stream(in_minor_units(it), opts, CSV_FIELDS)
end

-- A saved notification body, with --authorization (the Authorization header).
function adapter.verify(ctx, pos, opts)
    return adapter.client(settings(ctx)):notification(cli.read_input(pos[2]), opts.authorization)
end

return adapter
