-- ecommpay's Trustly document (../shared/seeds/000_*.txt), second pass: the
-- parts it allows that luapay missed, narrowed or read otherwise, against
-- the client, the fake Gate (real HTTP over loopback) and ecommpay's PHP SDK
-- (the protocol notes' reference for the canonical string).
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local provider = require "luapay.provider"
local http = require "luapay.http"
local H = require "support.ecommpay"
local util = require "support.util"

local function paths_of(err)
    local out = {}
    for _, f in ipairs(err.fields) do out[#out + 1] = f.path .. " " .. f.code end
    return out
end

-- A signed Gate request sent as it is, past the client's own checks: what
-- the fake itself accepts or refuses.
local function raw(sb, path, body)
    body.general.project_id = H.PROJECT_ID
    body.general.signature = ecommpay.signature(body, H.SECRET)
    return assert(http.new {}:request { method = "POST", json = body, url = sb.url .. "/ecommpay/v2/payment/" .. path })
end

local function fields_of(res)
    local out = {}
    for _, e in ipairs(res.json.errors or {}) do out[#out + 1] = e.field end
    table.sort(out)
    return out
end

describe("ecommpay fidelity to the Trustly document", function()
    local sb, gate

    setup(function()
        sb = H.start { balance = 500000, clarification = true }
        gate = H.gate(sb)
    end)

    teardown(function()
        util.stop_sandbox(sb)
    end)

    local function events(name, n)
        local out = {}
        for i, cb in ipairs(H.callbacks(sb, name, n)) do out[i] = assert(gate:notification(cb.body)) end
        return out
    end

    describe('000 seed, "Submission of additional payment information"', function()
        -- "Purchases by using Gate": with clarification support the customer's
        -- details may be left out; ecommpay lists the missing ones in a callback.
        it("a purchase without the customer's details, the callback asking for them, clarify, then the bank", function()
            local asking = H.gate(sb, { clarification = true })
            local id = H.unique("clarify")
            local req = H.sale_request(id, H.callback_url(sb, id), 2500, "EUR")
            req.customer = { id = "customer-1", ip_address = "198.51.100.7" }
            local _, err = gate:sale("trustly", req) -- a client without the option still requires them
            assert.same({ "customer.country required", "customer.email required", "customer.first_name required",
                          "customer.language required", "customer.last_name required" }, paths_of(err))
            assert.equal("success", assert(asking:sale("trustly", req)).status)

            local ask = events(id, 1)[1]
            assert.same({ "payment", "pending", "awaiting clarification" },
                { ask.kind, ask.status, ask.extra.payment_status })
            assert.same({ "customer.country", "customer.email", "customer.first_name", "customer.language",
                          "customer.last_name" }, ask.extra.clarification)
            assert.is_nil(ask.extra.redirect)

            -- the client checks what it sends, and ecommpay wants every field it asked for
            _, err = asking:clarify { general = { payment_id = id } }
            assert.same({ "general required" }, paths_of(err))
            _, err = asking:clarify { general = { payment_id = id }, customer = { email = "no", country = "FR" } }
            assert.same({ "customer.country enum", "customer.email format" }, paths_of(err))
            _, err = asking:clarify { general = { payment_id = id }, customer = { first_name = "Åsa" } }
            assert.equal("provider", err.type)
            local missing = {}
            for _, f in ipairs(err.fields) do missing[#missing + 1] = f.path end
            table.sort(missing)
            assert.same({ "customer.country", "customer.email", "customer.language", "customer.last_name" }, missing)

            local res = assert(asking:clarify { general = { payment_id = id }, customer = {
                first_name = "Åsa", last_name = "Lindqvist", email = "asa@example.se", country = "SE", language = "sv" } })
            assert.same({ "success", id, H.PROJECT_ID }, { res.status, res.payment_id, res.project_id })
            local redirect = events(id, 2)[2]
            assert.equal("awaiting redirect result", redirect.extra.payment_status)
            assert.is_nil(redirect.extra.clarification)
            H.customer(redirect, "approve")
            assert.equal("succeeded", events(id, 3)[3].status)
            -- once clarified, the payment no longer takes a clarification
            _, err = asking:clarify { general = { payment_id = id }, customer = { first_name = "Å" } }
            assert.same({ "provider", "1006" }, { err.type, err.code })
        end)

        it("signs the clarification as every Gate request and sends it to /v2/payment/clarification", function()
            local sent
            local client = ecommpay.new { project_id = 77, secret = "s-1", clarification = true, retries = 0,
                transport = { request = function(_, req)
                    sent = req
                    return { status = 200, headers = { ["content-type"] = "application/json" },
                             body = '{"status":"success","request_id":"r","project_id":77,"payment_id":"p-1"}' }
                end } }
            assert(client:clarify { general = { payment_id = "p-1" }, customer = { first_name = "A" } })
            assert.equal("https://api.ecommpay.com/v2/payment/clarification", sent.url)
            local body = core.json_decode(sent.body)
            local sig = body.general.signature
            body.general.signature = nil
            assert.equal(77, body.general.project_id)
            assert.equal(ecommpay.signature(body, "s-1"), sig)
            assert.has_error(function() client:clarify "p-1" end,
                "ecommpay.Client:clarify: bad argument #1 'request' (table expected, got string)")
            assert.has_error(function() ecommpay.new { project_id = 1, secret = "s", clarification = "yes" } end)
        end)

        it("lists what clarification_fields asks for, as a schema or as names", function()
            local schema = ecommpay.event { payment = { id = "p", status = "awaiting clarification" },
                clarification_fields = { customer = { type = "object", properties = {
                    first_name = { type = "string" }, address = { type = "object", properties = { city = { type = "string" } } } } },
                    additional_data = { beneficiary = { type = "object", properties = { party_type = { type = "string" } } } } } }
            assert.same({ "additional_data.beneficiary.party_type", "customer.address.city", "customer.first_name" },
                schema.extra.clarification)
            local names = ecommpay.event { payment = { id = "p", status = "awaiting clarification" },
                                           clarification_fields = { customer = { "email", "last_name" } } }
            assert.same({ "customer.email", "customer.last_name" }, names.extra.clarification)
        end)
    end)

    describe('000 seed, "COF purchases by using Gate": the recurring object', function()
        it("checks the recurring object of a sale that registers COF purchases, in the client and the fake", function()
            local id = H.unique("cof")
            local req = H.sale_request(id, H.callback_url(sb, id), 3000, "SEK")
            req.recurring_register, req.recurring = true, { type = "X" }
            local _, err = gate:sale("trustly", req)
            assert.same({ "recurring.type enum" }, paths_of(err))
            req.recurring = { type = "R", scheduled_payment_id = id }
            _, err = gate:sale("trustly", req)
            assert.same({ "recurring.amount required", "recurring.expiry_day required", "recurring.expiry_month required",
                          "recurring.expiry_year required", "recurring.interval required", "recurring.period required",
                          "recurring.scheduled_payment_id enum", "recurring.start_date required",
                          "recurring.time required" }, paths_of(err))
            req.recurring = { type = "U" }
            assert(gate:sale("trustly", req))

            local bad = H.sale_request(H.unique("cof"), nil, 3000, "SEK")
            bad.recurring = { type = "X" }
            local res = raw(sb, "online-banking/trustly/sale", bad)
            assert.same({ 400, { "recurring.type" } }, { res.status, fields_of(res) })
        end)

        it("takes start_date as the document gives it: the date and time of the next COF purchase", function()
            local id = H.unique("verify")
            local req = {
                general = { payment_id = id, merchant_callback_url = H.callback_url(sb, id) },
                payment = { amount = 0, currency = "EUR" },
                customer = { id = "customer-7", ip_address = "203.0.113.9" },
                return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" },
                recurring_register = true,
                recurring = { type = "R", time = "10:00:00", expiry_year = 2030, expiry_month = 12, expiry_day = 31,
                              interval = 1, amount = 990, period = "M", scheduled_payment_id = id .. "-s",
                              start_date = "2027-01-01 10:00:00" },
            }
            assert(gate:account_verification("trustly", req))
            req.recurring.start_date = ""
            local _, err = gate:account_verification("trustly", req)
            assert.same({ "recurring.start_date min_len" }, paths_of(err))
        end)
    end)

    describe('000 seed, "General information": currencies, amounts and countries', function()
        it("refuses purchases for payout-only countries and countries not listed; payouts go to all", function()
            local id = H.unique("country")
            for country, message in pairs { FR = "only Trustly payouts are supported in FR",
                                            US = "US is not one of the Trustly method's countries" } do
                local req = H.sale_request(id, nil, 2500, "EUR")
                req.customer.country = country
                local _, err = gate:sale("trustly", req)
                assert.same({ "customer.country enum" }, paths_of(err))
                assert.matches(message, err.fields[1].message, 1, true)
            end
            local _, err = gate:payment_page { payment_id = id, payment_amount = 2500, payment_currency = "EUR",
                customer_id = "c", customer_country = "PT", force_payment_method = "online-banking-trustly" }
            assert.same({ "customer_country enum" }, paths_of(err))
            _, err = gate:sale_saved("trustly", { general = { payment_id = id }, payment = { amount = 100, currency = "EUR" },
                customer = { id = "c", ip_address = "198.51.100.7", country = "MT" },
                return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" }, recurring_id = 5 })
            assert.same({ "customer.country enum" }, paths_of(err))
            assert.same({ "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
                          "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK" }, ecommpay.TRUSTLY_COUNTRIES)
            assert.same({ "CY", "FR", "GR", "HR", "LU", "MT", "PT" }, ecommpay.TRUSTLY_PAYOUT_ONLY)

            local payout = H.unique("payout")
            assert(gate:payout("trustly", { general = { payment_id = payout }, payment = { amount = 500, currency = "EUR" },
                customer = { id = "c", ip_address = "198.51.100.7", first_name = "Jean", last_name = "Roux", country = "FR" },
                account = { clearinghouse = "FRANCE", bank_code = "BNPAFRPPXXX", number = "FR1420041010050500013M02606" } }))

            local bad = H.sale_request(H.unique("country"), nil, 2500, "EUR")
            bad.customer.country = "FR"
            local res = raw(sb, "online-banking/trustly/sale", bad)
            assert.same({ 400, { "customer.country" } }, { res.status, fields_of(res) })
        end)

        it("checks the 1.00 EUR minimum, and its equivalent in other currencies given by min_purchase", function()
            local req = H.sale_request(H.unique("min"), nil, 99, "EUR")
            local _, err = gate:sale("trustly", req)
            assert.same({ "payment.amount range" }, paths_of(err))
            local strict = H.gate(sb, { min_purchase = { SEK = 1200 } })
            req.payment.currency, req.payment.amount = "SEK", 1199
            assert(gate:sale("trustly", req)) -- no rate known: not checked
            req.general.payment_id = H.unique("min")
            _, err = strict:sale("trustly", req)
            assert.same({ "payment.amount range" }, paths_of(err))
            assert.matches("at least 12.00 SEK", err.fields[1].message, 1, true)
            req.payment.currency, req.payment.amount = "EUR", 99 -- EUR's stays
            _, err = strict:sale("trustly", req)
            assert.same({ "payment.amount range" }, paths_of(err))
            req.payment.currency, req.payment.amount = "GBP", 100
            assert(strict:sale("trustly", req))
            local res = raw(sb, "online-banking/trustly/sale", H.sale_request(H.unique("min"), nil, 99, "EUR"))
            assert.same({ 400, { "payment.amount" } }, { res.status, fields_of(res) })
            assert.has_error(function() H.gate(sb, { min_purchase = { sek = 1 } }) end)
            assert.has_error(function() H.gate(sb, { min_purchase = { SEK = 1.5 } }) end)
        end)
    end)

    describe('000 seed, "Payouts by using Gate" and "COF purchases registration": what callbacks report', function()
        it("reports a partial reversal as partially_reversed, a word of provider.STATUSES", function()
            local found = false
            for _, s in ipairs(provider.STATUSES) do found = found or s == "partially_reversed" end
            assert.is_true(found)
            local id = H.unique("payout")
            assert(gate:payout("trustly", {
                general = { payment_id = id, merchant_callback_url = H.callback_url(sb, id) },
                payment = { amount = 5000, currency = "EUR" },
                customer = { id = "customer-9", ip_address = "203.0.113.20", first_name = "Nils", last_name = "Holm" },
                account = { clearinghouse = "SWEDEN", bank_code = "5000", number = "1234567890" },
            }))
            local res = H.post(sb, ("/ecommpay/sandbox/bank_reject/%d/%s?amount=2000"):format(H.PROJECT_ID, id))
            assert.equal(200, res.status)
            local reversal = events(id, 2)[2]
            assert.same({ "reversal", "partially_reversed", 2000, "partially reversed" },
                { reversal.kind, reversal.status, reversal.amount, reversal.extra.payment_status })
            assert.equal(3000, reversal.extra.payment_amount)
            assert.equal("partially_reversed", assert(gate:status(id)).status)
        end)

        it("marks the repeated success callback that carries the COF registration", function()
            local id = H.unique("first")
            local req = H.sale_request(id, H.callback_url(sb, id), 3000, "SEK")
            req.recurring_register = true
            assert(gate:sale("trustly", req))
            H.customer(events(id, 1)[1], "approve")
            local list = events(id, 3)
            assert.same({ "succeeded", "succeeded" }, { list[2].status, list[3].status })
            assert.equal(list[2].provider_ref, list[3].provider_ref) -- the same operation, reported again
            assert.is_nil(list[2].extra.repeated)
            assert.is_true(list[3].extra.repeated)
            assert.is_number(list[3].extra.recurring.id)
            -- an account verification reports its registration once: no repeat
            local verify = ecommpay.event { payment = { id = "v", status = "success", type = "verify" },
                operation = { type = "account verification", status = "success" }, recurring = { id = 5, type = "C" } }
            assert.is_nil(verify.extra.repeated)
        end)
    end)

    describe("the canonical string and callbacks as ecommpay's PHP SDK (the protocol notes' reference) has them", function()
        local SECRET = "php-reference-secret"

        -- A callback signed over the string PHP's SignatureHandler builds for it.
        local function signed(template, php_string)
            return (template:gsub("SIG", core.hmac("sha512", SECRET, php_string, "base64")))
        end

        it("writes floats as PHP's (string)$float: 1.0E+14 and up in exponent form, -0.0 as -0", function()
            local N = core.json_number
            assert.equal("a:1.0E+14;b:1.0E+15;c:-0;d:99999999999999;e:100000000000000",
                ecommpay.string_to_sign { a = N "1e14", b = N "1000000000000000.0", c = N "-0.0", d = N "99999999999999.0",
                                          e = N "100000000000000" })
            if math.type then -- Lua 5.4 floats are PHP floats; LuaJIT cannot tell them from integers
                assert.equal("a:1.0E+15;b:-0;c:100000000000000", ecommpay.string_to_sign { a = 1e15, b = -0.0, c = math.tointeger(1e14) })
            end
            local raw_body = signed('{"general":{"project_id":1,"payment_id":"p","signature":"SIG"},'
                .. '"payment":{"id":"p","status":"success"},"x":1e15,"y":-0.0}',
                "general:payment_id:p;general:project_id:1;payment:id:p;payment:status:success;x:1.0E+15;y:-0")
            assert(ecommpay.verify_notification(raw_body, nil, { secret = SECRET }))
        end)

        it("refuses a root signature that is a number or an object, as PHP does, even with a good general.signature", function()
            local php_string = "general:payment_id:p;general:project_id:1;payment:id:p;payment:status:success"
            local good = signed('{"general":{"project_id":1,"payment_id":"p","signature":"SIG"},'
                .. '"payment":{"id":"p","status":"success"}}', php_string)
            assert(ecommpay.verify_notification(good, nil, { secret = SECRET }))
            for _, root in ipairs { '17', '{"v":"x"}', '["x"]' } do
                local body = good:gsub("^{", '{"signature":' .. root .. ",")
                local event, err = ecommpay.verify_notification(body, nil, { secret = SECRET })
                assert.is_nil(event, root)
                assert.same({ "signature", "callback signature is not a string" }, { err.type, err.message }, root)
            end
            -- a root "signature": null is absent to PHP's ?? (general's is used) and signed as empty
            local with_null = signed('{"signature":null,"general":{"project_id":1,"payment_id":"p","signature":"SIG"},'
                .. '"payment":{"id":"p","status":"success"}}', php_string .. ";signature:")
            assert(ecommpay.verify_notification(with_null, nil, { secret = SECRET }))
        end)

        it("signs a nested \"signature\": null as an empty value, as PHP's removeParam leaves it", function()
            local body = signed('{"general":{"project_id":1,"payment_id":"p","signature":"SIG"},'
                .. '"payment":{"id":"p","status":"success","signature":null}}',
                "general:payment_id:p;general:project_id:1;payment:id:p;payment:signature:;payment:status:success")
            assert(ecommpay.verify_notification(body, nil, { secret = SECRET }))
            local without = signed('{"general":{"project_id":1,"payment_id":"p","signature":"SIG"},'
                .. '"payment":{"id":"p","status":"success","signature":null}}',
                "general:payment_id:p;general:project_id:1;payment:id:p;payment:status:success")
            local event, err = ecommpay.verify_notification(without, nil, { secret = SECRET })
            assert.is_nil(event)
            assert.equal("callback signature does not match", err.message)
            -- a nested signature with a value is left out, as before
            local valued = signed('{"general":{"project_id":1,"payment_id":"p","signature":"SIG"},'
                .. '"payment":{"id":"p","status":"success","signature":"x"}}',
                "general:payment_id:p;general:project_id:1;payment:id:p;payment:status:success")
            assert(ecommpay.verify_notification(valued, nil, { secret = SECRET }))
        end)
    end)
end)
