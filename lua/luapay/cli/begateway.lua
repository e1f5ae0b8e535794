--- `luapay` subcommands for beGateway: export, verify (notifications).
local begateway = require "luapay.begateway"
local cli = require "luapay.cli"
local export = require "luapay.cli.export"

local adapter = {
    name = "begateway", repl_name = "begateway_client", secrets = { "secret", "shop_key" },
    options = { verify = { signature = "value", authorization = "value" } },
}

local FIELDS = { "psp_id", "secret", "environment", "dwh_url", "shop_id", "shop_key", "public_key" }
local CSV_FIELDS = { "uid", "tracking_id", "type", "status", "amount", "currency", "created_at", "paid_at" }

function adapter.sandbox_settings(base_url)
    local fake = require "luapay.sandbox.begateway"
    -- The fake signs its webhooks with the sandbox's provider key, and they
    -- are test transactions: a client for the sandbox verifies and takes them.
    return {
        psp_id = fake.DEFAULTS.psp_id, secret = fake.DEFAULTS.secret, dwh_url = base_url,
        public_key = require("luapay.sandbox.test_keys").provider_public, accept_test = true,
    }
end

local function settings(ctx)
    return cli.settings(ctx, adapter, FIELDS, { "psp_id", "secret", "dwh_url" })
end

--- A client for the given settings (the sandbox's or the configured ones).
-- public_key: the PEM (or bare base64) itself, or the path of a file holding it.
function adapter.client(s)
    return cli.new_client(begateway.new, {
        psp_id = s.psp_id, secret = s.secret, environment = s.environment, dwh_url = s.dwh_url, shop_id = s.shop_id,
        shop_key = s.shop_key,
        public_key = cli.key(s.public_key, "begateway public_key"), accept_test = s.accept_test,
    })
end

function adapter.export(ctx, _, opts)
    local c = adapter.client(settings(ctx))
    local it = c:export{
        date_from = export.datetime(opts.from, "from"), date_to = export.datetime(opts.to, "to", true),
        limit = 1000, response_parameters = { "main" }, resume = export.resume(opts.resume),
    }
    return export.stream(it, opts, CSV_FIELDS)
end

-- A saved notification body; --signature (Content-Signature) or --authorization.
function adapter.verify(ctx, pos, opts)
    local body = cli.read_input(pos[2])
    local headers = { ["content-signature"] = opts.signature, authorization = opts.authorization }
    return adapter.client(settings(ctx)):notification(body, headers)
end

return adapter
