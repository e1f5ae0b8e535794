-- TrustPay without a network: the signature over "/"-joined values, the
-- field order of every message kind, the cross-checked vectors, the URL
-- builders' validation, notifications and redirects, and the request shapes
-- of the background calls and API Banking (through a stub transport).
local core = require "luapay.core"
local cjson = require "cjson.safe"
local http = require "luapay.http"
local trustpay = require "luapay.trustpay"
local util = require "support.util"

local vectors = util.json_fixture("vectors/trustpay.json")

-- Which message kind each vector exercises.
local KIND_OF = {
    wire_purchase_sovic_test = "wire_purchase",
    card_purchase_sca_sovic_test = "card_purchase",
    wire_notification_sovic_test = "wire_notification",
    card_notification_sovic_test = "card_notification",
    wire_purchase_1_50 = "wire_purchase",
    card_purchase_sca_missing_optional = "card_purchase",
    card_refund = "refund",
    recurring_initial = "recurring_initial",
    recurring_subsequent = "recurring_subsequent",
    card_on_file_register = "card_on_file_register",
    card_on_file_purchase = "card_on_file_purchase",
    preauthorization = "preauthorization",
    capture = "capture",
    wire_notification_full = "wire_notification",
    wire_notification_doc_example_values = "wire_notification",
}

local function fields_of(v)
    local t = {}
    for _, pair in ipairs(v.fields) do t[pair[1]] = pair[2] end
    return t
end

local function paths(err)
    local out = {}
    for _, f in ipairs(err.fields or {}) do out[#out + 1] = f.path .. ":" .. f.code end
    return out
end

local SCA = {
    CardHolder = "Eva Černá", BillingStreet = "Náměstí Svobody 1", BillingCity = "Brno",
    BillingPostcode = "602 00", BillingCountry = "CZ", Email = "eva@example.cz",
}
local function with_sca(t)
    for k, v in pairs(SCA) do if t[k] == nil then t[k] = v end end
    return t
end

local function client(opts)
    opts = opts or {}
    opts.account_id = opts.account_id or "4107111111"
    opts.secret = opts.secret or "123456"
    return trustpay.new(opts)
end

describe("trustpay vectors", function()
    it("maps every vector to a message kind", function()
        for _, v in ipairs(vectors) do assert.is_not_nil(KIND_OF[v.name], "no kind for vector " .. v.name) end
        assert.is_true(#vectors >= 15)
    end)

    for _, v in ipairs(vectors) do
        describe(v.name, function()
            it("gives the expected signature over the joined values", function()
                local values = {}
                for i, pair in ipairs(v.fields) do values[i] = pair[2] end
                assert.equal(v.message, table.concat(values, "/"))
                assert.equal(v.signature, trustpay.signature(v.secret, values))
            end)

            it("puts the fields in the vector's order from an unordered table", function()
                local values = assert(trustpay.message(KIND_OF[v.name], fields_of(v)))
                assert.equal(v.message, table.concat(values, "/"))
                local sig = assert(trustpay.sign(v.secret, KIND_OF[v.name], fields_of(v)))
                assert.equal(v.signature, sig)
            end)

            it("gives the same message from the amount in minor units", function()
                local f = fields_of(v)
                f.Amount = assert(core.to_minor(f.Amount, f.Currency))
                assert.equal(v.message, table.concat(assert(trustpay.message(KIND_OF[v.name], f)), "/"))
            end)

            it("verifies, and refuses the signature once any value changes", function()
                local f = fields_of(v)
                assert.is_true(trustpay.verify(v.secret, KIND_OF[v.name], f, v.signature))
                assert.is_true(trustpay.verify(v.secret, KIND_OF[v.name], f, v.signature:lower()))
                f.Amount = f.Amount == "1.00" and "2.00" or "1.00"
                local ok, err = trustpay.verify(v.secret, KIND_OF[v.name], f, v.signature)
                assert.is_nil(ok)
                assert.equal("signature", err.type)
            end)
        end)
    end
end)

describe("trustpay signing", function()
    it("has one ordered field list for every message kind of the issue", function()
        local base = { "AccountId", "Amount", "Currency", "Reference", "PaymentType" }
        for _, kind in ipairs({ "wire_purchase", "card_purchase", "refund", "card_on_file_register", "card_on_file_purchase",
            "card_on_file_preauthorization", "recurring_initial", "recurring_subsequent",
            "recurring_initial_preauthorization", "preauthorization", "capture" }) do
            local list = trustpay.signed_fields[kind]
            assert.is_table(list, kind)
            for i, name in ipairs(base) do assert.equal(name, list[i], kind) end
            assert.is_number(trustpay.payment_type_of[kind], kind)
        end
        assert.same({ "AccountId", "Amount", "Currency", "Type", "ResultCode", "CounterAccount", "CounterAccountName",
            "OrderId", "PaymentId", "Reference", "RefuseReason" }, trustpay.signed_fields.wire_notification)
        assert.same({ "AccountId", "Amount", "Currency", "Reference", "Type", "ResultCode", "PaymentRequestId", "CardId",
            "CardMask", "CardExpiration", "AuthNumber" }, trustpay.signed_fields.card_notification)
        -- seed: subsequent recurring signs the SCA fields, then PaymentRequestId
        assert.same({ "AccountId", "Amount", "Currency", "Reference", "PaymentType", "BillingCity", "BillingCountry",
            "BillingPostcode", "BillingStreet", "CardHolder", "Email", "PaymentRequestId" }, trustpay.signed_fields.recurring_subsequent)
        assert.equal(12, trustpay.payment_type_of.recurring_initial_preauthorization)
        assert.equal(9, trustpay.payment_type_of.card_on_file_preauthorization)
    end)

    it("computes HMAC-SHA256 in uppercase hex over the values joined by '/'", function()
        local values = { "4107111111", "1.50", "EUR", "123456789", "0" }
        local expected = core.hmac("sha256", "123456", "4107111111/1.50/EUR/123456789/0", "hex"):upper()
        assert.equal(expected, trustpay.signature("123456", values))
        assert.matches("^%x+$", expected)
        assert.equal(64, #expected)
        assert.equal(trustpay.signature("123456", values), trustpay.signature("123456", { 4107111111, "1.50", "EUR", "123456789", 0 }))
    end)

    it("writes every amount with two decimals from minor units", function()
        assert.equal("1.50", trustpay.amount(150, "EUR"))
        assert.equal("0.00", trustpay.amount(0, "EUR"))
        assert.equal("0.01", trustpay.amount(1, "EUR"))
        assert.equal("1234567.89", trustpay.amount(123456789, "EUR"))
        assert.equal("150.00", trustpay.amount(150, "JPY"))
        assert.equal("1.50", trustpay.amount(1500, "KWD"))
        assert.is_nil(trustpay.amount(1501, "KWD"))
        assert.is_nil(trustpay.amount(1.5, "EUR"))
        assert.is_nil(trustpay.amount(10000000000000, "EUR")) -- beyond Numeric(13,2)
        assert.equal("99999999999.99", trustpay.amount(9999999999999, "EUR"))
        local values = assert(trustpay.message("wire_purchase", { AccountId = "1", Amount = 150, Currency = "EUR", Reference = "r" }))
        assert.equal("1/1.50/EUR/r/0", table.concat(values, "/"))
    end)

    it("reads TrustPay's amounts back into minor units", function()
        assert.equal(600, trustpay.minor("6.00", "EUR"))
        assert.equal(-1337, trustpay.minor("-13.37", "EUR"))
        assert.equal(123456789, trustpay.minor("1234567.89", "EUR"))
        assert.equal(150, trustpay.minor("150.00", "JPY"))
        assert.is_nil(trustpay.minor("150.50", "JPY"))
        assert.equal(1500, trustpay.minor("1.50", "KWD"))
        assert.is_nil(trustpay.minor("6", "EUR"))
        assert.is_nil(trustpay.minor("6.0", "EUR"))
        assert.is_nil(trustpay.minor("6.00", "XXX"))
    end)

    it("refuses a float amount and a missing currency as validation errors", function()
        local values, err = trustpay.message("wire_purchase", { AccountId = "1", Amount = 1.5, Currency = "EUR", Reference = "r" })
        assert.is_nil(values)
        assert.equal("validation", err.type)
        assert.same({ "Amount:type" }, paths(err))
        values, err = trustpay.message("wire_purchase", { AccountId = "1", Amount = 150, Reference = "r" })
        assert.is_nil(values)
        assert.same({ "Amount:required", "Currency:required" }, paths(err))
    end)

    -- 002 seed, Signature rows: "Slash character ('/') is used as separator"; Reference's footnote forbids
    -- only < and >. TrustPay signs whatever it is given, so luapay computes the same signature.
    it("002 seed, Signature: signs values containing '/' as TrustPay does (HMAC over the '/'-joined values)", function()
        local values = assert(trustpay.message("card_purchase", with_sca{ AccountId = "1", Amount = 150, Currency = "EUR",
            Reference = "ORD/42", BillingStreet = "Main Street 1/2" }))
        assert.equal("ORD/42", values[4])
        local sig = assert(trustpay.signature("123456", { "1", "1.50", "a/b" }))
        assert.equal(core.hmac("sha256", "123456", "1/1.50/a/b", "HEX"), sig)
        assert.equal(64, #sig)
    end)

    it("fills PaymentType from the kind and refuses a contradicting one", function()
        local values = assert(trustpay.message("capture",
            { AccountId = "1", Amount = 100, Currency = "EUR", Reference = "r", PaymentRequestId = "5" }))
        assert.equal("1/1.00/EUR/r/6/5", table.concat(values, "/"))
        local _, err = trustpay.message("capture", { AccountId = "1", Amount = 100, Currency = "EUR", Reference = "r", PaymentType = 8 })
        assert.same({ "PaymentType:enum" }, paths(err))
    end)

    it("skips absent and empty optional fields, leaving no empty slot", function()
        local values = assert(trustpay.message("card_purchase", { AccountId = "1", Amount = 100, Currency = "EUR", Reference = "r",
            BillingCity = "Wien", Email = "" }))
        assert.equal("1/1.00/EUR/r/0/Wien", table.concat(values, "/"))
    end)

    it("raises on misuse, naming the argument", function()
        assert.has_error(function() trustpay.message("nonsense", {}) end,
            "trustpay.message: bad argument #1 'kind' (unknown message kind 'nonsense')")
        assert.has_error(function() trustpay.signature(nil, {}) end)
        assert.has_error(function() trustpay.signature("k", "v") end)
    end)
end)

describe("trustpay code lists", function()
    it("has the seed's result codes with names and descriptions", function()
        local n = 0
        for code, r in pairs(trustpay.result_codes) do
            n = n + 1
            assert.is_number(code)
            assert.is_string(r.name)
            assert.is_string(r.description)
        end
        assert.equal(21, n)
        assert.equal("AuthorizedOnly", trustpay.result_codes[5].name)
        assert.equal("Declined by risk", trustpay.result_codes[1015].name)
        assert.equal("Rejected - insufficient funds", trustpay.acquirer_codes["800.100.155"])
        assert.equal("Recurring - Initial preauthorization", trustpay.payment_types[12])
        assert.equal("Refund", trustpay.payment_types[8])
    end)
end)

describe("trustpay.new", function()
    it("raises on misuse, naming the option", function()
        assert.has_error(function() trustpay.new{ secret = "s" } end,
            "trustpay.new: option 'account_id' must be TrustPay's account or project ID (Numeric(10))")
        assert.has_error(function() trustpay.new{ account_id = "41071111111", secret = "s" } end)
        assert.has_error(function() trustpay.new{ account_id = 4107111111 } end,
            "trustpay.new: option 'secret' must be the account's secret key (a non-empty string)")
        assert.has_error(function() trustpay.new{ account_id = 1, secret = "s", banking = { username = "u" } } end,
            "trustpay.new: option 'banking.password' must be a non-empty string")
        assert.has_error(function() trustpay.new{ account_id = 1, secret = "s", base_url = "ftp://x" } end,
            "trustpay.new: option 'base_url' must be an http(s) URL")
    end)

    it("never shows the secret", function()
        local tp = client{ secret = "very-secret-key", banking = { username = "u", password = "p4ssw0rd" } }
        assert.equal("luapay.trustpay client (test, account 4107111111)", tostring(tp))
        local masked = require("luapay.errors").mask({ secret = tp.secret, banking = { password = tp.banking.password } })
        assert.equal("***", masked.secret)
        assert.equal("***", masked.banking.password)
    end)
end)

describe("trustpay payment URLs", function()
    local tp = client{ base_url = "https://amapi.example/" }

    local function query_of(url)
        local base, q = url:match("^([^?]+)%?(.*)$")
        return base, trustpay.parse_query(q)
    end

    local cases = {
        { "wire_payment_url", "wire_purchase", "/mapi5/wire/paypopup", {} },
        { "card_payment_url", "card_purchase", "/mapi5/Card/PayPopup", SCA },
        { "card_on_file_register_url", "card_on_file_register", "/mapi5/Card/PayPopup", SCA },
        { "card_on_file_purchase_url", "card_on_file_purchase", "/mapi5/Card/PayPopup",
          with_sca{ CardId = "8a8394855cfd3692015d0dc3f793355b" } },
        { "card_on_file_preauthorization_url", "card_on_file_preauthorization", "/mapi5/Card/PayPopup", with_sca{ CardId = "8a83" } },
        { "recurring_initial_url", "recurring_initial", "/mapi5/Card/PayPopup", SCA },
        { "recurring_initial_preauthorization_url", "recurring_initial_preauthorization", "/mapi5/Card/PayPopup", SCA },
        { "preauthorization_url", "preauthorization", "/mapi5/Card/PayPopup", SCA },
    }
    for _, c in ipairs(cases) do
        local method, kind, path, extra = c[1], c[2], c[3], c[4]
        it(method .. " signs the " .. kind .. " fields and carries the rest", function()
            local params = { Amount = 150, Currency = "EUR", Reference = "ORD-42", NotificationUrl = "https://shop.example/notify?x=1",
                Description = "Order 42 / blue shoes", Localization = "sk", IsRedirect = true }
            for k, v in pairs(extra) do params[k] = v end
            local url = assert(tp[method](tp, params))
            local base, q = query_of(url)
            assert.equal("https://amapi.example" .. path, base)
            assert.equal("4107111111", q.AccountId)
            assert.equal("1.50", q.Amount)
            assert.equal(tostring(trustpay.payment_type_of[kind]), q.PaymentType)
            assert.equal("https://shop.example/notify?x=1", q.NotificationUrl)
            assert.equal("Order 42 / blue shoes", q.Description) -- unsigned: '/' is fine
            assert.equal("True", q.IsRedirect)
            for k, v in pairs(extra) do assert.equal(v, q[k]) end
            local values = assert(trustpay.message(kind, q))
            assert.equal(core.hmac("sha256", "123456", table.concat(values, "/"), "hex"):upper(), q.Signature)
        end)
    end

    it("lists every invalid field of a wire payment and builds nothing", function()
        local url, err = tp:wire_payment_url{
            Amount = 1.5, Currency = "USD", Reference = ("<x>"):rep(12), Email = "not-an-email",
            ReturnUrl = "https://shop.example/" .. ("a"):rep(260), Localization = "de", Country = "XX",
            Description = ("d"):rep(141), IsRedirect = "yes", Colour = "blue",
        }
        assert.is_nil(url)
        assert.equal("validation", err.type)
        assert.same({ "Amount:type", "Colour:unknown", "Country:enum", "Currency:enum", "Description:max_len",
            "Email:format", "IsRedirect:enum", "Localization:enum", "Reference:forbidden", "Reference:max_len",
            "ReturnUrl:max_len" }, paths(err))
    end)

    it("requires the SCA fields of a card payment, checked to their formats", function()
        local url, err = tp:card_payment_url{ Amount = 150, Currency = "EUR", Reference = "r" }
        assert.is_nil(url)
        assert.same({ "BillingCity:required", "BillingCountry:required", "BillingPostcode:required", "BillingStreet:required",
            "CardHolder:required", "Email:required" }, paths(err))
        url, err = tp:card_payment_url(with_sca{ Amount = 150, Currency = "EUR", Reference = "r", CardHolder = "Al",
            BillingCountry = "Czechia", BillingCity = ("c"):rep(81), BillingPostcode = ("1"):rep(31), Email = "a@b" })
        assert.is_nil(url)
        assert.same({ "BillingCity:max_len", "BillingCountry:format", "BillingPostcode:max_len", "CardHolder:min_len",
            "Email:format" }, paths(err))
    end)

    it("002 seed, Reference footnote (only < and > forbidden): builds a URL with '/' in a signed field; warnings name it", function()
        local params = with_sca{ Amount = 150, Currency = "EUR", Reference = "r/1", BillingStreet = "Hlavná 1/3" }
        local url = assert(tp:card_payment_url(params))
        local _, q = query_of(url)
        assert.equal("r/1", q.Reference)
        local w = trustpay.warnings("card_payment_url", params)
        local got = {}
        for _, x in ipairs(w) do got[#got + 1] = x.path end
        table.sort(got)
        assert.same({ "BillingPostcode", "BillingStreet", "Reference", "Reference" }, got) -- "602 00" has a space; "/" twice; "r/1" not alphanumeric
    end)

    it("allows 0.00 only for a recurring initial preauthorization", function()
        local url = assert(tp:recurring_initial_preauthorization_url(with_sca{ Amount = 0, Currency = "EUR", Reference = "r" }))
        local _, q = query_of(url)
        assert.equal("0.00", q.Amount)
        local _, err = tp:card_payment_url(with_sca{ Amount = 0, Currency = "EUR", Reference = "r" })
        assert.same({ "Amount:range" }, paths(err))
    end)

    it("needs a CardId for a card-on-file preauthorization, not for a purchase", function()
        assert.is_string(tp:card_on_file_purchase_url(with_sca{ Amount = 100, Currency = "EUR", Reference = "r" }))
        local _, err = tp:card_on_file_preauthorization_url(with_sca{ Amount = 100, Currency = "EUR", Reference = "r" })
        assert.same({ "CardId:required" }, paths(err))
    end)
end)

describe("trustpay notifications", function()
    local function vector(name)
        for _, v in ipairs(vectors) do if v.name == name then return v end end
    end

    local function query(v, extra)
        local t = fields_of(v)
        t.Signature = v.signature
        for k, x in pairs(extra or {}) do t[k] = x end
        return http.encode_query(t)
    end

    it("verifies a wire notification from its query string and gives the common event", function()
        local v = vector("wire_notification_sovic_test")
        local tp = client{ account_id = "4107408721", secret = v.secret }
        local event = assert(tp:notification(query(v)))
        assert.equal("trustpay", event.provider)
        assert.equal("payment", event.kind)
        assert.equal("wire", event.extra.method)
        assert.equal("succeeded", event.status)
        assert.equal("204", event.merchant_ref)
        assert.equal("17466360", event.provider_ref)
        assert.equal(590, event.amount)
        assert.equal("EUR", event.currency)
        assert.equal(0, event.extra.result_code)
        assert.equal("Success", event.extra.result.name)
        assert.equal("CRDT", event.extra.type)
        assert.equal("CRDT", event.extra.params.Type)
        assert.equal(query(v), event.raw)
    end)

    it("verifies a card notification and exposes the card fields", function()
        local v = vector("card_notification_sovic_test")
        local tp = client{ account_id = "4107408721", secret = v.secret }
        local event = assert(tp:notification("https://shop.example/notify?" .. query(v)))
        assert.equal("card", event.extra.method)
        assert.equal("succeeded", event.status) -- 3 on a card: authorized and captured
        assert.equal("846487", event.provider_ref)
        assert.equal("420000******1234", event.extra.card.CardMask)
        assert.equal("0223", event.extra.card.CardExpiration)
        assert.is_nil(event.extra.card.CardId)
        assert.equal("https://shop.example/notify?" .. query(v), event.raw)
    end)

    it("accepts '+' for spaces and non-Latin letters", function()
        local v = vector("wire_notification_full")
        local tp = client{ account_id = "4107111111", secret = v.secret }
        local q = query(v):gsub("%%20", "+")
        local event = assert(tp:notification(q))
        assert.equal(123456789, event.amount)
        assert.equal("Ján Nováček", event.extra.params.CounterAccountName)
        assert.equal(q, event.raw)
    end)

    it("refuses a field repeated with another value (the signed one and the read one could differ)", function()
        local v = vector("wire_notification_sovic_test")
        local tp = client{ account_id = "4107408721", secret = v.secret }
        -- Signed as sent, then a second Amount appended: a first-wins reader
        -- verified it and reported the signed 5.90, a last-wins one 9999.00.
        local event, err = tp:notification(query(v) .. "&Amount=9999.00")
        assert.is_nil(event)
        assert.equal("validation", err.type)
        assert.equal("Amount", err.fields[1].path)
        assert.matches("appears twice with different values", err.fields[1].message)
        local t = fields_of(v)
        t.Signature = v.signature
        t.Amount = { t.Amount, "9999.00" } -- ngx.req.get_uri_args() gives a repeated one as a list
        event, err = tp:notification(t)
        assert.is_nil(event)
        assert.equal("validation", err.type)
        -- the same value twice means one thing
        assert(tp:notification(query(v) .. "&Amount=" .. fields_of(v).Amount))
        assert.same({ a = "1 2" }, trustpay.parse_query("?a=1+2&a=1%202"))
        local q, qerr = trustpay.parse_query("a=1&a=2")
        assert.is_nil(q)
        assert.matches("^trustpay%.parse_query: 1 invalid field", qerr.message)
    end)

    it("refuses a tampered notification with a signature error that shows no secret", function()
        local v = vector("wire_notification_full")
        local tp = client{ account_id = "4107111111", secret = v.secret }
        local event, err = tp:notification(query(v, { Amount = "9234567.89" }))
        assert.is_nil(event)
        assert.equal("signature", err.type)
        assert.is_nil(tostring(err):find(v.secret, 1, true))
        assert.is_nil(tostring(err):find(v.signature, 1, true))
        event, err = tp:notification(query(v, { Signature = "" }))
        assert.is_nil(event)
        assert.equal("signature", err.type)
        event, err = client{ account_id = "4107111111", secret = "other" }:notification(query(v))
        assert.is_nil(event)
        assert.equal("signature", err.type)
    end)

    it("refuses a valid notification for another account", function()
        local v = vector("wire_notification_full")
        local event, err = client{ account_id = "4107999999", secret = v.secret }:notification(query(v))
        assert.is_nil(event)
        assert.equal("validation", err.type)
        assert.same({ "AccountId:enum" }, paths(err))
    end)

    it("accepts an optional field sent empty, signed with or without its slot", function()
        local tp = client{ secret = "123456" }
        local f = { AccountId = "4107111111", Amount = "6.00", Currency = "EUR", Type = "CRDT", ResultCode = "0",
            PaymentId = "177561", Reference = "1234567890", OrderId = "" }
        local skipped = core.hmac("sha256", "123456", "4107111111/6.00/EUR/CRDT/0/177561/1234567890", "HEX")
        local slot = core.hmac("sha256", "123456", "4107111111/6.00/EUR/CRDT/0//177561/1234567890", "HEX")
        f.Signature = skipped
        assert.is_table(tp:notification(http.encode_query(f)))
        f.Signature = slot
        assert.is_table(tp:notification(http.encode_query(f)))
        f.OrderId = nil -- absent: only the skipped form is right
        local _, err = tp:notification(http.encode_query(f))
        assert.equal("signature", err.type)
    end)

    it("maps every result code to the common status, for wires and cards", function()
        local tp = client{ secret = "123456" }
        local expected = {
            wire = { [0] = "succeeded", [1] = "pending", [2] = "pending", [3] = "authorized", [4] = "pending", [5] = "authorized" },
            card = { [0] = "succeeded", [1] = "pending", [2] = "pending", [3] = "succeeded", [4] = "pending", [5] = "authorized" },
        }
        for method, map in pairs(expected) do
            for code in pairs(trustpay.result_codes) do
                local f = { AccountId = "4107111111", Amount = "6.00", Currency = "EUR", Type = "CRDT", ResultCode = tostring(code),
                    Reference = "r1" }
                if method == "wire" then f.PaymentId = "1" else f.PaymentRequestId = "2" end
                f.Signature = assert(trustpay.sign("123456", method .. "_notification", f))
                local event = assert(tp:notification(http.encode_query(f)))
                local want = map[code] or (code == 1005 and "canceled" or "failed")
                assert.equal(want, event.status, method .. " " .. code)
                assert.equal(trustpay.result_codes[code].name, event.extra.result.name)
            end
        end
    end)

    it("reports a DBIT notification as a refund", function()
        local tp = client{ secret = "123456" }
        local f = { AccountId = "4107111111", Amount = "1.00", Currency = "EUR", Type = "DBIT", ResultCode = "0",
            PaymentRequestId = "2", Reference = "r1-refund" }
        f.Signature = assert(trustpay.sign("123456", "card_notification", f))
        local event = assert(tp:notification(http.encode_query(f)))
        assert.equal("refund", event.kind)
        assert.equal("refunded", event.status)
        assert.equal(100, event.amount)
        assert.equal("DBIT", event.extra.type)
    end)

    it("refuses parameters that are neither a wire nor a card notification", function()
        local _, err = client():notification("AccountId=4107111111&Amount=1.00")
        assert.equal("validation", err.type)
        assert.has_error(function() client():notification(42) end,
            "trustpay.Client:notification: bad argument #1 'raw_body' (string expected, got number)")
    end)
end)

describe("trustpay.verify_notification (the pure verifier) and the answer", function()
    local provider = require "luapay.provider"
    local KEYS = { secret = "123456", account_id = "4107111111" }
    local F = { AccountId = "4107111111", Amount = "6.00", Currency = "EUR", Type = "CRDT", ResultCode = "0",
        Reference = "1234567890", PaymentRequestId = "177561", CardId = "8a8294495c589aa3015c63bd6d237e46",
        CardMask = "0162", CardExpiration = "1020", AuthNumber = "198159" }

    -- The query string TrustPay calls with, in its documented example's order.
    local function signed_query(fields)
        local sig = assert(trustpay.sign(KEYS.secret, fields.PaymentId and "wire_notification" or "card_notification", fields))
        local parts = {}
        for _, k in ipairs({ "AccountId", "Type", "Amount", "Currency", "Reference", "ResultCode", "PaymentId",
            "PaymentRequestId", "CounterAccountName" }) do
            if fields[k] then parts[#parts + 1] = k .. "=" .. http.escape(fields[k]) end
        end
        parts[#parts + 1] = "Signature=" .. sig
        for _, k in ipairs({ "CardId", "CardMask", "CardExpiration", "AuthNumber" }) do
            if fields[k] then parts[#parts + 1] = k .. "=" .. fields[k] end
        end
        return table.concat(parts, "&")
    end

    local function in_vocabulary(event)
        local kinds, statuses = {}, {}
        for _, k in ipairs(provider.KINDS) do kinds[k] = true end
        for _, s in ipairs(provider.STATUSES) do statuses[s] = true end
        assert.is_true(kinds[event.kind], tostring(event.kind))
        assert.is_true(statuses[event.status], tostring(event.status))
    end

    -- 002 seed, "Wire notification v02" and "Card notification v02": "Payment E-mail notification example".
    -- The wire example writes AccountId, Amount and ResultCode as JSON numbers; the documented signatures
    -- match no message (protocol notes A.4), so each example is re-signed with the test secret.
    local WIRE_EMAIL = [[{
    "AccountId":4107111111,
    "Type":"CRDT",
    "Amount":6.00,
    "Currency":"EUR",
    "Reference":"1234567890",
    "ResultCode":0,
    "PaymentId":"177561",
    "Signature":"%s",
    "CounterAccount":"SK3399520000002107425307",
    "CounterAccountName":"TestAccount"
}]]
    local CARD_EMAIL = [[{
    "AccountId":"4107111111",
    "Type":"CRDT",
    "Amount":"6.00",
    "Currency":"EUR",
    "PaymentRequestId":"177561",
    "CardId":"8a8294495c589aa3015c63bd6d237e46",
    "CardMask":"0162",
    "CardExpiration":"1020",
    "AuthNumber":"198159",
    "Signature":"%s",
    "ResultCode":"3",
    "Reference":"1234567890"
}]]
    local WIRE_URL = "AccountId=4107111111&Type=CRDT&Amount=6.00&Currency=EUR&ResultCode=0&PaymentId=177561"
        .. "&Reference=1234567890&CounterAccount=SK3399520000002107425307&CounterAccountName=TestAccount"
    local WIRE_F = { AccountId = "4107111111", Amount = "6.00", Currency = "EUR", Type = "CRDT", ResultCode = "0",
        CounterAccount = "SK3399520000002107425307", CounterAccountName = "TestAccount", PaymentId = "177561",
        Reference = "1234567890" }
    local CARD_F = { AccountId = "4107111111", Amount = "6.00", Currency = "EUR", Type = "CRDT", ResultCode = "3",
        Reference = "1234567890", PaymentRequestId = "177561", CardId = "8a8294495c589aa3015c63bd6d237e46",
        CardMask = "0162", CardExpiration = "1020", AuthNumber = "198159" }

    it("002 seed, Payment E-mail notification example: verifies both channels (URL and JSON), the same event", function()
        local wsig = assert(trustpay.sign(KEYS.secret, "wire_notification", WIRE_F))
        local csig = assert(trustpay.sign(KEYS.secret, "card_notification", CARD_F))
        local by_mail = assert(trustpay.verify_notification(WIRE_EMAIL:format(wsig), nil, KEYS))
        local by_url = assert(trustpay.verify_notification(WIRE_URL .. "&Signature=" .. wsig, nil, KEYS))
        for _, k in ipairs({ "kind", "status", "merchant_ref", "provider_ref", "amount", "currency" }) do
            assert.equal(by_url[k], by_mail[k], k)
        end
        assert.equal(600, by_mail.amount)
        assert.equal("wire", by_mail.extra.method)
        assert.equal("6.00", by_mail.extra.params.Amount)
        assert.equal(WIRE_EMAIL:format(wsig), by_mail.raw)
        local card = assert(client():notification(CARD_EMAIL:format(csig)))
        assert.equal("card", card.extra.method)
        assert.equal("succeeded", card.status)
        assert.equal("0162", card.extra.card.CardMask)
        -- the example decoded (lua-cjson: numbers as doubles) is read as the document writes it
        local decoded = cjson.decode(WIRE_EMAIL:format(wsig))
        assert.equal(600, assert(trustpay.verify_notification(decoded, nil, KEYS)).amount)
        -- a changed value does not verify
        local _, err = trustpay.verify_notification((WIRE_EMAIL:format(wsig):gsub("6%.00", "60.00")), nil, KEYS)
        assert.equal("signature", err.type)
        _, err = trustpay.verify_notification("{not json", nil, KEYS)
        assert.equal("validation", err.type)
    end)

    it("verifies with the keys alone, no client, and gives the one event shape", function()
        local q = signed_query(F)
        local event = assert(trustpay.verify_notification(q, {}, KEYS))
        assert.equal(provider.event_mt, getmetatable(event))
        in_vocabulary(event)
        assert.same({ "trustpay", "payment", "succeeded", "1234567890", "177561", 600, "EUR" }, { event.provider,
            event.kind, event.status, event.merchant_ref, event.provider_ref, event.amount, event.currency })
        assert.equal(q, event.raw) -- the very string received
        for k in pairs(event) do
            assert.is_truthy(("provider kind status merchant_ref provider_ref amount currency raw extra"):find(k, 1, true), k)
        end
        assert.same({ method = "card", type = "CRDT", result_code = 0, result = trustpay.parse_result('{"ResultCode":0}').result,
            card = { CardId = F.CardId, CardMask = "0162", CardExpiration = "1020", AuthNumber = "198159" },
            params = trustpay.parse_query(q) }, event.extra)
        -- the whole URL works too, headers may be nil, account_id a number
        local url = "https://shop.example/result.php?" .. q
        event = assert(trustpay.verify_notification(url, nil, { secret = "123456", account_id = 4107111111 }))
        assert.equal(url, event.raw)
        -- the client's notification is the same function with its own keys
        assert.same(trustpay.verify_notification(q, {}, KEYS), client():notification(q, {}))
    end)

    it("gives a DBIT wire notification as a refund, the provider's words under extra", function()
        local f = { AccountId = "4107111111", Amount = "1.50", Currency = "EUR", Type = "DBIT", ResultCode = "0",
            Reference = "r-1", PaymentId = "42", CounterAccountName = "Ján Nováček" }
        local q = signed_query(f)
        local event = assert(trustpay.verify_notification(q, {}, KEYS))
        in_vocabulary(event)
        assert.same({ "refund", "refunded", "42", 150 }, { event.kind, event.status, event.provider_ref, event.amount })
        assert.same({ "wire", "DBIT", "Ján Nováček" }, { event.extra.method, event.extra.type, event.extra.params.CounterAccountName })
        assert.is_nil(event.extra.card)
        assert.equal(q, event.raw)
    end)

    it("calls a tampered notification a signature error, and one for another account a validation error", function()
        local q = signed_query(F)
        for _, bad in ipairs({ (q:gsub("Amount=6%.00", "Amount=600.00")), (q:gsub("ResultCode=0", "ResultCode=3")),
            (q:gsub("Type=CRDT", "Type=DBIT")), (q:gsub("Signature=%x", "Signature=0")) }) do
            assert.not_equal(q, bad)
            local event, err = trustpay.verify_notification(bad, {}, KEYS)
            assert.is_nil(event)
            assert.equal("signature", err.type)
            assert.is_nil(tostring(err):find("123456", 1, true))
        end
        local event, err = trustpay.verify_notification(q, {}, { secret = "654321", account_id = "4107111111" })
        assert.is_nil(event)
        assert.equal("signature", err.type)
        event, err = trustpay.verify_notification(q, {}, { secret = "123456", account_id = "4107000000" })
        assert.is_nil(event)
        assert.equal("validation", err.type)
    end)

    it("raises on misuse, naming the function", function()
        local q = signed_query(F)
        local cases = {
            { function() trustpay.verify_notification(nil, {}, KEYS) end, "#1 'raw_body' (string expected, got nil)" },
            { function() trustpay.verify_notification(q, "x", KEYS) end, "#2 'headers' (table or nil expected, got string)" },
            { function() trustpay.verify_notification(q, {}) end, "#3 'keys' (table {secret, account_id} expected, got nil)" },
            { function() trustpay.verify_notification(q, {}, { account_id = "4107111111" }) end,
              "#3 'keys' (keys.secret must be a non-empty string)" },
            { function() trustpay.verify_notification(q, {}, { secret = "123456", account_id = "41x" }) end,
              "#3 'keys' (keys.account_id must be TrustPay's account or project ID)" },
        }
        for _, c in ipairs(cases) do assert.has_error(c[1], "trustpay.verify_notification: bad argument " .. c[2]) end
        assert.has_error(function() client():notification(q, "x") end,
            "trustpay.Client:notification: bad argument #2 'headers' (table or nil expected, got string)")
    end)

    it("still takes a table of parameters (deprecated until 0.3): raw is then the query rebuilt", function()
        local t = trustpay.parse_query(signed_query(F))
        local event = assert(client():notification(t))
        assert.equal(http.encode_query(t), event.raw)
        assert.equal("succeeded", event.status)
        event = assert(trustpay.verify_notification(t, nil, KEYS))
        assert.equal(http.encode_query(t), event.raw)
        -- and the extras read from the top level, as in 0.1 (deprecated until 0.3)
        assert.same({ "card", 0, "Success", "0162" }, { event.method, event.result_code, event.result.name, event.card.CardMask })
    end)

    it("answers 200 OK when the event is recorded, 500 for TrustPay to call again when not, 400 without an event", function()
        local tp = client()
        local event = assert(tp:notification(signed_query(F)))
        local ok = { status = 200, headers = { ["Content-Type"] = "text/plain" }, body = "OK" }
        local again = { status = 500, headers = { ["Content-Type"] = "text/plain" }, body = "ERROR" }
        assert.same(ok, tp:notification_response(event, true))
        assert.same(again, tp:notification_response(event, false))
        local refused = { status = 400, headers = { ["Content-Type"] = "text/plain" }, body = "ERROR" }
        assert.same(refused, tp:notification_response(nil, true)) -- no event: forged or unreadable
        assert.same(refused, tp:notification_response(nil, false))
        assert.same(refused, tp:notification_response(nil))
        assert.has_error(function() tp:notification_response("event", true) end,
            "trustpay.Client:notification_response: bad argument #1 'event' (table or nil expected, got string)")
        assert.has_error(function() tp:notification_response(event, "yes") end,
            "trustpay.Client:notification_response: bad argument #2 'received' (boolean expected, got string)")
    end)
end)

describe("trustpay redirect results", function()
    it("parses what the browser brings back, marked unverified", function()
        local r = client():redirect_result("https://shop.example/ok?Reference=1234567890&ResultCode=1014"
            .. "&AcquirerResponseId=800.100.155&PaymentRequestId=4337417657")
        assert.is_false(r.verified)
        assert.equal("1234567890", r.Reference)
        assert.equal(1014, r.ResultCode)
        assert.equal("4337417657", r.PaymentRequestId)
        assert.equal("800.100.155", r.AcquirerResponseId)
        assert.equal("Rejected transaction", r.result.name)
        assert.equal("Rejected - insufficient funds", r.acquirer)
        assert.equal("failed", r.status)
        r = client():redirect_result{ Reference = "r", ResultCode = "1005" }
        assert.equal("canceled", r.status)
        assert.is_false(r.verified)
    end)
end)

-- A transport that answers from a list and records each request.
local function stub(answers)
    local seen = {}
    local function transport(req)
        seen[#seen + 1] = req
        local a = table.remove(answers, 1)
        if type(a) == "function" then a = a(req) end
        return a
    end
    return transport, seen
end

local function json(status, body)
    return { status = status, headers = { ["content-type"] = "application/json" }, body = body }
end

describe("trustpay background calls (stub transport)", function()
    it("sends a signed refund to the card endpoint and reads the documented answer", function()
        local transport, seen = stub{ json(200, "{'ResultCode':0,'AcquirerResponseId':'000.000.000'}") }
        local tp = client{ transport = transport, base_url = "https://amapi.example" }
        local res = assert(tp:refund{ Amount = 150, Currency = "EUR", Reference = "ORD-42-R1", PaymentRequestId = 846487 })
        assert.equal(0, res.result_code)
        assert.equal("Success", res.result.name)
        assert.equal("000.000.000", res.acquirer_response_id)
        assert.equal(1, #seen)
        assert.equal("GET", seen[1].method)
        local base, q = seen[1].url:match("^([^?]+)%?(.*)$")
        assert.equal("https://amapi.example/mapi5/Card/PayPopup", base)
        q = trustpay.parse_query(q)
        assert.equal("8", q.PaymentType)
        assert.equal("846487", q.PaymentRequestId)
        -- the card_refund vector's values, signed with its key
        assert.equal("24BF3389A35F3227D30D3A587954863B963160C6E5ABA08DD52DB252D0FE6B4A", q.Signature)
        assert.is_false(seen[1].idempotent)
    end)

    it("sends a wire refund to the wire endpoint", function()
        local transport, seen = stub{ json(200, '{"ResultCode": 0}') }
        local tp = client{ transport = transport }
        assert(tp:wire_refund{ Amount = 150, Currency = "EUR", Reference = "r", PaymentRequestId = "555" })
        assert.matches("^https://amapi%.trustpay%.eu/mapi5/wire/paypopup%?", seen[1].url)
    end)

    it("returns a result code of 1000 or more as a provider error, with the acquirer code explained", function()
        local transport = stub{ json(200, '{"ResultCode":1014,"AcquirerResponseId":"800.100.155"}') }
        local res, err = client{ transport = transport }:capture{ Amount = 100, Currency = "EUR", Reference = "r", PaymentRequestId = "1" }
        assert.is_nil(res)
        assert.equal("provider", err.type)
        assert.equal(1014, err.code)
        assert.equal("Rejected transaction", err.result.result.name)
        assert.equal("Rejected - insufficient funds", err.result.acquirer)
        assert.matches("insufficient funds", tostring(err))
    end)

    it("sends nothing for an invalid call", function()
        local transport, seen = stub{}
        local res, err = client{ transport = transport }:recurring_charge{ Amount = 100, Currency = "EUR", Reference = "a<b" }
        assert.is_nil(res)
        assert.same({ "PaymentRequestId:required", "Reference:forbidden" }, paths(err))
        assert.equal(0, #seen)
    end)

    it("gives HTTP failures and answers without a result code as errors", function()
        local transport = stub{ json(503, "busy"), json(200, "<html>?</html>") }
        local tp = client{ transport = transport, retries = 0 }
        local params = { Amount = 100, Currency = "EUR", Reference = "r", PaymentRequestId = "1" }
        local _, err = tp:refund(params)
        assert.equal("http", err.type)
        assert.equal(503, err.http_status)
        _, err = tp:refund(params)
        assert.equal("provider", err.type)
    end)
end)

describe("trustpay API Banking token (stub transport)", function()
    local function token_answer(expires_in, name)
        return json(200, ('{"access_token":"%s","token_type":"Bearer","expires_in":%d}'):format(name, expires_in))
    end

    it("refreshes once on a 401 and then gives up with the HTTP error", function()
        local transport, seen = stub{ token_answer(1799, "t1"), json(401, "{}"), token_answer(1799, "t2"), json(401, "{}") }
        local tp = client{ transport = transport, banking = { username = "u", password = "pw-secret" } }
        local res, err = tp:accounts()
        assert.is_nil(res)
        assert.equal("http", err.type)
        assert.equal(401, err.http_status)
        assert.equal(4, #seen)
        assert.equal("Basic " .. core.base64_encode("u:pw-secret"), seen[1].headers.Authorization)
        assert.equal("grant_type=client_credentials", seen[1].body)
        assert.equal("Bearer t1", seen[2].headers.Authorization)
        assert.equal("Bearer t2", seen[4].headers.Authorization)
        assert.is_nil(tostring(err):find("pw-secret", 1, true))
    end)

    it("keeps the token until shortly before expires_in", function()
        local now = 1000
        local transport, seen = stub{
            token_answer(1799, "t1"), json(200, '{"AccountList":[]}'), json(200, '{"AccountList":[]}'),
            token_answer(1799, "t2"), json(200, '{"AccountList":[]}'),
        }
        local tp = client{ transport = transport, clock = function() return now end, banking = { username = "u", password = "p" } }
        assert(tp:accounts())
        now = now + 1700
        assert(tp:accounts())
        now = now + 90 -- 1790 s: within the last minute of 1799
        assert(tp:accounts())
        assert.equal(5, #seen)
        assert.equal("Bearer t1", seen[3].headers.Authorization)
        assert.matches("/api/oauth2/token$", seen[4].url)
        assert.equal("Bearer t2", seen[5].headers.Authorization)
    end)

    it("says how to configure API Banking when it is missing", function()
        local _, err = client():accounts()
        assert.equal("config", err.type)
        assert.matches("banking", err.message)
    end)
end)

describe("trustpay pain.001 orders (pure)", function()
    local function order(extra)
        local o = {
            Amount = 12345, Currency = "EUR", MessageId = "MSG-" .. core.uuid4():sub(1, 8), DebtorAccount = "4107111111",
            DebtorName = "Shop s.r.o.", CityCode = "Bratislava", CreditorName = "Creditor",
            CreditorAccount = "SK3399520000002107425307", CreditorBankBic = "TPAYSKBX", CreditorBankName = "TrustPay",
            CreditorBankAddress = "Za kasarnou 1", CreditorBankCity = "Bratislava", CreditorBankCountry = "SK",
            RequestedExecutionDate = os.date("!%Y-%m-%d", os.time() + 86400),
        }
        for k, v in pairs(extra or {}) do o[k] = v end
        return o
    end

    it("escapes every value", function()
        local xml = assert(trustpay.order_xml(order{ CreditorName = [[<Müller & "Söhne" 'Ltd'>]],
            Description = "Záloha </Ustrd><x> & ☃", ClientReference = "A&B" }))
        assert.truthy(xml:find("<Nm>&lt;Müller &amp; &quot;Söhne&quot; &apos;Ltd&apos;&gt;</Nm>", 1, true))
        assert.truthy(xml:find("<Ustrd>Záloha &lt;/Ustrd&gt;&lt;x&gt; &amp; ☃</Ustrd>", 1, true))
        assert.truthy(xml:find("<AddtlRmtInf>CREF:A&amp;B</AddtlRmtInf>", 1, true))
        assert.truthy(xml:find('xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"', 1, true))
        assert.truthy(xml:find('<InstdAmt Ccy="EUR">123.45</InstdAmt>', 1, true))
        assert.truthy(xml:find("<EndToEndId>NOTPROVIDED</EndToEndId>", 1, true))
        assert.truthy(xml:find("<IBAN>SK3399520000002107425307</IBAN>", 1, true))
    end)

    it("validates every field of the seed's table and the rules around them", function()
        local xml, err = trustpay.order_xml(order{ CreditorBankCountry = "US", Currency = "USD", CreditorAccount = "123456789",
            CreditorName = ("n"):rep(36), RequestedExecutionDate = "2020-01-01", SymbolConstant = "12345",
            CreditorBankBic = "NOTABIC", Description = "bell\7", Amount = 1.5, Nonsense = 1 })
        assert.is_nil(xml)
        assert.same({ "AbaCode:required", "Amount:type", "CreditorAddress:required", "CreditorBankBic:format",
            "CreditorCity:required", "CreditorCountry:required", "CreditorName:max_len", "Description:forbidden",
            "Nonsense:unknown", "RequestedExecutionDate:range", "SymbolConstant:max_len", "SymbolConstant:pattern" }, paths(err))
    end)

    -- the mass order table has no CityCode and no symbols
    local function mass(extra)
        local o = order(extra)
        o.CityCode = nil
        return o
    end

    it("puts several orders in one message and checks they share it", function()
        local a = mass()
        local b = mass{ Amount = 100, CreditorName = "Second", MessageId = a.MessageId }
        local xml = assert(trustpay.orders_xml({ a, b }))
        assert.truthy(xml:find("<NbOfTxs>2</NbOfTxs>", 1, true))
        assert.truthy(xml:find("<CtrlSum>124.45</CtrlSum>", 1, true))
        local _, err = trustpay.orders_xml({ a, mass() })
        assert.same({ "[2].MessageId:enum" }, paths(err))
        local c = mass{ SymbolVariable = "1", MessageId = a.MessageId }
        c.CityCode = "Praha"
        _, err = trustpay.orders_xml({ a, c })
        assert.same({ "[2].CityCode:unknown", "[2].SymbolVariable:unknown" }, paths(err))
        _, err = trustpay.orders_xml({})
        assert.same({ ":items" }, paths(err))
    end)
end)

describe("trustpay misuse", function()
    it("raises at the caller's line when a URL builder or a background call gets no table", function()
        local c = trustpay.new{ account_id = "4107111111", secret = "123456", transport = function() error("not sent") end }
        for _, method in ipairs({ "card_payment_url", "wire_payment_url", "refund", "capture" }) do
            local line = debug.getinfo(1, "l").currentline + 1
            local ok, err = pcall(function() c[method](c, "Amount=1") end) -- not a tail call: the frame stays
            assert.is_false(ok)
            assert.matches(":" .. line .. ": trustpay.Client:" .. method .. ": bad argument #1 'params' (table expected, got string)",
                err, 1, true)
        end
    end)
end)
