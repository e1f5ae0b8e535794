--- `luapay` subcommands for Trustly North America: export, verify.
local cli = require "luapay.cli"
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

function adapter.export(ctx, _, opts)
    local from = export.unix_ms(export.datetime(opts.from, "from"))
    local to = export.unix_ms(export.datetime(opts.to, "to", true)) + 999
    local it = adapter.client(settings(ctx)):payments{ createdAt = { start = from, ["end"] = to },
        resume = export.resume(opts.resume) }
    return export.stream(it, opts, CSV_FIELDS)
end

-- A saved notification body, with --authorization (the Authorization header).
function adapter.verify(ctx, pos, opts)
    return adapter.client(settings(ctx)):notification(cli.read_input(pos[2]), opts.authorization)
end

return adapter
