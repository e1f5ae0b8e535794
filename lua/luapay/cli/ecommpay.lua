--- `luapay` subcommands for ecommpay: sign, verify, url ecommpay-page, call.
local cli = require "luapay.cli"
local ecommpay = require "luapay.ecommpay"

local adapter = { name = "ecommpay", repl_name = "gate", secrets = { "secret" } }

local FIELDS = { "project_id", "secret", "environment", "base_url", "payment_page_base" }
local CALLS = { sale = true, sale_saved = true, recurring = true, account_verification = true, refund = true,
    payout = true, status = true }

function adapter.sandbox_settings(base_url)
    local fake = require "luapay.sandbox.ecommpay"
    return { project_id = fake.PROJECT_ID, secret = fake.SECRET, base_url = base_url }
end

local function settings(ctx)
    return cli.settings(ctx, adapter, FIELDS, { "project_id", "secret" })
end

--- A client for the given settings (the sandbox's or the configured ones).
function adapter.client(s)
    local project_id = tonumber(s.project_id)
    if not project_id then cli.config_error("ecommpay project_id must be a number") end
    return cli.new_client(ecommpay.new, { project_id = project_id, secret = s.secret, environment = s.environment,
        base_url = s.base_url, payment_page_base = s.payment_page_base })
end

-- A request's JSON -> its signature (and the canonical string with --explain).
function adapter.sign(ctx, pos, opts)
    local params = cli.json_input(cli.read_input(pos[2]), "the request")
    local secret = settings(ctx).secret
    local out = { signature = ecommpay.signature(params, secret) }
    if opts.explain then out.string_to_sign = ecommpay.string_to_sign(params) end
    return out
end

-- A saved callback body -> the verified event.
function adapter.verify(ctx, pos, opts)
    local body = cli.read_input(pos[2])
    local event, err = ecommpay.verify_notification(body, nil, { secret = settings(ctx).secret })
    if not event then return nil, err end
    if opts.explain then
        local decoded = require("luapay.core").json_decode(body, { numbers = "lexeme" })
        event.string_to_sign = decoded and ecommpay.string_to_sign(decoded)
    end
    return event
end

adapter.urls = {
    ["ecommpay-page"] = function(ctx, pos)
        local params = cli.json_input(cli.read_input(pos[2]), "the payment parameters")
        local url, err = adapter.client(settings(ctx)):payment_page(params)
        if not url then return nil, err end
        return { url = url }
    end,
}

-- call ecommpay <operation> [json]; the payment method defaults to trustly
-- ({"method": "...", "request": {...}} chooses another).
function adapter.call(ctx, pos)
    local op = cli.choose(CALLS, pos[2], "ecommpay operation")
    local input = cli.json_input(pos[3] or cli.read_input(nil), "the request")
    local gate = adapter.client(settings(ctx))
    if op == "status" then return gate:status(input.payment_id or input) end
    local method, request = "trustly", input
    if type(input) == "table" and input.request then method, request = input.method or method, input.request end
    return gate[op](gate, method, request)
end

return adapter
