-- A merchant's day with luapay, against the sandbox: every provider is a
-- fake on loopback, so it needs no account, no credentials and no internet.
-- `make demo` builds what it needs and runs it; by hand, from the repository
-- root, after `make` and `make LUA=luajit` (the sandbox's nginx loads the
-- LuaJIT build of the core):
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/merchant_day.lua
--
-- One sandbox hosts every fake provider and the shop's own endpoints
-- (examples/merchant_day_shop.lua: where callbacks and notifications
-- arrive, are verified and answered). The day:
--   1. ecommpay: a Trustly purchase; the callback sends the customer to the
--      bank, the final callback says it is paid;
--   2. Trustly: a deposit, the customer approves, the shop answers every
--      notification (signed OK), then refunds part of it;
--   3. TrustPay: a card preauthorization with the SCA fields, its verified
--      notification, then a capture of what was shipped;
--   4. ecommpay: a Trustly payout to a bank account (checked against the
--      account table of the Trustly method, Figure 32, before it is sent);
--   5. reconciliation of a day of the fakes' data set: the beGateway export
--      and the Trustly North America payments, streamed page by page and
--      matched against the shop's orders (as examples/reconcile.lua does).
--
-- Each step prints one line; a step that fails prints FAILED with the error
-- and the day goes on. A summary per provider closes the day; the exit
-- status is 0 when every step succeeded, 1 otherwise. To see a failure,
-- give a provider a wrong credential: LUAPAY_DEMO_FAIL=trustly (or ecommpay,
-- trustpay, begateway, trustly_na; several separated by commas).
local luapay = require "luapay"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local registry = require "luapay.providers"
local providers = require "luapay.sandbox.providers"
local dataset = require "luapay.sandbox.dataset"
local core = luapay.core

local started = core.monotime()

---------------------------------------------------------------------------
-- Output: one line per step, colour only on a terminal
---------------------------------------------------------------------------

local function is_terminal()
    local ok = os.execute("test -t 1")
    return ok == true or ok == 0
end
local COLOUR = is_terminal() and os.getenv("NO_COLOR") == nil and os.getenv("TERM") ~= "dumb"

local function paint(code, s)
    if not COLOUR then return s end
    return "\27[" .. code .. "m" .. s .. "\27[0m"
end
local function green(s) return paint("32", s) end
local function red(s) return paint("1;31", s) end
local function bold(s) return paint("1", s) end
local function dim(s) return paint("2", s) end

local LINE = "%2s  %-22s %-45s %-30s %s"

-- Everything a failure says, on one line.
local function one_line(err)
    return (tostring(err):gsub("%s*\n%s*", " "))
end

---------------------------------------------------------------------------
-- The providers, their test credentials, and failures on request
---------------------------------------------------------------------------

local PROVIDERS = registry.NAMES
local TITLE = {}
for _, p in ipairs(registry.LIST) do TITLE[p.name] = p.title end

local FAIL = {}
for name in (os.getenv("LUAPAY_DEMO_FAIL") or ""):gmatch("[^,%s]+") do
    if not TITLE[name] then
        io.stderr:write("merchant_day: LUAPAY_DEMO_FAIL: unknown provider '", name, "' (one of: ",
            table.concat(PROVIDERS, ", "), ")\n")
        os.exit(2)
    end
    FAIL[name] = true
end

-- The credential to use: the fake's own, or a wrong one on request.
local function credential(provider, value)
    if FAIL[provider] then return "wrong-" .. provider .. "-credential" end
    return value
end


-- The fakes' test credentials (what `luapay sandbox start` prints).
local ECOMMPAY = require "luapay.sandbox.ecommpay"                  -- PROJECT_ID, SECRET
local TRUSTLY = require("luapay.sandbox.trustly").describe("").credentials -- username, password, test keys
local TRUSTPAY = require("luapay.sandbox.trustpay").DEFAULTS          -- account_id, secret
local BEGATEWAY = require("luapay.sandbox.begateway").DEFAULTS        -- psp_id, secret
local TRUSTLY_NA = require("luapay.sandbox.trustly_na").DEFAULTS      -- access_id, access_key
local TRUSTLY_KEYS = {
    merchant = TRUSTLY.private_key,          -- the shop signs with it
    trustly = TRUSTLY.trustly_public_key,    -- stands in for Trustly's published key
}

local sb, SHOP -- the sandbox, and the shop's address on it: set when the day starts

---------------------------------------------------------------------------
-- The merchant's books for the summary
---------------------------------------------------------------------------

local books = {}
for _, p in ipairs(PROVIDERS) do books[p] = { ops = 0, money_in = {}, money_out = {} } end

-- The provider being worked with: a failure is booked against it.
local current

local function op(provider, n)
    current = provider
    books[provider].ops = books[provider].ops + (n or 1)
end

local function book(provider, side, amount, currency)
    local t = books[provider][side]
    if t[currency] == nil then t[#t + 1] = currency end
    t[currency] = (t[currency] or 0) + amount
end

-- JSON numbers decode as floats under Lua 5.4: amounts as integers.
local function int(v)
    if math.tointeger then return math.tointeger(v) or v end
    return v
end

local function money(amount, currency) return luapay.money.format(int(amount), currency) end

---------------------------------------------------------------------------
-- Helpers: the customer's browser, and waiting for what the shop received
---------------------------------------------------------------------------

-- Raises a step's failure (a luapay error or a message) without a position.
local function fail(err) error(one_line(err), 0) end
local function check(value, err)
    if value == nil then fail(err) end
    return value
end

local browser = core.http_client{}

local function visit(method, url, body, ctype)
    local res, err = browser:request{ method = method, url = url, body = body,
                                      headers = ctype and { ["Content-Type"] = ctype } or nil }
    return check(res, err)
end

local function json_of(res)
    return check(http.decode_json(res.body or ""), "not JSON: " .. tostring(res.body):sub(1, 100))
end

-- Waits until the shop has recorded at least n entries for an order.
local function shop_inbox(provider, ref, n)
    local url = SHOP .. "/inbox/" .. provider .. "/" .. http.escape(ref)
    for _ = 1, 500 do
        local list = json_of(visit("GET", url))
        if #list >= n then return list end
        core.sleep(0.01)
    end
    fail(("the shop received no %s callback for %s"):format(TITLE[provider], ref))
end

-- The n-th ecommpay callback for a payment, as the shop received it (raw).
local function ecommpay_callback(payment_id, n)
    local entry = shop_inbox("ecommpay", payment_id, n)[n]
    if int(entry.answered) ~= 200 then fail("the shop did not acknowledge callback " .. n) end
    return entry.body
end

-- Waits until Trustly delivered everything queued for an order; the fake's
-- record tells whether each answer was the shop's valid signed OK.
local function trustly_delivered(orderid)
    for _ = 1, 500 do
        local order = json_of(visit("GET", sb.url .. "/trustly/orders/" .. orderid))
        if order.done then
            for _, d in ipairs(order.deliveries) do
                if not d.verified or d.answer ~= "OK" then
                    fail(("the %s notification was not answered with a signed OK: %s"):format(d.method,
                        tostring(d.error or d.answer)))
                end
            end
            return order
        end
        core.sleep(0.01)
    end
    fail("Trustly's notifications for order " .. orderid .. " were not delivered")
end

local function find(list, field, value)
    for _, item in ipairs(list) do
        if item[field] == value then return item end
    end
end

---------------------------------------------------------------------------
-- The steps
---------------------------------------------------------------------------

local the_gate -- one ecommpay client for the day (steps 1 and 4)
local function ecommpay_gate()
    the_gate = the_gate or luapay.ecommpay.new{
        project_id = ECOMMPAY.PROJECT_ID,
        secret = credential("ecommpay", ECOMMPAY.SECRET),
        base_url = sb.url .. "/ecommpay", -- default: https://api.ecommpay.com
    }
    return the_gate
end

-- 1. ecommpay: a Trustly purchase of 25.00 EUR.
local function ecommpay_purchase()
    local gate = ecommpay_gate()
    local payment_id = "order-1001"
    op("ecommpay")
    check(gate:sale("trustly", {
        general = { payment_id = payment_id, merchant_callback_url = SHOP .. "/ecommpay/" .. payment_id },
        payment = { amount = 2500, currency = "EUR", description = "Order 1001: two mugs" },
        customer = { id = "customer-42", ip_address = "198.51.100.7", first_name = "Åsa", last_name = "Lindqvist",
                     email = "asa@example.se", country = "SE", language = "sv" },
        return_url = { success = "https://shop.example/thanks", decline = "https://shop.example/try-again" },
    }))
    -- The first callback: the customer must go to the bank, as redirect_data says.
    op("ecommpay")
    local first = check(gate:notification(ecommpay_callback(payment_id, 1)))
    local redirect = first.extra.redirect
    if not redirect then fail("the first callback carries no redirect_data (status " .. first.status .. ")") end
    local form = { decision = "approve" } -- the customer approves at Trustly (simulated)
    for k, v in pairs(redirect.body) do form[k] = v end
    local back = visit(redirect.method, redirect.url, http.encode_query(form), "application/x-www-form-urlencoded")
    if back.status ~= 302 then fail("the bank answered HTTP " .. back.status) end
    -- The final callback, verified on its raw body.
    op("ecommpay")
    local final = check(gate:notification(ecommpay_callback(payment_id, 2)))
    if final.status ~= "succeeded" then fail("the purchase ended " .. final.status) end
    book("ecommpay", "money_in", final.amount, final.currency)
    return money(final.amount, final.currency) .. " in", first.status .. " → " .. final.status
end

-- 2. Trustly: a deposit of 103.00 SEK, its notifications, a refund of 30.00 SEK.
local function trustly_deposit()
    local trustly_client = luapay.trustly.new{
        username = TRUSTLY.username,
        password = credential("trustly", TRUSTLY.password),
        private_key = TRUSTLY_KEYS.merchant,
        trustly_public_key = TRUSTLY_KEYS.trustly, -- against Trustly: leave out, luapay bundles its keys
        base_url = sb.url .. "/trustly/api/1",     -- against Trustly: leave out (environment = "test" | "live")
    }
    op("trustly")
    local deposit = check(trustly_client:deposit{
        NotificationURL = SHOP .. "/trustly/4f1c2b7e9a0d", -- hard to guess, no '?'
        EndUserID = "customer-4711",
        MessageID = "order-1002",
        Attributes = {
            Amount = 10300, Currency = "SEK", Firstname = "John", Lastname = "Doe", Email = "john@example.com",
            Country = "SE", Locale = "sv_SE", ShopperStatement = "MugShop.example",
            SuccessURL = "https://shop.example/thanks", FailURL = "https://shop.example/checkout",
        },
    })
    -- The customer follows the redirect to Trustly's checkout and approves.
    local page = visit("GET", deposit.url)
    if page.status ~= 200 then fail("the checkout page answered HTTP " .. page.status) end
    visit("POST", sb.url .. "/trustly/simulate/" .. deposit.orderid .. "/approve")
    local order = trustly_delivered(deposit.orderid)
    op("trustly", #order.deliveries)
    local events = shop_inbox("trustly", deposit.orderid, 3)
    local credit = find(events, "method", "credit")
    if not credit or credit.status ~= "succeeded" then fail("no credit notification reached the shop") end
    book("trustly", "money_in", int(credit.amount), credit.currency)

    -- A partial refund: one of the items was returned. The back office asks
    -- the shop, whose client records the refund in the store its
    -- notifications read: a credit answering a failed refund is then told
    -- from money received (trustly.new's store option).
    op("trustly")
    local refund = json_of(visit("POST", ("%s/trustly/refund/%s?amount=3000&currency=SEK"):format(SHOP, deposit.orderid)))
    if refund.result ~= "1" then fail("Trustly did not accept the refund: " .. tostring(refund.error or refund.result)) end
    local before = #order.deliveries
    order = trustly_delivered(deposit.orderid)
    op("trustly", #order.deliveries - before)
    local confirmed = find(shop_inbox("trustly", deposit.orderid, #events + 1), "method", "payoutconfirmation")
    if not confirmed then fail("the refund was not confirmed") end
    book("trustly", "money_out", int(confirmed.amount), confirmed.currency)
    local left = int(credit.amount) - int(confirmed.amount)
    return ("%s in, %s out"):format(money(credit.amount, credit.currency), money(confirmed.amount, confirmed.currency)),
        credit.status .. " → " .. (left > 0 and "partially_refunded" or "refunded")
end

-- 3. TrustPay: a card preauthorization of 60.00 EUR, then a capture of 54.50.
local function trustpay_card()
    local tp = luapay.trustpay.new{
        account_id = TRUSTPAY.account_id,
        secret = credential("trustpay", TRUSTPAY.secret),
        base_url = sb.url .. "/trustpay", -- default: https://amapi.trustpay.eu
    }
    local reference = "ORD-1003"
    op("trustpay")
    local url = check(tp:preauthorization_url{
        Amount = 6000, Currency = "EUR", Reference = reference,
        -- the SCA fields every card payment carries since October 2020
        CardHolder = "Eva Černá", Email = "eva@example.cz", BillingStreet = "Náměstí Svobody 1",
        BillingCity = "Brno", BillingPostcode = "602 00", BillingCountry = "CZ",
        NotificationUrl = SHOP .. "/trustpay",
        ReturnUrl = "https://shop.example/thanks", ErrorUrl = "https://shop.example/sorry",
        Localization = "cs", Description = "Order 1003",
    })
    -- The customer opens the pop-up and pays with a test card.
    local popup = visit("GET", url)
    if popup.status ~= 200 then
        local code = tonumber(popup.headers["x-sandbox-result-code"] or "")
        local result = code and luapay.trustpay.result_codes[code]
        fail(("TrustPay refused the payment: ResultCode %s%s"):format(code or ("HTTP " .. popup.status),
            result and (" " .. result.name) or ""))
    end
    visit("POST", sb.url .. "/trustpay/_sandbox/pay?card=4200000000001234&id=" .. popup.headers["x-sandbox-payment-id"], "")
    op("trustpay")
    local held = shop_inbox("trustpay", reference, 1)[1]
    if held.status ~= "authorized" or int(held.result_code) ~= 5 then
        fail(("the notification says %s (ResultCode %s), not authorized"):format(held.status, tostring(held.result_code)))
    end
    -- The order ships without one item: capture 54.50 of the 60.00 held.
    op("trustpay")
    check(tp:capture{ Amount = 5450, Currency = "EUR", Reference = reference, PaymentRequestId = held.payment_request_id })
    op("trustpay")
    local captured = shop_inbox("trustpay", reference, 2)[2]
    if captured.status ~= "succeeded" then fail("the capture notification says " .. captured.status) end
    book("trustpay", "money_in", int(captured.amount), captured.currency)
    return ("%s in (%s held)"):format(money(captured.amount, captured.currency), money(held.amount, held.currency)),
        held.status .. " → " .. captured.status
end

-- 4. ecommpay: a Trustly payout of 40.00 EUR to a German account.
local function ecommpay_payout()
    local gate = ecommpay_gate()
    local payout_id = "payout-0998"
    local request = {
        general = { payment_id = payout_id, merchant_callback_url = SHOP .. "/ecommpay/" .. payout_id },
        payment = { amount = 4000, currency = "EUR", description = "Order 998 returned" },
        customer = { id = "customer-77", ip_address = "198.51.100.23", first_name = "Jonas", last_name = "Becker" },
        account = { clearinghouse = "GERMANY", number = "DE89370400440532013000", bank_code = "COBADEFFXXX" },
        additional_data = { sender = { party_type = "ORGANISATION", first_name = "Mug Shop GmbH",
                                       address = "Hauptstrasse 1, Berlin", country = "DE" } },
    }
    -- The account must have the form its clearinghouse's row of Figure 32
    -- says (GERMANY: an IBAN and a BIC); anything else is refused before it
    -- is sent.
    local wrong = {}
    for k, v in pairs(request) do wrong[k] = v end
    wrong.account = { clearinghouse = "GERMANY", number = "1234567890", bank_code = "5000" }
    local _, verr = gate:payout("trustly", wrong)
    if not verr or verr.type ~= "validation" then fail("a Swedish account number passed as a German IBAN") end
    op("ecommpay")
    check(gate:payout("trustly", request))
    op("ecommpay")
    local paid = check(gate:notification(ecommpay_callback(payout_id, 1)))
    if paid.kind ~= "payout" or paid.status ~= "succeeded" then
        fail(("the payout callback says %s %s (%s)"):format(paid.kind, paid.status, tostring(paid.extra.message)))
    end
    book("ecommpay", "money_out", paid.amount, paid.currency)
    return money(paid.amount, paid.currency) .. " out", paid.status
end

-- 5. Reconciliation of one day of the fakes' data set.
local DAY = "2024-06-03"

-- The shop's orders for the day come from dataset.shop_orders (in a real
-- shop, a database query), with planted differences for the reconciliation
-- to find, as in examples/reconcile.lua.
local function reconcile()
    local bg = luapay.begateway.new{ psp_id = BEGATEWAY.psp_id, secret = credential("begateway", BEGATEWAY.secret),
                                     dwh_url = sb.url .. "/begateway" }
    local tna = luapay.trustly_na.new{ access_id = TRUSTLY_NA.access_id,
                                       access_key = credential("trustly_na", TRUSTLY_NA.access_key),
                                       base_url = sb.url .. "/trustly_na" }
    local day_start = assert(dataset.parse_iso(DAY .. "T00:00:00"))
    local day_end = day_start + 86400000 - 1
    local orders = dataset.shop_orders(day_start, day_end)
    local by_ref = {}
    for _, o in ipairs(orders) do by_ref[o.ref] = o end

    local payments, differences = 0, 0
    local function match(ref, amount, currency)
        payments = payments + 1
        local order = by_ref[ref]
        if not order then
            differences = differences + 1 -- a payment without an order
        else
            if order.amount ~= amount or order.currency ~= currency then differences = differences + 1 end
            order.seen = true
        end
    end

    -- beGateway: the day's payments and captures, streamed 1000 per page.
    op("begateway")
    for tx, err in bg:export{
        date_from = DAY .. "T00:00:00", date_to = DAY .. "T23:59:59",
        filter = { type = { "payment", "capture" } }, response_parameters = { "main" }, limit = 1000,
    } do
        if not tx then fail("beGateway export stopped: " .. one_line(err)) end
        if tx.status == "successful" then match(tx.tracking_id, int(tx.amount), tx.currency) end
    end
    -- Trustly NA: the day's payments whose bank authorization finished.
    op("trustly_na")
    for p, err in tna:payments{
        createdAt = { start = day_start, ["end"] = day_end }, ["authorization.status"] = { "Completed" },
    } do
        if not p then fail("Trustly NA payments stopped: " .. one_line(err)) end
        match(p.merchantReference, core.to_minor(p.paid, p.currency), p.currency)
    end

    local unpaid = 0 -- orders without a payment
    for _, o in ipairs(orders) do
        if not o.seen then unpaid = unpaid + 1 end
    end
    return ("%d orders, %d payments"):format(#orders, payments),
        ("matched %d, unmatched %d"):format(payments - differences, differences + unpaid)
end

local STEPS = {
    { { "ecommpay" }, "Trustly purchase: sale, redirect, callback", ecommpay_purchase },
    { { "trustly" }, "deposit, notifications answered, refund", trustly_deposit },
    { { "trustpay" }, "card preauthorization (SCA), capture", trustpay_card },
    { { "ecommpay" }, "Trustly payout, IBAN DE89...3000 (Figure 32)", ecommpay_payout },
    { { "begateway", "trustly_na" }, "reconciliation of " .. DAY, reconcile },
}

---------------------------------------------------------------------------
-- The sandbox: every fake provider, and the shop's endpoints at /shop/
---------------------------------------------------------------------------

local function start_sandbox()
    local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
    local routes = providers.routes()
    routes["/shop/"] = "merchant_day_shop"
    local err
    sb, err = sandbox.start{
        routes = routes,
        lua_path = here .. "/?.lua",
        config = { shop = {
            -- The shop's side has the real credentials: what fails on
            -- request is the merchant's calls.
            ecommpay = { project_id = ECOMMPAY.PROJECT_ID, secret = ECOMMPAY.SECRET },
            trustly = { username = TRUSTLY.username, password = TRUSTLY.password,
                        private_key = TRUSTLY_KEYS.merchant, trustly_public_key = TRUSTLY_KEYS.trustly },
            trustpay = { account_id = TRUSTPAY.account_id, secret = TRUSTPAY.secret },
        } },
    }
    if not sb then
        io.stderr:write("merchant_day: cannot start the sandbox: ", tostring(err), "\n")
        os.exit(1)
    end
    SHOP = sb.url .. "/shop"
end

---------------------------------------------------------------------------
-- The day
---------------------------------------------------------------------------

local function totals(t)
    local parts = {}
    for _, c in ipairs(t) do parts[#parts + 1] = money(t[c], c) end
    return #parts > 0 and table.concat(parts, ", ") or "-"
end

-- Runs the steps and prints the summary; returns how many steps failed.
local function day()
    print(bold("luapay " .. luapay.VERSION .. ": a merchant's day against the sandbox"))
    print(dim(("sandbox %s, nginx pids %s; fakes: %s"):format(sb.url, table.concat(sb:pids(), " "),
        table.concat(providers.available(), " "))))
    print()
    print(bold(LINE:format("#", "provider", "operation", "amount", "status")))
    local failed = 0
    for n, s in ipairs(STEPS) do
        local names, what, fn = s[1], s[2], s[3]
        local who = {}
        for i, p in ipairs(names) do who[i] = TITLE[p] end
        current = nil
        local ok, amount, status = pcall(fn)
        if not ok and tostring(amount):find("interrupted!", 1, true) then error(amount, 0) end -- Ctrl-C
        if ok then
            print(LINE:format(n, table.concat(who, ", "), what, amount, green(status)))
        else
            failed = failed + 1
            if current then
                books[current].failed = true
            else
                for _, p in ipairs(names) do books[p].failed = true end
            end
            print(LINE:format(n, table.concat(who, ", "), what, "-", red("FAILED") .. " " .. one_line(amount)))
        end
    end

    local SUMMARY = "%-12s %10s   %-20s %-20s %s"
    print()
    print(bold(SUMMARY:format("provider", "operations", "money in", "money out", "status")))
    for _, p in ipairs(PROVIDERS) do
        local b = books[p]
        print(SUMMARY:format(TITLE[p], b.ops, totals(b.money_in), totals(b.money_out),
            b.failed and red("FAILED") or b.ops == 0 and dim("not reached") or green("ok")))
    end
    return failed
end

start_sandbox()
-- Whatever happens during the day (even Ctrl-C), the sandbox is stopped.
local ok, failed = xpcall(day, debug.traceback)
browser:close()
local problems = sb:errors()
local stopped, stop_err = sb:stop()
if not ok then
    local interrupted = tostring(failed):find("interrupted!", 1, true)
    io.stderr:write(interrupted and "\ninterrupted\n" or ("merchant_day: " .. tostring(failed) .. "\n"))
    os.exit(interrupted and 130 or 1)
end
print()
if #problems > 0 then
    print(red(("the sandbox logged %d error%s:"):format(#problems, #problems == 1 and "" or "s")))
    for _, line in ipairs(problems) do print("  " .. line) end
end
if not stopped then print(red(tostring(stop_err))) end
print(("%d steps: %d ok, %d failed, in %.1f s; sandbox %s"):format(#STEPS, #STEPS - failed, failed,
    core.monotime() - started, stopped and "stopped" or "NOT stopped"))
os.exit((failed == 0 and #problems == 0 and stopped) and 0 or 1)
