-- TrustPay's hot paths (issue 15): the pop-up URL builders and the
-- query-string notification are done in one pass in C
-- (core.trustpay_url, core.trustpay_notification), which answers only the
-- common case and leaves everything else to the Lua code. Over random and
-- mutated parameters and notifications, the answer (URL, event or error)
-- is the same with the C pass as with the Lua code alone. Seeded: a
-- failure names its seed. LUAPAY_PROPERTY_RUNS sets the count.
local core = require "luapay.core"
local http = require "luapay.http"
local trustpay = require "luapay.trustpay"
local property = require "support.property"
local RUNS, rng, pick = property.RUNS, property.rng, property.pick

local SECRET, ACCOUNT = "123456", "4107111111"
local tp = trustpay.new{ account_id = ACCOUNT, secret = SECRET, transport = function() end }
local keys = { secret = SECRET, account_id = ACCOUNT }

-- What a call answered, comparable with assert.same: the value, or the
-- error's words and fields. Raising is an answer too.
local function answer(f, ...)
    local ok, v, err = pcall(f, ...)
    if not ok then return { raised = tostring(v):gsub("^[^:]*:%d+: ", "") } end
    if v == nil then
        return { err = tostring(err), type = err.type, fields = err.fields }
    end
    if type(v) == "table" then return { value = v, mt = getmetatable(v) } end
    return { value = v }
end

-- The same call with the C pass, then with the Lua code alone.
local function both(name, f, ...)
    local fast = answer(f, ...)
    local saved = core[name]
    core[name] = function() return nil end
    local ok, slow = pcall(answer, f, ...)
    core[name] = saved
    assert(ok, slow)
    return fast, slow
end

local TEXT = { "ORD-42", "Eva Černá", "a/b", "x<y", "", "  ", "100%", "a+b&c=d#e?f", "Náměstí Svobody 1", "O'Brien",
    ("x"):rep(36), ("é"):rep(40), "602 00", "ab\0cd", "https://shop.example/ok?x=1", "eva@example.cz", "not an email" }
local AMOUNTS = { 150, 0, 1, -5, 123456, 2 ^ 53, 9007199254740993, 1.5, 100.0, "1.50", "1.5", "-1.00", "abc", "1234.56",
    99999999999999, 999999999999 }
local CURRENCIES = { "EUR", "CZK", "JPY", "BHD", "CLF", "XXX", "eur", "" }

local function card_params(R)
    local p = {
        Amount = 150, Currency = "EUR", Reference = "ORD-42", CardHolder = "Eva Černá", Email = "eva@example.cz",
        BillingStreet = "Náměstí Svobody 1", BillingCity = "Brno", BillingPostcode = "60200", BillingCountry = "CZ",
    }
    if R(1, 2) == 1 then p.NotificationUrl = "https://shop.example/trustpay/notify" end
    if R(1, 3) == 1 then p.Localization = pick(R, { "cs", "en", "xx", "CS" }) end
    if R(1, 4) == 1 then p.Description = pick(R, TEXT) end
    for _ = 1, R(0, 3) do
        local k = R(1, 12)
        local field = pick(R, { "Amount", "Currency", "Reference", "CardHolder", "Email", "BillingStreet", "BillingCity",
            "BillingPostcode", "BillingCountry", "Description", "IsRedirect", "CardId" })
        if k == 1 then p[field] = nil
        elseif k == 2 then p[field] = ""
        elseif k <= 4 then p.Amount = pick(R, AMOUNTS)
        elseif k == 5 then p.Currency = pick(R, CURRENCIES)
        elseif k == 6 then p.IsRedirect = pick(R, { true, false, "True", "False", "yes" })
        elseif k == 7 then p[pick(R, { "AccountId", "PaymentType", "Signature", "Other" })] = pick(R, { "1", 0, "x" })
        elseif k == 8 then p[field] = pick(R, { 42, 42.0, 4.2, {}, { "a" } })
        elseif k == 9 then p[1] = "x"
        else p[field] = pick(R, TEXT) end
    end
    return p
end

-- For the URL builders' one pass (its plan and its schema check without
-- Lua calls): values each of the schemas' checks refuses (lengths in
-- characters, UTF-8, URL and e-mail forms, codes), and every optional field,
-- so that the fields of a query come in every order.
local URL_TEXT = { ("é"):rep(81), ("a"):rep(101), ("x"):rep(141), "ab\255", "\192\128", "https://shop.example/" .. ("p"):rep(240),
    "ftp://shop.example/x", "https://user:pw@shop.example/", "http://localhost:8080/ok?x=1&y=%20", "eva@", "@example.cz",
    "eva@example", ("e"):rep(250) .. "@example.cz", "SK", "DE", "zz", "sk", "True", "False", "Ab 12", "1234567890", "a~b" }
local OPTIONAL = { "Url", "ReturnUrl", "CancelUrl", "ErrorUrl", "NotificationUrl", "Country", "Description", "IsRedirect",
    "Localization", "Email", "CardHolder", "BillingCity", "BillingStreet", "BillingPostcode", "BillingCountry", "CardId",
    "Reference", "Currency" }
local ALL_OPTIONAL = { Url = "https://shop.example/", ReturnUrl = "https://shop.example/ok", CancelUrl = "https://shop.example/no",
    ErrorUrl = "https://shop.example/err", NotificationUrl = "https://shop.example/n?a=1&b=2", Country = "SK",
    Description = "Order 42 ~ two cups", IsRedirect = "True", Localization = "sk", CardId = "card-1/x" }

local function url_params(R)
    local p = card_params(R)
    local k = R(1, 3)
    if k == 1 then -- one that holds, with some or all of the optional fields
        p = { Amount = pick(R, { 150, 1, 123456, 99999999999, 100.0 }), Currency = pick(R, { "EUR", "CZK", "JPY", "BHD" }),
            Reference = "ORD42", CardHolder = "Eva Černá", Email = "eva@example.cz", BillingStreet = "Náměstí Svobody 1",
            BillingCity = "Brno", BillingPostcode = "602 00", BillingCountry = "CZ" }
        for name, v in pairs(ALL_OPTIONAL) do
            if R(1, 2) == 1 then p[name] = v end
        end
    elseif k == 2 then
        for _ = 1, R(1, 2) do p[pick(R, OPTIONAL)] = pick(R, R(1, 2) == 1 and URL_TEXT or TEXT) end
    end
    return p
end

local METHODS = { "card_payment_url", "wire_payment_url", "card_on_file_purchase_url", "card_on_file_preauthorization_url",
    "recurring_initial_preauthorization_url", "preauthorization_url" }

-- Writes a query string as TrustPay (or a forger) might: names in any
-- order, values percent-encoded or with "+", sometimes a URL before it.
local function query_of(R, p)
    local names = {}
    for k in pairs(p) do names[#names + 1] = k end
    table.sort(names)
    for i = #names, 2, -1 do local j = R(1, i); names[i], names[j] = names[j], names[i] end
    local parts = {}
    for _, k in ipairs(names) do
        local v = core.url_encode(p[k])
        if R(1, 3) == 1 then v = v:gsub("%%20", "+") end
        if R(1, 4) == 1 then v = v:gsub("(%%)(%x%x)", function(pc, x) return pc .. x:lower() end) end
        parts[#parts + 1] = core.url_encode(k) .. "=" .. v
    end
    local q = table.concat(parts, "&")
    local k = R(1, 12)
    if k == 1 then q = "https://shop.example/notify?" .. q
    elseif k == 2 then q = q .. "#frag"
    elseif k == 3 then q = "&&" .. q .. "&"
    elseif k == 4 and #parts > 0 then q = q .. "&" .. pick(R, parts)
    elseif k == 5 and #parts > 0 then q = q .. "&" .. parts[1]:gsub("=.*", "=other")
    elseif k == 6 then q = q .. "&=x&novalue"
    elseif k == 7 then q = pick(R, { " {", "\t{", "{" }) .. '"Amount":1}'
    elseif k == 8 then q = property.mutate(R, q) end
    return q
end

local function notification_fields(R)
    local card = R(1, 2) == 1
    local p = { AccountId = ACCOUNT, Amount = "1234.56", Currency = "EUR", Reference = "ORD-42", Type = "CRDT", ResultCode = "3" }
    if card then
        p.PaymentRequestId = "846487"
        if R(1, 2) == 1 then p.CardMask = "420000******1234"; p.CardExpiration = "1230"; p.AuthNumber = "198159" end
        if R(1, 4) == 1 then p.CardId = "card/1 +x" end
    else
        p.PaymentId = "2201"; p.ResultCode = "0"
        if R(1, 2) == 1 then p.CounterAccount = "SK1234"; p.CounterAccountName = "Eva Černá" end
        if R(1, 3) == 1 then p.OrderId = "77" end
    end
    for _ = 1, R(0, 3) do
        local k = R(1, 9)
        if k == 1 then p.Amount = pick(R, { "-13.37", "-0.00", "0.00", "00012.30", "1.5", "12", "1e3", "9007199254740.99",
            "90071992547409.93", "1.234" })
        elseif k == 2 then p.Currency = pick(R, CURRENCIES)
        elseif k == 3 then p.ResultCode = pick(R, { "0", "0003", "1005", "5", "123456789", "12345678901", "", "x", "-1" })
        elseif k == 4 then p.Type = pick(R, { "DBIT", "crdt", "", "CRDT" })
        elseif k == 5 then p.AccountId = pick(R, { "4107111112", "", "04107111111" })
        elseif k == 6 then p[pick(R, { "Reference", "CardMask", "OrderId", "RefuseReason" })] = ""
        elseif k == 7 then p.Reference = pick(R, TEXT):gsub("%z", "")
        elseif k == 8 then p.PaymentId, p.PaymentRequestId = p.PaymentRequestId, p.PaymentId
        else p.Extra = pick(R, TEXT):gsub("%z", "") end
    end
    local kind = p.PaymentId and "wire_notification" or "card_notification"
    local values = trustpay.message(kind, p)
    if values and R(1, 8) > 1 then p.Signature = trustpay.signature(SECRET, values) end
    local k = R(1, 10)
    if p.Signature and k == 1 then p.Signature = p.Signature:lower()
    elseif p.Signature and k == 2 then p.Signature = p.Signature:sub(2)
    elseif p.Signature and k == 3 then p.Signature = ("0"):rep(64)
    elseif k == 4 then p.Signature = ("g"):rep(64) end
    return p
end

describe("TrustPay's one-pass C paths", function()
    it("are taken for the common case", function()
        local saved, taken = core.trustpay_url, nil
        core.trustpay_url = function(...) taken = saved(...); return taken end
        local url = tp:card_payment_url{ Amount = 150, Currency = "EUR", Reference = "ORD-42", CardHolder = "Eva Černá",
            Email = "eva@example.cz", BillingStreet = "Náměstí Svobody 1", BillingCity = "Brno", BillingPostcode = "60200",
            BillingCountry = "CZ" }
        core.trustpay_url = saved
        assert.equal(url, taken)
        local p = { AccountId = ACCOUNT, Amount = "1.50", Currency = "EUR", Reference = "R1", Type = "CRDT",
            ResultCode = "3", PaymentRequestId = "1" }
        p.Signature = trustpay.sign(SECRET, "card_notification", p)
        local got, method, code, amount = core.trustpay_notification(http.encode_query(p), SECRET, ACCOUNT,
            trustpay.signed_fields)
        assert.same(p, got)
        assert.same({ "card", 3, 150 }, { method, code, amount })
    end)

    it("give the URL or the error the Lua code gives, for random parameters", function()
        -- how often the C pass answered: a pass that always leaves it to the Lua code would agree too
        local saved, answered = core.trustpay_url, 0
        core.trustpay_url = function(...)
            local url = saved(...)
            if url then answered = answered + 1 end
            return url
        end
        -- a client whose account_id was changed to "" after new: trustpay.message refuses it
        local blank = trustpay.new{ account_id = ACCOUNT, secret = SECRET, transport = function() end }
        blank.account_id = ""
        for run = 1, RUNS do
            local seed = 1500 + run
            local R = rng(seed)
            local method = pick(R, METHODS)
            local params = url_params(R)
            local client = R(1, 20) == 1 and blank or tp
            if method == "wire_payment_url" then
                for _, f in ipairs({ "CardHolder", "Email", "BillingStreet", "BillingCity", "BillingPostcode", "BillingCountry" }) do
                    if R(1, 4) > 1 then params[f] = nil end
                end
            end
            if R(1, 20) == 1 then setmetatable(params, { __index = function() return nil end }) end
            local fast, slow = both("trustpay_url", function(p) return client[method](client, p) end, params)
            assert.same(slow, fast, "seed " .. seed .. " " .. method)
        end
        core.trustpay_url = saved
        assert.is_true(answered >= RUNS / 10, "the C pass answered " .. answered .. " of " .. RUNS)
    end)

    it("leave a closed schema, and parameters with a metatable or not a table, to the Lua code; misuse raises", function()
        local schema = core.schema{ type = "object", additional = false, fields = {
            Amount = { type = "amount", required = true }, Currency = { type = "currency", required = true },
            Reference = { type = "string", required = true } } }
        local names, required = trustpay.signed_fields.card_purchase, { "AccountId", "Amount", "Currency", "Reference" }
        local plan = core.trustpay_url_plan(schema, names, required, 0, "/p")
        local p = { Amount = 150, Currency = "EUR", Reference = "R~1 x" }
        local values = { ACCOUNT, "1.50", "EUR", "R~1 x", "0" }
        assert.equal("https://h/p?AccountId=" .. ACCOUNT .. "&Amount=1.50&Currency=EUR&PaymentType=0&Reference=R~1%20x&Signature="
            .. trustpay.signature(SECRET, values), core.trustpay_url(plan, p, ACCOUNT, SECRET, "https://h"))
        assert.is_nil(core.trustpay_url(plan, "Amount=150", ACCOUNT, SECRET, "https://h"))
        assert.is_nil(core.trustpay_url(plan, setmetatable(p, {}), ACCOUNT, SECRET, "https://h"))
        setmetatable(p, nil)
        schema:close()
        assert.is_nil(core.trustpay_url(plan, p, ACCOUNT, SECRET, "https://h"))
        assert.has_error(function() core.trustpay_url_plan(schema, names, required, 0, "/p") end,
            "trustpay_url_plan: bad argument #1 'schema' (an open compiled schema of an object expected)")
        local taken = core.schema{ type = "object", fields = { Signature = { type = "string" } } }
        assert.has_error(function() core.trustpay_url_plan(taken, names, required, 0, "/p") end,
            "trustpay_url_plan: bad argument #1 'schema' (declares AccountId, PaymentType or Signature)")
        assert.has_error(function() core.trustpay_url_plan(taken, names, required, 100, "/p") end)
        assert.has_error(function() core.trustpay_url({}, p, ACCOUNT, SECRET, "https://h") end)
    end)

    it("give the event or the error the Lua code gives, for random notifications", function()
        for run = 1, RUNS do
            local seed = 7500 + run
            local R = rng(seed)
            local q = query_of(R, notification_fields(R))
            local fast, slow = both("trustpay_notification", function(s) return tp:notification(s) end, q)
            assert.same(slow, fast, "seed " .. seed .. " " .. q)
            fast, slow = both("trustpay_notification", trustpay.verify_notification, q, nil, keys)
            assert.same(slow, fast, "seed " .. seed .. " " .. q)
        end
    end)
end)
