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

-- A signed card notification's fields (extra: more fields, signed or not).
local function signed_card(extra)
    local p = { AccountId = ACCOUNT, Amount = "1234.56", Currency = "EUR", Reference = "ORD-42", Type = "CRDT",
        ResultCode = "3", PaymentRequestId = "846487", CardMask = "420000******1234", CardExpiration = "1230",
        AuthNumber = "198159" }
    for k, v in pairs(extra or {}) do p[k] = v end
    p.Signature = trustpay.sign(SECRET, "card_notification", p)
    return p
end

-- A query string's pieces written as they are (no encoding added).
local function raw_query(pairs_list)
    local parts = {}
    for i, kv in ipairs(pairs_list) do parts[i] = kv[2] and kv[1] .. "=" .. kv[2] or kv[1] end
    return table.concat(parts, "&")
end

-- The fields of p as name=encoded value pieces, in byte order of the names.
local function pieces(p)
    local names, list = {}, {}
    for k in pairs(p) do names[#names + 1] = k end
    table.sort(names)
    for i, k in ipairs(names) do list[i] = { k, core.url_encode(p[k]) } end
    return list
end

-- Bytes a value may hold, the query's own separators and escapes among them.
local BYTES = { "a", "Z", "0", "-", "&", "=", "%", "+", "%2B", "%26", "%3D", "%25", "%zz", "%4", " ", "\0", "é", "/", "?", "#" }

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
            trustpay.NOTIFICATION_PLAN)
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
        local plan = core.trustpay_url_plan(schema, names, required, 0, "/p", trustpay.FIELD_ROLES)
        local p = { Amount = 150, Currency = "EUR", Reference = "R~1 x" }
        local values = { ACCOUNT, "1.50", "EUR", "R~1 x", "0" }
        assert.equal("https://h/p?AccountId=" .. ACCOUNT .. "&Amount=1.50&Currency=EUR&PaymentType=0&Reference=R~1%20x&Signature="
            .. trustpay.signature(SECRET, values), core.trustpay_url(plan, p, ACCOUNT, SECRET, "https://h"))
        assert.is_nil(core.trustpay_url(plan, "Amount=150", ACCOUNT, SECRET, "https://h"))
        assert.is_nil(core.trustpay_url(plan, setmetatable(p, {}), ACCOUNT, SECRET, "https://h"))
        setmetatable(p, nil)
        schema:close()
        assert.is_nil(core.trustpay_url(plan, p, ACCOUNT, SECRET, "https://h"))
        assert.has_error(function() core.trustpay_url_plan(schema, names, required, 0, "/p", trustpay.FIELD_ROLES) end,
            "trustpay_url_plan: bad argument #1 'schema' (an open compiled schema of an object expected)")
        local taken = core.schema{ type = "object", fields = { Signature = { type = "string" } } }
        assert.has_error(function() core.trustpay_url_plan(taken, names, required, 0, "/p", trustpay.FIELD_ROLES) end,
            "trustpay_url_plan: bad argument #1 'schema' (declares the account, payment type or signature field)")
        assert.has_error(function() core.trustpay_url_plan(taken, names, required, 100, "/p", trustpay.FIELD_ROLES) end)
        assert.has_error(function() core.trustpay_url({}, p, ACCOUNT, SECRET, "https://h") end)
    end)

    it("read the field names luapay.trustpay hands over in the plan, not names of their own", function()
        -- the C core knows no provider's field names: other names in the plan, and the pass reads those
        local roles = { account = "Konto", payment_type = "Typ", signature = "Sig", amount = "Betrag",
            currency = "Cur", type = "Dir", result = "Code" }
        local plan = core.trustpay_notification_plan(roles, { "IN", "OUT" },
            { { field = "Ref", name = "transfer", signed = { "Konto", "Betrag", "Cur", "Dir", "Code", "Ref", "Note" } } })
        local function query(dir)
            local sig = trustpay.signature(SECRET, { ACCOUNT, "1.50", "EUR", dir, "0", "R1", "n" })
            return "Konto=" .. ACCOUNT .. "&Betrag=1.50&Cur=EUR&Dir=" .. dir .. "&Code=0&Ref=R1&Note=n&Sig=" .. sig
        end
        local got, method, code, amount = core.trustpay_notification(query("OUT"), SECRET, ACCOUNT, plan)
        assert.same({ Konto = ACCOUNT, Betrag = "1.50", Cur = "EUR", Dir = "OUT", Code = "0", Ref = "R1", Note = "n",
            Sig = trustpay.signature(SECRET, { ACCOUNT, "1.50", "EUR", "OUT", "0", "R1", "n" }) }, got)
        assert.same({ "transfer", 0, 150 }, { method, code, amount })
        assert.is_nil(core.trustpay_notification(query("CRDT"), SECRET, ACCOUNT, plan)) -- not one of the plan's types
        assert.is_nil(core.trustpay_notification(query("OUT"), SECRET, ACCOUNT, trustpay.NOTIFICATION_PLAN))

        local schema = core.schema{ type = "object", fields = { Betrag = { type = "amount" }, Cur = { type = "currency" } } }
        local url_plan = core.trustpay_url_plan(schema, { "Konto", "Betrag", "Cur", "Typ" }, {}, 3, "/p", roles)
        assert.equal("https://h/p?Betrag=1.50&Cur=EUR&Konto=" .. ACCOUNT .. "&Sig="
            .. trustpay.signature(SECRET, { ACCOUNT, "1.50", "EUR", "3" }) .. "&Typ=3",
            core.trustpay_url(url_plan, { Betrag = 150, Cur = "EUR" }, ACCOUNT, SECRET, "https://h"))
        schema:close()
    end)

    it("make a notification plan only of field names, and say which argument is wrong", function()
        local roles = trustpay.FIELD_ROLES
        local methods = { { field = "PaymentId", name = "wire", signed = { "AccountId" } } }
        local function without(key)
            local r = {}
            for k, v in pairs(roles) do r[k] = v end
            r[key] = nil
            return r
        end
        local cases = {
            { { without("type"), { "CRDT" }, methods },
                "trustpay_notification_plan: bad argument #1 'roles' (roles.type: a field name expected)" },
            { { roles, {}, methods }, "trustpay_notification_plan: bad argument #2 'types' (1 to 4 values expected)" },
            { { roles, { "CRDT", 1 }, methods },
                "trustpay_notification_plan: bad argument #2 'types' (a list of strings expected)" },
            { { roles, { "CRDT" }, {} }, "trustpay_notification_plan: bad argument #3 'methods' (1 to 4 methods expected)" },
            { { roles, { "CRDT" }, { { field = "PaymentId", name = "wire", signed = { "Account\0Id" } } } },
                "trustpay_notification_plan: bad argument #3 'methods' (field names (non-empty strings) expected)" },
            { { roles, { "CRDT" }, { { field = "PaymentId", name = "wire" } } },
                "trustpay_notification_plan: bad argument #3 'methods' (a method's signed names must be a list)" },
        }
        for _, case in ipairs(cases) do
            assert.has_error(function() core.trustpay_notification_plan(table.unpack(case[1])) end, case[2])
        end
        assert.has_error(function() core.trustpay_notification("a=1", SECRET, ACCOUNT, trustpay.signed_fields) end)
        local schema = core.schema{ type = "object", fields = { Amount = { type = "amount" } } }
        assert.has_error(function() core.trustpay_url_plan(schema, {}, {}, 0, "/p", without("signature")) end,
            "trustpay_url_plan: bad argument #6 'roles' (roles.signature: a field name expected)")
        schema:close()
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

    it("give the event or the error the Lua code gives on the edges of the C pass", function()
        local p = signed_card()
        local base = pieces(p)
        local function with(...)
            local list = {}
            for _, kv in ipairs(base) do list[#list + 1] = kv end
            for _, kv in ipairs({ ... }) do list[#list + 1] = kv end
            return raw_query(list)
        end
        local many = {}
        for i = 1, 60 do many[i] = { ("Extra%02d"):format(i), "x" } end
        local cases = {
            -- taken by the C pass
            { raw_query(base), true },
            { with({ "Type", "CRDT" }), true },                 -- repeated with the same text
            { with({ "Note", "a=b=c" }), true },                -- "=" in a value
            { with({ "novalue" }, { "" }, { "" }), true },      -- a piece without "=", empty pieces
            { "&&" .. raw_query(base) .. "&", true },
            { "https://shop.example/notify?" .. raw_query(base) .. "#frag", true },
            { "a#b?" .. raw_query(base), true },
            { with({ "Note", "a\0b%00c" }), true },            -- NUL bytes, raw and encoded
            { with({ "Curre_cy", "x" }, { "AccountIX", "y" }, { "Tzpe", "1" }, { "Tzpe", "1" }), true },
            { with(table.unpack(many, 1, 48 - #base)), true }, -- 48 fields: the C pass's most
            { raw_query(base):gsub("Signature=(%x+)", function(h) return "Signature=" .. h:lower() end), true },
            -- left to the Lua code
            { with(table.unpack(many, 1, 49 - #base)), false },
            { raw_query(base):gsub("AccountId=", "Account%%49d="), false },  -- an encoded name
            { with({ "Card+Mask", "x" }), false },
            { with({ "Type", "DBIT" }), false },                 -- repeated with another value
            { with({ "Reference", "ORD%2D42" }), false },        -- the same value, written otherwise
            { raw_query(base):gsub("Signature=%x", "Signature=g"), false },
            { raw_query(base):gsub("AccountId=4107111111", "AccountId=4107111112"), false },
            { " {" .. raw_query(base), false },                -- JSON
        }
        for i, case in ipairs(cases) do
            local q, taken = case[1], case[2]
            local got = core.trustpay_notification(q, SECRET, ACCOUNT, trustpay.NOTIFICATION_PLAN)
            assert.equal(taken, got ~= nil, "case " .. i .. ": " .. q)
            local fast, slow = both("trustpay_notification", function(s) return tp:notification(s) end, q)
            assert.same(slow, fast, "case " .. i .. ": " .. q)
        end
    end)

    it("find every separator and escape wherever it falls (sixteen, eight or one byte at a time)", function()
        local base = pieces(signed_card())
        for _, c in ipairs({ "+", "%41", "&", "=", "%" }) do
            for pos = 0, 40 do
                local note = { "Note", ("a"):rep(pos) .. c .. ("b"):rep(40 - pos) }
                local last, first = { table.unpack(base) }, { note, table.unpack(base) }
                last[#last + 1] = note
                for _, q in ipairs({ raw_query(last), raw_query(first), raw_query(last) .. "#" .. c }) do
                    local fast, slow = both("trustpay_notification", function(s) return tp:notification(s) end, q)
                    assert.same(slow, fast, q)
                end
            end
        end
    end)

    it("read the signature's hex digits as the Lua code does, every byte next to them at every place", function()
        local q = raw_query(pieces(signed_card()))
        local at = q:find("Signature=", 1, true) + #"Signature="
        for _, c in ipairs({ "/", "0", "9", ":", "@", "A", "F", "G", "`", "a", "f", "g", "\0", "\198", "\255", " " }) do
            for i = 0, 63, 5 do
                local variant = q:sub(1, at + i - 1) .. c .. q:sub(at + i + 1)
                local fast, slow = both("trustpay_notification", function(s) return tp:notification(s) end, variant)
                assert.same(slow, fast, variant)
            end
        end
    end)

    it("read every value as the Lua code does, whatever bytes it holds and wherever they fall", function()
        for run = 1, RUNS do
            local seed = 8500 + run
            local R = rng(seed)
            local extra, list = {}, {}
            for i = 1, R(0, 4) do
                local v = {}
                for j = 1, R(0, 40) do v[j] = pick(R, BYTES) end
                extra[i] = table.concat(v)
            end
            local signed = R(1, 2) == 1 and { Reference = extra[1], CardId = extra[2] } or {}
            local p = signed_card(signed)
            for _, kv in ipairs(pieces(p)) do list[#list + 1] = kv end
            if signed.Reference and R(1, 2) == 1 then -- the signed values as they are, not encoded
                for _, kv in ipairs(list) do
                    if kv[1] == "Reference" then kv[2] = p.Reference end
                end
            end
            for i = 3, #extra do list[#list + 1] = { "Note" .. i, extra[i] } end
            for i = #list, 2, -1 do local j = R(1, i); list[i], list[j] = list[j], list[i] end
            local q = raw_query(list)
            local fast, slow = both("trustpay_notification", function(s) return tp:notification(s) end, q)
            assert.same(slow, fast, "seed " .. seed .. " " .. q)
        end
    end)
end)
