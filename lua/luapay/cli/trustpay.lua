--- `luapay` subcommands for TrustPay: sign, verify, url, call.
local cli = require "luapay.cli"
local http = require "luapay.http"
local trustpay = require "luapay.trustpay"

local adapter = { name = "trustpay", repl_name = "trustpay_client", secrets = { "secret", "banking_password" } }

local FIELDS = { "account_id", "secret", "environment", "base_url", "banking_username", "banking_password", "banking_base_url" }

--- Settings for the fake at base_url (the sandbox's test account).
function adapter.sandbox_settings(base_url)
    local fake = require "luapay.sandbox.trustpay"
    return {
        account_id = fake.DEFAULTS.account_id, secret = fake.DEFAULTS.secret, base_url = base_url,
        banking_username = fake.DEFAULTS.banking.username, banking_password = fake.DEFAULTS.banking.password,
        banking_base_url = base_url,
    }
end

--- A client for the given settings (the sandbox's or the configured ones).
function adapter.client(s)
    local banking
    if s.banking_username then
        banking = { username = s.banking_username, password = s.banking_password, base_url = s.banking_base_url }
    end
    return cli.new_client(trustpay.new, {
        account_id = s.account_id, secret = s.secret, environment = s.environment, base_url = s.base_url,
        banking = banking,
    })
end

local function client(ctx)
    return adapter.client(cli.settings(ctx, adapter, FIELDS, { "account_id", "secret" }))
end

-- Input: {"kind": "card_purchase", "fields": {...}} -> the signed message.
function adapter.sign(ctx, pos, opts)
    local input = cli.json_input(cli.read_input(pos[2]), "the request")
    if type(input) ~= "table" or type(input.kind) ~= "string" or type(input.fields) ~= "table" then
        cli.usage_error('a TrustPay request to sign is {"kind": "<message kind>", "fields": {...}}')
    end
    local s = opts.sandbox and adapter.sandbox_settings("") or cli.settings(ctx, adapter, FIELDS, { "secret" })
    local values, err = trustpay.message(input.kind, input.fields)
    if not values then return nil, err end
    local out = { kind = input.kind, Signature = trustpay.signature(s.secret, values) }
    if opts.explain then out.signed_message = table.concat(values, "/") end
    return out
end

-- Input: the notification's query string, or a JSON object of its
-- parameters (TrustPay's e-mail notification), verified as that query.
function adapter.verify(ctx, pos, opts)
    local text = cli.read_input(pos[2]):gsub("%s+$", "")
    local raw = text
    if text:sub(1, 1) == "{" then raw = http.encode_query(cli.json_input(text, "the notification")) end
    local event, err = client(ctx):notification(raw)
    if not event then return nil, err end
    if opts.explain then event.extra.explain = "HMAC-SHA256 over the notification's signed fields joined by '/'" end
    return event
end

local function url_builder(method)
    return function(ctx, pos)
        local params = cli.json_input(cli.read_input(pos[2]), "the payment parameters")
        local c = client(ctx)
        local url, err = c[method](c, params)
        if not url then return nil, err end
        return { url = url }
    end
end

adapter.urls = {
    ["trustpay-wire"] = url_builder("wire_payment_url"),
    ["trustpay-card"] = url_builder("card_payment_url"),
}

local CALLS = {
    refund = true, wire_refund = true, capture = true, recurring_charge = true, accounts = true,
    account = true, transaction = true, order = true, refund_payment = true, create_order = true,
}

function adapter.call(ctx, pos)
    local method = cli.choose(CALLS, pos[2], "TrustPay method")
    local params = cli.request_input(pos[3], "the request")
    local c = client(ctx)
    return c[method](c, params)
end

return adapter
