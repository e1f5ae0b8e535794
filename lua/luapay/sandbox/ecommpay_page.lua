--- luapay.sandbox.ecommpay_page: a fake ecommpay Payment Page for the
-- Trustly method, served by the Gate fake (luapay.sandbox.ecommpay) at
-- /ecommpay/payment, so a client with payment_page_base = sb.url ..
-- "/ecommpay" sends the customer's browser here:
--
--   GET  /ecommpay/payment?<params>&signature=...: the URL that
--     ecommpay.payment_page_url / client:payment_page builds. The signature
--     is checked over the decoded parameters, as ecommpay checks it; a wrong
--     one, an unknown project, a missing required parameter (project_id,
--     payment_id, payment_amount, payment_currency, customer_id), a currency
--     Trustly does not take, a purchase below 1.00 EUR, a customer_country
--     where Trustly takes no purchase (the Gate fake's lists) or a
--     payment_id already used in the project shows an error page (HTTP 400). Otherwise the page shows the payment
--     (amount as money, currency, description, payment id), asks for the
--     additional parameters the request left out (customer_first_name,
--     customer_last_name, customer_email, customer_country), lists
--     Trustly's banks for customer_country (all of the fake's banks when
--     no country is known) and has Approve and Decline buttons. Plain HTML
--     forms, no JavaScript; every value is HTML-escaped.
--   POST /ecommpay/payment: the form. It carries the signed query back and
--     is checked again, so the page keeps no state until the customer
--     decides. Approve without a bank or a missing parameter shows the page
--     again with the problem (HTTP 422). Otherwise the payment is made in
--     the Gate fake's state (Gate's status and refund see it) and the
--     customer is redirected (303): approved to merchant_success_url, else
--     redirect_success_url; declined to merchant_fail_url, else
--     redirect_fail_url; merchant_return_url when the outcome has no URL of
--     its own; without any of them the fake shows its own result page. The
--     result is POSTed as a Payment Page callback (project_id and
--     signature at the root) to merchant_callback_url or config
--     callback_url, through the Gate fake's callbacks.
local core = require "luapay.core"
local gate = require "luapay.sandbox.ecommpay"

local M = {}

--- Trustly's banks in the fake, a few per country (the real list is
-- longer): { id, name }.
M.BANKS = {
    SE = { { "se-swedbank", "Swedbank" }, { "se-seb", "SEB" }, { "se-handelsbanken", "Handelsbanken" },
           { "se-nordea", "Nordea" } },
    FI = { { "fi-nordea", "Nordea" }, { "fi-op", "OP" }, { "fi-danske", "Danske Bank" } },
    DE = { { "de-sparkasse", "Sparkasse" }, { "de-deutsche", "Deutsche Bank" }, { "de-commerzbank", "Commerzbank" } },
    EE = { { "ee-swedbank", "Swedbank" }, { "ee-seb", "SEB" }, { "ee-lhv", "LHV" } },
    NL = { { "nl-ing", "ING" }, { "nl-abn", "ABN AMRO" }, { "nl-rabobank", "Rabobank" } },
    PL = { { "pl-pko", "PKO Bank Polski" }, { "pl-mbank", "mBank" } },
}
local COUNTRIES = {}
for cc in pairs(M.BANKS) do COUNTRIES[#COUNTRIES + 1] = cc end
table.sort(COUNTRIES)

-- The additional parameters the page asks for when the request left them out.
local ASKED = { { "customer_first_name", "First name" }, { "customer_last_name", "Last name" },
                { "customer_email", "E-mail" }, { "customer_country", "Country (ISO 3166-1 alpha-2)" } }
local REQUIRED = { "project_id", "payment_id", "payment_amount", "payment_currency", "customer_id" }

local function esc(s)
    return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
                                           ["'"] = "&#39;" }))
end

local function html(status, title, body)
    ngx.status = status
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", esc(title), "</title></head>\n<body>\n",
              "<h1>", esc(title), "</h1>\n", body, "\n</body></html>\n")
    return ngx.exit(status)
end

local function error_page(message)
    return html(400, "Payment Page error", ("<p id=\"error\">%s</p>"):format(esc(message)))
end

local function money(amount, currency)
    return core.to_decimal(amount, currency) or ("%d.%02d"):format(math.floor(amount / 100), amount % 100)
end

-- Why Trustly takes no purchase from the country, or nil.
local function country_problem(cc)
    local g = gate.internal
    if g.purchase_countries[cc] then return nil end
    return g.payout_only[cc] and ("Only payouts are supported in " .. cc)
        or ("Country " .. cc .. " is not supported by the method")
end

-- The signed parameters from a query string, or nil and what is wrong, as
-- the error page says it.
local function signed_params(c, query)
    local args = ngx.decode_args(query or "", 1000)
    local params, sig = {}, nil
    for k, v in pairs(args) do
        if type(v) == "table" then return nil, "Parameter " .. k .. " is given more than once" end
        if v == true then v = "" end
        if k == "signature" then sig = v else params[k] = v end
    end
    local secret = params.project_id and c.projects[params.project_id]
    if not secret then return nil, "Unknown project" end
    if not sig or not core.equal(core.hmac("sha512", secret, assert(core.ecommpay_canonical(params)), "base64"), sig) then
        return nil, "Invalid signature"
    end
    for _, name in ipairs(REQUIRED) do
        if (params[name] or "") == "" then return nil, "Required parameter " .. name .. " is missing" end
    end
    if not params.payment_amount:find("^%d+$") or #params.payment_amount > 15 or tonumber(params.payment_amount) < 1 then
        return nil, "payment_amount must be a positive integer in minor units"
    end
    if not gate.CURRENCIES[params.payment_currency] then
        return nil, "Currency " .. params.payment_currency .. " is not available for Trustly"
    end
    -- the Trustly document: purchases from 1.00 EUR, and not in the payout-only countries
    if params.payment_currency == "EUR" and tonumber(params.payment_amount) < 100 then
        return nil, "payment_amount is below the method minimum (1.00 EUR)"
    end
    if (params.customer_country or "") ~= "" and country_problem(params.customer_country) then
        return nil, country_problem(params.customer_country)
    end
    if gate.internal.load(tonumber(params.project_id), params.payment_id) then
        return nil, "Payment " .. params.payment_id .. " already exists in this project"
    end
    return params
end

local function row(label, value, id)
    return ("<tr><th>%s</th><td id=\"%s\">%s</td></tr>"):format(esc(label), id, esc(value))
end

local function show(status, query, p, form, problem)
    local out = {
        problem and ("<p id=\"problem\">%s</p>"):format(esc(problem)) or "",
        "<table>",
        row("Amount", money(tonumber(p.payment_amount), p.payment_currency) .. " " .. p.payment_currency, "amount"),
        row("Description", p.payment_description or "", "description"),
        row("Payment", p.payment_id, "payment-id"),
        "</table>",
        ("<form method=\"post\" action=\"payment\">\n<input type=\"hidden\" name=\"query\" value=\"%s\">"):format(esc(query)),
    }
    for _, f in ipairs(ASKED) do
        if (p[f[1]] or "") == "" then
            out[#out + 1] = ("<p><label>%s <input name=\"%s\" value=\"%s\"></label></p>"):format(
                esc(f[2]), f[1], esc(form[f[1]] or ""))
        end
    end
    local country = (p.customer_country or ""):upper()
    out[#out + 1] = "<fieldset><legend>Choose your bank (Trustly)</legend>"
    for _, cc in ipairs(M.BANKS[country] and { country } or COUNTRIES) do
        for _, bank in ipairs(M.BANKS[cc]) do
            out[#out + 1] = ("<p><label><input type=\"radio\" name=\"bank\" value=\"%s\"%s> %s (%s)</label></p>"):format(
                bank[1], form.bank == bank[1] and " checked" or "", esc(bank[2]), cc)
        end
    end
    out[#out + 1] = "</fieldset>"
    out[#out + 1] = "<p><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>"
        .. " <button type=\"submit\" name=\"decision\" value=\"decline\">Decline</button></p>\n</form>"
    return html(status, "Pay with Trustly", table.concat(out, "\n"))
end

local function bank_of(id)
    for cc, banks in pairs(M.BANKS) do
        for _, bank in ipairs(banks) do
            if bank[1] == id then return bank, cc end
        end
    end
end

-- What is missing before the customer can approve, or nil.
local function problem_of(p, form)
    for _, f in ipairs(ASKED) do
        if (p[f[1]] or "") == "" and (form[f[1]] or "") == "" then return f[2] .. " is required" end
    end
    local country = (p.customer_country or "") ~= "" and p.customer_country or form.customer_country or ""
    if country_problem(country) then return country_problem(country) end
    local _, bank_country = bank_of(form.bank or "")
    if not bank_country then return "Choose your bank" end
    if M.BANKS[country] and bank_country ~= country then return "Choose a bank in " .. country end
end

local function decide(c, p, form)
    local g = gate.internal
    local approve = form.decision == "approve"
    local state = {
        project_id = tonumber(p.project_id), payment_id = p.payment_id, payment_type = "purchase",
        status = approve and "success" or "decline", amount = tonumber(p.payment_amount),
        currency = p.payment_currency, description = p.payment_description, customer_id = p.customer_id,
        callback_url = (p.merchant_callback_url or "") ~= "" and p.merchant_callback_url or c.callback_url,
        refunded = 0, interface = "payment_page", bank = approve and form.bank or nil,
    }
    for _, f in ipairs(ASKED) do state[f[1]] = (p[f[1]] or "") ~= "" and p[f[1]] or form[f[1]] end
    local op = approve and g.new_operation("sale", state, "success", "success")
        or g.new_operation("sale", state, "decline", "customer_declined")
    if not g.create(state) then return error_page("Payment " .. p.payment_id .. " already exists in this project") end
    if approve then g.adjust_balance(c, state.project_id, state.currency, state.amount) end
    -- A Payment Page callback: project_id and the signature at the root.
    local body = g.callback_body(state, op)
    body.general, body.project_id = nil, state.project_id
    g.send_callbacks(c, state, { body })
    local function url(...)
        for _, name in ipairs { ... } do
            if (p[name] or "") ~= "" then return p[name] end
        end
    end
    local to = approve and url("merchant_success_url", "redirect_success_url", "merchant_return_url")
        or url("merchant_fail_url", "redirect_fail_url", "merchant_return_url")
    if to then
        ngx.header["Location"] = to
        return html(303, "Redirecting", ("<p><a href=\"%s\">Back to the shop</a></p>"):format(esc(to)))
    end
    return html(200, approve and "Payment approved" or "Payment declined",
        ("<p id=\"result\">Payment %s: %s</p>"):format(esc(p.payment_id), approve and "success" or "decline"))
end

--- Serves GET and POST /ecommpay/payment; c: the Gate fake's settings.
function M.handle(c)
    local method = ngx.req.get_method()
    if method == "GET" then
        local query = ngx.var.args or ""
        local p, err = signed_params(c, query)
        if not p then return error_page(err) end
        return show(200, query, p, {})
    elseif method == "POST" then
        ngx.req.read_body()
        local form = ngx.req.get_post_args(100) or {}
        for k, v in pairs(form) do
            if type(v) ~= "string" then form[k] = nil end
        end
        local p, err = signed_params(c, form.query)
        if not p then return error_page(err) end
        if form.decision == "approve" then
            local problem = problem_of(p, form)
            if problem then return show(422, form.query, p, form, problem) end
        elseif form.decision ~= "decline" then
            return show(422, form.query, p, form, "Approve or decline the payment")
        end
        return decide(c, p, form)
    end
    return html(405, "Payment Page error", "<p id=\"error\">Method not allowed</p>")
end

return M
