local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local cjson = require "cjson"

local LUA54 = math.type ~= nil -- Lua 5.4 has integer and float subtypes; LuaJIT only doubles
local TWO53 = LUA54 and math.tointeger(2 ^ 53) or 2 ^ 53

local CLEARINGHOUSES = {}
for i, row in ipairs(ecommpay.CLEARINGHOUSES) do CLEARINGHOUSES[i] = row.name end

local assert_raises = require("support.util").assert_raises

-- {path, code} pairs of a validation result, for compact comparisons.
local function pairs_of(violations)
    local out = {}
    for i, v in ipairs(violations or {}) do out[i] = { v.path, v.code } end
    return out
end

-- core.check as one value: true, or the violation code.
local function verdict(kind, value, opts)
    local ok, _, code = core.check(kind, value, opts)
    return ok or code
end

local function accepts(kind, values, opts)
    for _, v in ipairs(values) do
        local ok, msg = core.check(kind, v, opts)
        if ok ~= true then error(("%s should accept %q: %s"):format(kind, tostring(v), tostring(msg)), 2) end
    end
end

local function refuses(kind, code, values, opts)
    for _, v in ipairs(values) do
        local got = verdict(kind, v, opts)
        if got ~= code then error(("%s should refuse %q with %s, got %s"):format(kind, tostring(v), code, tostring(got)), 2) end
    end
end

-- An ecommpay Trustly payout request and its schema (Gate, /payout).
local function payout_schema()
    return core.schema{
        type = "object", additional = false,
        fields = {
            general = { type = "object", required = true, fields = {
                project_id = { type = "integer", required = true, min = 1 },
                payment_id = { type = "string", required = true, max_len = 255 },
                merchant_callback_url = { type = "url", max_len = 2048 },
            } },
            payment = { type = "object", required = true, fields = {
                amount = { type = "amount", required = true, min = 100 },
                currency = { type = "currency", required = true, enum = { "EUR", "SEK" } },
            } },
            customer = { type = "object", required = true, fields = {
                id = { type = "string", required = true },
                ip_address = { type = "ip", required = true },
                email = { type = "email" },
                country = { type = "country" },
                language = { type = "language" },
                password = { type = "string", secret = true, max_len = 64 },
            } },
            account = { type = "object", required = true, fields = {
                clearinghouse = { type = "enum", required = true, values = CLEARINGHOUSES },
                number = { type = "string", required = true, pattern_by = ecommpay.ACCOUNT_FORMATS.number },
                bank_code = { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.bank_code },
            } },
            items = { type = "array", min_items = 1, max_items = 10, items = { type = "string", max_len = 35 } },
            recurring = { type = "object", fields = {
                type = { type = "enum", values = { "C", "R", "U" } },
                period = { type = "enum", values = { "D", "W", "M", "Q", "Y" },
                           required_if = { field = "type", equals = "R" } },
            } },
        },
    }
end

local function payout()
    return {
        general = { project_id = 1625, payment_id = "payout-4711", merchant_callback_url = "https://shop.example.se/cb" },
        payment = { amount = 5000, currency = "SEK" },
        customer = { id = "customer-125", ip_address = "198.51.100.23", email = "anna@example.se", country = "SE",
                     language = "sv" },
        account = { clearinghouse = "SWEDEN", bank_code = "5000", number = "1234567890" },
        items = { "payout for order 4711" },
    }
end

describe("a merchant validating a Trustly payout before any money moves", function()
    local S = payout_schema()

    it("passes a correct request", function()
        assert.is_true(core.validate(S, payout()))
        assert.is_true(S:validate(payout()))
    end)

    it("learns about every bad field at once, each named by its path", function()
        local r = payout()
        r.general.project_id = "1625"
        r.payment.amount = 99
        r.payment.currency = "USD"
        r.customer.email = "anna@example"
        r.customer.ip_address = nil
        r.account.number = "SE12"
        r.account.bank_code = "50"
        r.items[2] = ("x"):rep(36)
        r.recurring = { type = "R" }
        r.merchant_note = "hi"
        local ok, violations = core.validate(S, r)
        assert.is_nil(ok)
        assert.same({
            { "account.bank_code", "pattern" },
            { "account.number", "pattern" },
            { "customer.email", "format" },
            { "customer.ip_address", "required" },
            { "general.project_id", "type" },
            { "items[2]", "max_len" },
            { "merchant_note", "unknown" },
            { "payment.amount", "range" },
            { "payment.currency", "enum" },
            { "recurring.period", "required" },
        }, pairs_of(violations))
        local messages = {}
        for _, v in ipairs(violations) do messages[v.path] = v.message end
        assert.equal("account.number: does not match the SWEDEN account number format", messages["account.number"])
        assert.equal("account.bank_code: does not match the SWEDEN bank code format", messages["account.bank_code"])
        assert.equal("customer.email: is not a valid e-mail address", messages["customer.email"])
        assert.equal("customer.ip_address: is required", messages["customer.ip_address"])
        assert.equal("general.project_id: must be an integer, got string", messages["general.project_id"])
        assert.equal("items[2]: must be at most 35 characters", messages["items[2]"])
        assert.equal("merchant_note: is not an allowed field", messages["merchant_note"])
        assert.equal("payment.amount: must be at least 100", messages["payment.amount"])
        assert.equal("payment.currency: must be one of EUR, SEK", messages["payment.currency"])
        assert.equal("recurring.period: is required", messages["recurring.period"])
    end)

    it("gets the same list, in the same order, every time", function()
        local r = payout()
        r.account = { clearinghouse = "MARS", number = 1 }
        r.customer = "nobody"
        r.items = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }
        local _, first = core.validate(S, r)
        for _ = 1, 20 do
            local _, again = core.validate(S, r)
            assert.same(first, again)
        end
        assert.equal("account.clearinghouse: is not one of the 29 allowed values", first[1].message)
        assert.same({ "account.clearinghouse", "enum" }, pairs_of(first)[1])
        assert.same({ "account.number", "type" }, pairs_of(first)[2])
        assert.same({ "customer", "type" }, pairs_of(first)[3])
        assert.same({ "items", "items" }, pairs_of(first)[4])
        assert.same({ "items[1]", "type" }, pairs_of(first)[5])
        assert.same({ "items[11]", "type" }, pairs_of(first)[15])
    end)

    it("treats JSON null like an absent field", function()
        local r = payout()
        r.customer.email = cjson.null
        assert.is_true(core.validate(S, r))
        r.customer.id = cjson.null
        local _, v = core.validate(S, r)
        assert.same({ { "customer.id", "required" } }, pairs_of(v))
    end)

    it("validates a request decoded from JSON (integers arrive as floats in Lua 5.4)", function()
        local r = cjson.decode(cjson.encode(payout()))
        r.payment.amount = 5000 -- amounts come from the merchant's code as integers
        assert.is_true(core.validate(S, r))
    end)
end)

describe("ordering of violations", function()
    it("sorts by path (array indexes as numbers, a path before its extensions), then by code", function()
        local S = core.schema{ type = "object", additional = false, fields = {
            account = { type = "object", fields = { number = { type = "string" } } },
            account_id = { type = "string" },
            ["a-b"] = { type = "string" },
            a = { type = "object", fields = { c = { type = "string" } } },
            list = { type = "array", max_items = 1, items = { type = "string", max_len = 1, forbid = "<", pattern = "^[a-z]*$" } },
        } }
        local list = {}
        for i = 1, 12 do list[i] = "ok" end
        list[2], list[10] = "<AB", "<AB"
        local _, v = core.validate(S, {
            account = { number = 1 }, account_id = 2, ["a-b"] = 3, a = { c = 4 }, list = list, z = 0, [7] = 0,
        })
        local got = pairs_of(v)
        local expected = {
            { "[7]", "unknown" },
            { "a-b", "type" },
            { "a.c", "type" },
            { "account.number", "type" },
            { "account_id", "type" },
            { "list", "items" },
        }
        for i = 1, 12 do
            if i == 2 or i == 10 then
                expected[#expected + 1] = { "list[" .. i .. "]", "forbidden" }
                expected[#expected + 1] = { "list[" .. i .. "]", "max_len" }
                expected[#expected + 1] = { "list[" .. i .. "]", "pattern" }
            else
                expected[#expected + 1] = { "list[" .. i .. "]", "max_len" }
            end
        end
        expected[#expected + 1] = { "z", "unknown" }
        assert.same(expected, got)
    end)
end)

describe("strings", function()
    it("count the maximum length in characters, not bytes", function()
        local opts = { max_len = 35 }
        for _, ch in ipairs { "a", "ö", "€", "中", "😀" } do
            assert.is_true(core.check("string", ch:rep(35), opts))
            local ok, msg, code = core.check("string", ch:rep(36), opts)
            assert.is_nil(ok)
            assert.equal("value: must be at most 35 characters", msg)
            assert.equal("max_len", code)
        end
        assert.is_true(core.check("string", ("ö"):rep(17) .. "€", { max_len = 18 }))
        assert.equal("max_len", verdict("string", ("ö"):rep(18) .. "€", { max_len = 18 }))
    end)

    it("count the minimum length in characters too", function()
        assert.is_true(core.check("string", "åä", { min_len = 2 }))
        assert.equal("min_len", verdict("string", "å", { min_len = 2 }))
        assert.equal("min_len", verdict("string", "", { min_len = 1 }))
        assert.equal("value: must be at least 1 character", select(2, core.check("string", "", { min_len = 1 })))
    end)

    it("reject invalid UTF-8 instead of counting it", function()
        refuses("string", "utf8", {
            "\195", "abc\195", "\192\175", "\224\128\175", "\237\160\128", "\244\144\128\128", "\255", "\128",
            "\240\159\152", "a\237\191\191b",
        })
        accepts("string", { "\239\191\189", "\244\143\191\191", "\0", "tab\tnew\nline" })
        assert.equal("value: is not valid UTF-8", select(2, core.check("string", "\255")))
    end)

    it("never give a number where a string is asked", function()
        assert.equal("type", verdict("string", 42))
        assert.equal("value: must be a string, got number", select(2, core.check("string", 42)))
        assert.equal("type", verdict("email", true))
    end)

    it("match POSIX extended regular expressions, searched unless anchored", function()
        accepts("string", { "abc-123", "x" }, { pattern = "^[a-z0-9-]+$" })
        refuses("string", "pattern", { "ABC", "", "abc 123" }, { pattern = "^[a-z0-9-]+$" })
        accepts("string", { "ref 42 here", "42" }, { pattern = "[0-9]{2}" })
        accepts("string", { "SE123", "NO9" }, { pattern = "^(SE|NO)[[:digit:]]+$" })
        refuses("string", "pattern", { "DK1", "SE" }, { pattern = "^(SE|NO)[[:digit:]]+$" })
        assert.equal("value: does not match the pattern ^[0-9]+$", select(2, core.check("string", "x", { pattern = "^[0-9]+$" })))
    end)

    it("fail a pattern when the string holds a NUL byte, rather than checking the part before it", function()
        refuses("string", "pattern", { "123\0", "123\0abc" }, { pattern = "^[0-9]+" })
        refuses("string", "pattern", { "123\0" }, { pattern = "^([0-9]+)$" })
        refuses("string", "pattern", { "12\0" }, { pattern = "^[0-9]{2,3}$" })
    end)

    it("match bytes in the C locale, whatever locale the host process has set", function()
        -- in a UTF-8 locale regexec would take "é" as one character for '.', and
        -- in en_US.UTF-8 glibc's [0-9] would also take Arabic-Indic digits
        local saved = os.setlocale(nil, "all")
        local utf8_locale = os.setlocale("C.UTF-8", "all") or os.setlocale("C.utf8", "all")
            or os.setlocale("en_US.UTF-8", "all")
        if not utf8_locale then
            pending("no UTF-8 locale installed")
            return
        end
        local ok, err = pcall(function()
            local one = core.schema{ type = "string", pattern = "^(.)$" } -- '.' and groups: regexec
            assert.is_true(one:validate("e"))
            assert.same({ { "", "pattern" } }, pairs_of(select(2, one:validate("é"))))
            assert.is_true(core.check("string", "é", { pattern = "^.{2}$" }))
            refuses("string", "pattern", { "\217\161\217\162", "\195\133B12" }, { pattern = "^([0-9A-Z])+$" })
        end)
        os.setlocale(saved, "all")
        assert(ok, err)
    end)

    it("refuse forbidden characters (a TrustPay Reference may not contain < or >)", function()
        local reference = { max_len = 35, forbid = "<>" }
        accepts("string", { "order-4711", "Å/ö 12" }, reference)
        refuses("string", "forbidden", { "<script>", "a>b", "x<" }, reference)
        assert.equal("value: must not contain any of <>", select(2, core.check("string", "<", reference)))
        refuses("string", "forbidden", { "100€", "😀" }, { forbid = "€😀" })
        accepts("string", { "100 EUR", "ö" }, { forbid = "€😀" })
    end)

    it("check an enum given on a string", function()
        accepts("string", { "EUR" }, { enum = { "EUR", "SEK" } })
        assert.equal("value: must be one of EUR, SEK", select(2, core.check("string", "NOK", { enum = { "EUR", "SEK" } })))
    end)

    it("report each failed check of one field, and stop at a wrong type", function()
        local _, v = core.validate(core.schema{ type = "object", fields = {
            ref = { type = "string", max_len = 3, forbid = "<", pattern = "^[a-z]+$" },
        } }, { ref = "<abcd" })
        assert.same({ { "ref", "forbidden" }, { "ref", "max_len" }, { "ref", "pattern" } }, pairs_of(v))
        _, v = core.validate(core.schema{ type = "object", fields = {
            ref = { type = "string", max_len = 3, pattern = "^[a-z]+$" },
        } }, { ref = {} })
        assert.same({ { "ref", "type" } }, pairs_of(v))
    end)
end)

describe("the fast path for anchored patterns", function()
    -- "^(" .. body .. ")$" means the same as "^" .. body .. "$" but has a
    -- group, so it goes through regexec: both must always agree.
    local function atoms(body)
        local list, i = {}, 1
        while i <= #body do
            local set = {}
            if body:sub(i, i) == "[" then
                local j = body:find("]", i + 1, true)
                local class = body:sub(i + 1, j - 1)
                for a, b in class:gmatch("(.)%-(.)") do
                    for c = a:byte(), b:byte() do set[#set + 1] = string.char(c) end
                end
                for c in class:gsub(".%-.", ""):gmatch(".") do set[#set + 1] = c end
                i = j + 1
            else
                set[1] = body:sub(i, i)
                i = i + 1
            end
            local m, n = 1, 1
            local rep = body:match("^{[%d,]+}", i)
            if rep then
                m = tonumber(rep:match("%d+"))
                n = rep:find(",") and tonumber(rep:match(",(%d+)")) or m
                i = i + #rep
            end
            list[#list + 1] = { set = set, min = m, max = n }
        end
        return list
    end

    local function sample(list)
        local out = {}
        for _, a in ipairs(list) do
            for _ = 1, math.random(a.min, a.max) do out[#out + 1] = a.set[math.random(#a.set)] end
        end
        return table.concat(out)
    end

    local noise = { "0", "5", "9", "A", "Z", "a", " ", "-", "\0", "é" }
    local function mutate(s)
        local i = math.random(#s + 1)
        local kind = math.random(3)
        local c = noise[math.random(#noise)]
        if kind == 1 then return s:sub(1, i - 1) .. c .. s:sub(i) end
        if kind == 2 then return s:sub(1, i - 1) .. s:sub(i + 1) end
        return s:sub(1, i - 1) .. c .. s:sub(i + 1)
    end

    local patterns = {}
    for _, row in ipairs(ecommpay.CLEARINGHOUSES) do
        patterns[#patterns + 1] = row.number
        if row.bank_code then patterns[#patterns + 1] = row.bank_code end
    end
    for _, p in ipairs { "^[A-Za-z0-9_-]+$", "^[0-9]{2,4}[0-9]{2}$", "^a?b*[ab]{1,3}$", "^[A-Z]{0,2}[0-9]+$" } do
        patterns[#patterns + 1] = p
    end

    it("agrees with regexec on matching, mutated and random strings for every Figure 32 pattern", function()
        math.randomseed(32)
        local compared = 0
        for _, p in ipairs(patterns) do
            local fast = core.schema{ type = "string", pattern = p }
            local slow = core.schema{ type = "string", pattern = "^(" .. p:sub(2, -2) .. ")$" }
            local list = atoms(p:sub(2, -2):gsub("[%*%+]", "{0,3}"):gsub("%?", "{0,1}"))
            local inputs = { "", "\0" }
            for _ = 1, 200 do
                local s = sample(list)
                inputs[#inputs + 1] = s
                inputs[#inputs + 1] = mutate(s)
                inputs[#inputs + 1] = mutate(mutate(s))
            end
            local matched = 0
            for _, s in ipairs(inputs) do
                local a, b = fast:validate(s) == true, slow:validate(s) == true
                if a ~= b then error(("pattern %s disagrees on %q: fast %s, regexec %s"):format(p, s, a, b)) end
                if a then matched = matched + 1 end
                compared = compared + 1
            end
            assert.is_true(matched >= 200, p .. " matched only " .. matched)
        end
        assert.is_true(compared > 20000)
    end)

    -- "(" .. p .. ")" means the same as p in an ERE (anchors may sit in a
    -- group) and never takes the fast path, which wants a leading '^'. The
    -- pieces include every shape the fast path must leave to regexec or
    -- parse exactly: alternation, groups, escapes, '.', classes, negated and
    -- odd brackets ("[]a]", "[a-]", "[a-c-e]"), stacked or odd repeats.
    it("agrees with regexec on random patterns built from tricky pieces, falling back where it must", function()
        math.randomseed(97)
        local pieces = { "a", "b", "Z", "0", "9", "-", "_", ":", " ", "~", ".", "\\.", "\\$", "\\[", "\\{", "\\\\",
            "\\^", "[a-c]", "[]a]", "[a-]", "[-a]", "[^a]", "[a-c-e]", "[]-a]", "[!--]", "[[:digit:]]", "[[.a.]]", "[$]",
            "[\\]", "[.]", "[*+?]", "[{}]", "[ -~]", "[A-Za-z0-9_-]", "(a|b)", "(ab)", "((a)b)", "a|b", "|", "^", "$", "é",
            "[é]", "{", "}" }
        local repeats = { "", "", "", "?", "*", "+", "{2}", "{0,2}", "{1,}", "{,2}", "{2}{3}", "*?", "{0}", "{1,300}" }
        local chars = { "a", "b", "c", "Z", "0", "9", "-", "_", ":", " ", "~", ".", "$", "[", "]", "{", "}", "\\", "^",
            "é", "!", "*", "e" }
        local built, compared = 0, 0
        for _ = 1, 700 do
            local p = { math.random(8) > 1 and "^" or "" }
            for _ = 1, math.random(5) do p[#p + 1] = pieces[math.random(#pieces)] .. repeats[math.random(#repeats)] end
            if math.random(8) > 1 then p[#p + 1] = "$" end
            p = table.concat(p)
            local ok, direct = pcall(core.schema, { type = "string", pattern = p })
            local ok2, grouped = pcall(core.schema, { type = "string", pattern = "(" .. p .. ")" })
            if ok and ok2 then
                built = built + 1
                for _ = 1, 20 do
                    local s = {}
                    for i = 1, math.random(0, math.random(12) == 1 and 300 or 8) do s[i] = chars[math.random(#chars)] end
                    s = table.concat(s)
                    local a, b = direct:validate(s) == true, grouped:validate(s) == true
                    if a ~= b then error(("pattern %q disagrees on %q: direct %s, regexec %s"):format(p, s, a, b)) end
                    compared = compared + 1
                end
            end
        end
        assert.is_true(built > 350, "patterns: " .. built)
        assert.is_true(compared > 7000)
    end)
end)

describe("integers and amounts", function()
    it("take integers with ranges", function()
        accepts("integer", { 1, 200, TWO53 }, { min = 1 })
        refuses("integer", "range", { 0, -5 }, { min = 1 })
        refuses("integer", "range", { 11 }, { min = 1, max = 10 })
        accepts("integer", { 100.0 }) -- JSON decoders give 100.0 in Lua 5.4
        refuses("integer", "type", { 1.5, 0 / 0, math.huge, "1", true })
        assert.equal("value: must be at least 1", select(2, core.check("integer", 0, { min = 1 })))
    end)

    it("take amounts in minor units as Lua integers only", function()
        accepts("amount", { 0, 100, 10300, TWO53 })
        refuses("amount", "type", { 1.5, 0 / 0, math.huge, -math.huge, "100", {} })
        assert.equal("value: must be an integer amount in minor units, got a float",
            select(2, core.check("amount", 1.5)))
        assert.equal("value: must be an integer amount in minor units, got NaN or infinity",
            select(2, core.check("amount", 0 / 0)))
        if LUA54 then
            assert.equal("type", verdict("amount", 100.0))
            assert.equal("range", verdict("amount", TWO53 + 1))
            assert.equal("range", verdict("amount", math.mininteger))
        else
            assert.is_true(core.check("amount", 100.0)) -- the same value as 100 in LuaJIT
            assert.equal("range", verdict("amount", 2 ^ 53 + 2)) -- 2^53 + 1 is not a double
        end
        -- far beyond 2^53: out of range, as an integer and as a float, in both VMs alike
        assert.equal("range", verdict("amount", LUA54 and math.tointeger(2 ^ 60) or 2 ^ 60))
        assert.equal("range", verdict("amount", 2 ^ 60))
    end)

    it("refuse negative amounts unless allowed, and check min and max", function()
        assert.equal("value: must not be negative", select(2, core.check("amount", -1)))
        accepts("amount", { -1, -TWO53 }, { allow_negative = true })
        refuses("amount", "range", { 99 }, { min = 100 })
        refuses("amount", "range", { 100001 }, { max = 100000 })
    end)

    it("take any finite number for 'number'", function()
        accepts("number", { 0, 1.5, -2, 1e300 })
        refuses("number", "type", { 0 / 0, math.huge, "1" })
        refuses("number", "range", { 0.5 }, { min = 1 })
    end)
end)

describe("decimal strings", function()
    local numeric_13_2 = { decimals = 2, max_digits = 13, positive = true } -- TrustPay Numeric(13,2)

    it("take exactly N decimals (Trustly's \"103.00\")", function()
        accepts("decimal", { "103.00", "0.01", "99999999999.99" }, numeric_13_2)
        refuses("decimal", "decimals", { "103.0", "103", "103.000" }, numeric_13_2)
        assert.equal("value: must have exactly 2 decimals", select(2, core.check("decimal", "1.5", numeric_13_2)))
        accepts("decimal", { "150", "0" }, { decimals = 0 })
        refuses("decimal", "decimals", { "150.0" }, { decimals = 0 })
        accepts("decimal", { "0.150" }, { decimals = 3 })
    end)

    it("refuse signs, exponents, spaces, leading zeros and other shapes", function()
        refuses("decimal", "format", { "+1.00", "1e2", "1.00e0", " 1.00", "1.00 ", "1,00", "01.00", ".50", "1.",
            "", "abc", "1.0O", "1.00\0" })
        refuses("decimal", "type", { 1.5, 100 })
    end)

    it("check the total digits, the sign and the bounds exactly", function()
        refuses("decimal", "range", { "100000000000.00" }, numeric_13_2)
        refuses("decimal", "range", { "0.00", "-1.00" }, numeric_13_2)
        assert.equal("value: must be greater than zero", select(2, core.check("decimal", "0.00", numeric_13_2)))
        accepts("decimal", { "-1.00", "0.00" }, { allow_negative = true })
        local bounded = { min = "1.00", max = "1000.00" }
        accepts("decimal", { "1.00", "999.99", "1000.00" }, bounded)
        refuses("decimal", "range", { "0.99", "1000.01", "10000.00" }, bounded)
        accepts("decimal", { "-5.00", "-0.01" }, { allow_negative = true, min = "-5.00", max = "-0.01" })
        refuses("decimal", "range", { "-5.01", "0.00" }, { allow_negative = true, min = "-5.00", max = "-0.01" })
    end)
end)

describe("codes: currency, country, language, locale", function()
    it("check the ISO tables and an optional enum", function()
        accepts("currency", { "EUR", "SEK", "JPY", "KWD", "ZWG" })
        refuses("currency", "format", { "eur", "EURO", "XYZ", "ZWL", "" })
        assert.equal("value: is not an active ISO 4217 currency code", select(2, core.check("currency", "XYZ")))
        refuses("currency", "enum", { "JPY" }, { enum = { "EUR", "SEK" } })
        accepts("country", { "SE", "GB", "AX" })
        refuses("country", "enum", { "NO" }, { enum = { "SE", "FI" } })
        accepts("language", { "sv", "en", "fi" })
        refuses("language", "format", { "SV", "swe", "bh" })
    end)

    it("take Trustly's locale ll_CC", function()
        accepts("locale", { "sv_SE", "en_GB", "de_AT", "fi_FI", "nb_NO" })
        refuses("locale", "format", { "sv-SE", "SV_se", "sv_se", "xx_SE", "sv_XX", "sv_SE_x", "svSE", "sv_", "" })
        refuses("locale", "enum", { "de_DE" }, { enum = { "sv_SE", "en_GB" } })
    end)
end)

describe("IBAN and BIC", function()
    it("take IBANs of several countries and catch a wrong check digit in each", function()
        local good = {
            "DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
            "SE4550000000058398257466", "NO9386011117947", "NL91ABNA0417164300", "MT84MALT011000012345MTLCAST001S",
            "LC55HEMM000100010012001200023015", "AT611904300234573201", "CH9300762011623852957",
        }
        accepts("iban", good)
        for _, iban in ipairs(good) do
            local digit = tonumber(iban:sub(4, 4))
            local wrong = iban:sub(1, 3) .. ((digit + 1) % 10) .. iban:sub(5)
            assert.equal("checksum", verdict("iban", wrong), wrong)
        end
        assert.equal("value: has wrong IBAN check digits", select(2, core.check("iban", "DE88370400440532013000")))
    end)

    it("want the electronic format of a registry country at its length", function()
        refuses("iban", "format", {
            "DE89 3704 0044 0532 0130 00", "de89370400440532013000", "DE8937040044053201300", "DE893704004405320130000",
            "US64SVBKUS6S3300958879", "DEXX370400440532013000", "DE89370400440532013000\0", "", "DE",
        })
        assert.equal("value: is not an IBAN (registry country and length, upper case, no spaces)",
            select(2, core.check("iban", "de89370400440532013000")))
    end)

    it("take BICs of 8 or 11 characters with a real country", function()
        accepts("bic", { "DEUTDEFF", "DEUTDEFF500", "NDEASESS", "BKAUATWW", "RZBAXKPR" })
        refuses("bic", "format", { "deutdeff", "DEUTDEF", "DEUTDEFF5", "DEUTDEFF5000", "DEU1DEFF", "DEUTXXFF",
            "DEUT DEFF", "" })
    end)
end)

describe("e-mail, URL, dates, IP addresses", function()
    it("takes pragmatic e-mail addresses", function()
        accepts("email", { "anna@example.se", "anna.svensson+payout@mail.example.co.uk", "åsa@exempel.se",
            ("a"):rep(64) .. "@" .. ("b"):rep(186) .. ".se" }) -- 254 characters
        refuses("email", "format", { "anna@example", "anna@@example.se", "anna@exa@mple.se", "@example.se",
            "anna@.example.se", "anna@example.se.", "anna@example..se", "anna @example.se", "anna@example.se\n",
            "anna\0@example.se", "anna\195@example.se", "anna.example.se", "" })
        refuses("email", "max_len", { ("a"):rep(64) .. "@" .. ("b"):rep(187) .. ".se" })
        refuses("email", "max_len", { "anna@example.se" }, { max_len = 10 })
        -- white space and control characters beyond ASCII too: NBSP, NEL, U+1680, U+2000, U+200A, U+2028,
        -- U+2029, U+202F, U+205F, U+3000
        refuses("email", "format", { "anna\194\160@example.se", "anna@example.se\194\133", "anna\225\154\128@example.se",
            "anna\226\128\128@example.se", "anna\226\128\138@example.se", "anna@example.se\226\128\168",
            "anna@example.se\226\128\169", "anna\226\128\175@example.se", "anna\226\129\159@example.se",
            "anna\227\128\128@example.se" })
        accepts("email", { "anna\194\161@example.se", "anna@ex\226\128\139ample.se", "anna@\227\128\129.se",
            "\226\130\172@example.se" })
    end)

    it("takes absolute http(s) URLs only, within a maximum length", function()
        accepts("url", { "https://merchant.example.com/callbacks/ecommpay?order=1#x", "http://localhost:8080/cb",
            "https://[2001:db8::1]:8443/cb", "https://192.0.2.1/cb", "HTTPS://EXAMPLE.COM", "https://example.com",
            "https://example.com./x", "https://a-b.example.com/%7Euser", "https://example.com/?q=a+b&x=%C3%A5" })
        refuses("url", "format", { "ftp://example.com", "//example.com", "https:/example.com", "https://",
            "https://exa mple.com", "https://example.com/a b", "https://user:pass@example.com/",
            "https://example.com:0/", "https://example.com:65536/", "https://example.com:/", "https://-example.com/",
            "https://example-.com/", "https://exa_mple.com/", "https://example.com/%zz", "https://example.com/ä",
            "https://[::1/", "javascript:alert(1)", "https://example.com/<script>", "https://example.com\0/x", "" })
        local url30 = "https://example.com/" .. ("x"):rep(10)
        assert.equal(30, #url30)
        accepts("url", { url30 }, { max_len = 30 })
        refuses("url", "max_len", { url30 .. "x" }, { max_len = 30 })
    end)

    it("takes real calendar dates, with 29 February only in leap years", function()
        accepts("date", { "2024-02-29", "2000-02-29", "2023-02-28", "2024-12-31", "0001-01-01", "9999-12-31" })
        refuses("date", "format", { "2023-02-29", "1900-02-29", "2100-02-29", "2024-02-30", "2024-04-31",
            "2024-13-01", "2024-00-10", "2024-01-00", "0000-01-01", "2024-2-29", "2024/02/29", "24-02-29",
            "2024-02-29T00:00:00", " 2024-02-29", "2024-02-29\0" })
    end)

    it("takes ISO 8601 date-times", function()
        accepts("datetime", { "2024-02-29T23:59:59Z", "2024-02-29T23:59:59.123Z", "2024-02-29T23:59:59+02:00",
            "2024-02-29T23:59:59.123456789-05:30", "2024-02-29T00:00:00", "2016-12-31T23:59:60Z" })
        refuses("datetime", "format", { "2023-02-29T10:00:00Z", "2024-02-29 10:00:00Z", "2024-02-29T24:00:00Z",
            "2024-02-29T10:60:00Z", "2024-02-29T10:00Z", "2024-02-29T10:00:00+0200", "2024-02-29T10:00:00+02",
            "2024-02-29T10:00:00.Z", "2024-02-29T10:00:00.1234567890Z", "2024-02-29t10:00:00z",
            "2024-02-29T10:00:00+24:00", "2024-02-29" })
    end)

    it("takes IPv4 and IPv6 addresses", function()
        local v4 = { "198.51.100.23", "0.0.0.0", "255.255.255.255" }
        local v6 = { "2001:db8::1", "::", "::1", "::ffff:198.51.100.23", "2001:0db8:0000:0000:0000:ff00:0042:8329", "fe80::1" }
        accepts("ipv4", v4)
        accepts("ipv6", v6)
        accepts("ip", v4)
        accepts("ip", v6)
        refuses("ipv4", "format", v6)
        refuses("ipv6", "format", v4)
        refuses("ip", "format", { "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4",
            "1.2.3.4/24", "", "2001:db8::1::2", "2001:db8:::1", "12345::1", "fe80::1%eth0", "[::1]", "2001:db8::g",
            ":::", "1.2.3.4\0" })
    end)
end)

describe("objects and arrays", function()
    it("allow unknown fields unless the schema forbids them", function()
        local fields = { a = { type = "string" } }
        assert.is_true(core.validate(core.schema{ type = "object", fields = fields }, { a = "x", b = 1 }))
        local _, v = core.validate(core.schema{ type = "object", additional = false, fields = fields },
            { a = "x", b = 1, [3] = true })
        assert.same({ { "[3]", "unknown" }, { "b", "unknown" } }, pairs_of(v))
        local nested = core.schema{ type = "object", fields = { general = { type = "object", additional = false, fields = fields } } }
        _, v = core.validate(nested, { general = { a = "x", [1] = "y", extra = cjson.null } })
        assert.same({ { "general.extra", "unknown" }, { "general[1]", "unknown" } }, pairs_of(v))
        _, v = core.validate(nested, { general = { [1.5] = 1, [true] = 2 } })
        assert.same({ { "general.(boolean key)", "unknown" }, { "general.(number key)", "unknown" } }, pairs_of(v))
    end)

    it("want tables, and report the root as 'value'", function()
        local S = core.schema{ type = "object", fields = {} }
        local ok, v = core.validate(S, "text")
        assert.is_nil(ok)
        assert.same({ path = "", code = "type", message = "value: must be an object (a table), got string" }, v[1])
        v = select(2, core.validate(S, nil))
        assert.same({ { "", "required" } }, pairs_of(v))
        assert.same({ { "", "required" } }, pairs_of(select(2, core.validate(S))))
        assert.same({ { "", "required" } }, pairs_of(select(2, S:validate())))
    end)

    it("check arrays: a sequence, its length and each element", function()
        local S = core.schema{ type = "array", min_items = 1, max_items = 3, items = { type = "string", max_len = 2 } }
        assert.is_true(core.validate(S, { "a", "bb" }))
        local _, v = core.validate(S, {})
        assert.equal("value: must have at least 1 item", v[1].message)
        _, v = core.validate(S, { "a", "b", "c", "d" })
        assert.same({ { "", "items" } }, pairs_of(v))
        _, v = core.validate(S, { "a", "bbb", 3 })
        assert.same({ { "[2]", "max_len" }, { "[3]", "type" } }, pairs_of(v))
        _, v = core.validate(S, { a = "x" })
        assert.same({ { "", "type" } }, pairs_of(v))
        _, v = core.validate(S, { "a", nil, "c" })
        assert.same({ { "", "type" } }, pairs_of(v))
    end)
end)

describe("conditional rules", function()
    local recurring = core.schema{ type = "object", fields = {
        type = { type = "enum", values = { "C", "R", "U" } },
        period = { type = "enum", values = { "D", "W", "M", "Q", "Y" }, required_if = { field = "type", equals = "R" } },
        interval = { type = "integer", required_if = { field = "type", ["in"] = { "R", "U" } } },
    } }

    it("require a field depending on a sibling's value", function()
        assert.is_true(core.validate(recurring, { type = "C" }))
        assert.is_true(core.validate(recurring, { type = "R", period = "M", interval = 1 }))
        local _, v = core.validate(recurring, { type = "R" })
        assert.same({ { "interval", "required" }, { "period", "required" } }, pairs_of(v))
        _, v = core.validate(recurring, { type = "U" })
        assert.same({ { "interval", "required" } }, pairs_of(v))
    end)

    it("match numbers and booleans in required_if", function()
        local S = core.schema{ type = "object", fields = {
            kind = { type = "any" },
            extra = { type = "string", required_if = { field = "kind", ["in"] = { 2, true } } },
        } }
        assert.is_true(core.validate(S, { kind = 1 }))
        assert.is_true(core.validate(S, { kind = "2" }))
        assert.is_nil((core.validate(S, { kind = 2 })))
        assert.is_nil((core.validate(S, { kind = true })))
        assert.is_true(core.validate(S, { kind = false }))
    end)

    it("choose a pattern by a sibling's value", function()
        local S = core.schema{ type = "object", fields = {
            country = { type = "country" },
            postcode = { type = "string", pattern_by = { field = "country", patterns = {
                SE = "^[0-9]{3} ?[0-9]{2}$", GB = "^[A-Z0-9 ]{5,8}$" } } },
        } }
        assert.is_true(core.validate(S, { country = "SE", postcode = "123 45" }))
        assert.is_true(core.validate(S, { country = "FI", postcode = "anything" }))
        local _, v = core.validate(S, { country = "SE", postcode = "ABC" })
        assert.same({ path = "postcode", code = "pattern", message = "postcode: does not match the pattern for country SE" }, v[1])
    end)
end)

describe("the clearinghouse rule (Figure 32)", function()
    local S = core.schema{ type = "object", fields = {
        account = { type = "object", fields = {
            clearinghouse = { type = "enum", required = true, values = CLEARINGHOUSES },
            number = { type = "string", required = true, pattern_by = ecommpay.ACCOUNT_FORMATS.number },
            bank_code = { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.bank_code },
        } },
    } }

    -- For each printed row: a valid and an invalid account number, and the
    -- bank code (the row's own format, or a BIC where the row has none).
    local rows = {
        AUSTRIA = { "AT611904300234573201", "AT61190430023457320", "BKAUATWW" },
        BELGIUM = { "BE68539007547034", "BE6853900754703X", "GEBABEBB" },
        BULGARIA = { "BG80BNBG96611020345678", "BG80bnbg96611020345678", "BNBGBGSD" },
        CROATIA = { "HR1210010051863000160", "HR121001005186300016", "ZABAHR2X" },
        CYPRUS = { "CY17002001280000001200527600", "CY1700200128000000120052760", "BCYPCY2N" },
        CZECH_REPUBLIC = { "0000192000145399", "192000145399", "0800", "08000" },
        DENMARK = { "0440116243", "044", "0040", "40" },
        ESTONIA = { "221020145685", "1234567890123456", "22", "2" },
        FINLAND = { "FI2112345600000785", "FI21123456000007851", "NDEAFIHH" },
        FRANCE = { "FR1420041010050500013M02606", "FR1420041010050500013M0260A", "BNPAFRPP" },
        GERMANY = { "DE89370400440532013000", "DE8937040044053201300", "DEUTDEFF" },
        GREECE = { "GR1601101250000000012300695", "GR160110125000000001230069", "ETHNGRAA" },
        HUNGARY = { "117730161111101800000000", "1177301611111018", "11773016", "1177301" },
        IRELAND = { "IE29AIBK93115212345678", "IE29AIB193115212345678", "AIBKIE2D" },
        ITALY = { "IT60X0542811101000000123456", "IT6010542811101000000123456", "BCITITMM" },
        LATVIA = { "LV80BANK0000435195001", "LV80BANK000043519500", "HABALV22" },
        LITHUANIA = { "LT121000011101001000", "LT12100001110100100", "HABALT22" },
        LUXEMBOURG = { "LU280019400644750000", "LU28001940064475000X", "BCEELULL" },
        MALTA = { "MT84MALT011000012345MTLCAST001S", "MT84MALT01100012345MTLCAST001S", "MALTMTMT" },
        NETHERLANDS = { "NL91ABNA0417164300", "NL91ABNA041716430", "ABNANL2A" },
        NORWAY = { "1117947", "86011117947", "8601", "860" },
        POLAND = { "PL61109010140000071219812874", "PL6110901014000007121981287", "BPKOPLPW" },
        PORTUGAL = { "1234567890154", "123456789015", "00020123", "0002012" },
        ROMANIA = { "RO49AAAA1B31007593840000", "RO49AAAA1B3100759384000", "RNCBROBU" },
        SLOVAKIA = { "SK3112000000198742637541", "SK311200000019874263754", "TATRSKBX" },
        SLOVENIA = { "SI56263300012039086", "SI57263300012039086", "LJBASI2X" },
        SPAIN = { "ES9121000418450200051332", "ES912100041845020005133", "CAIXESBB" },
        SWEDEN = { "1234567890", "1234567890123456", "5000", "500" },
        UNITED_KINGDOM = { "31926819", "3192681", "601613", "60-16-13" },
    }

    it("has an example for every row of the table", function()
        for _, name in ipairs(CLEARINGHOUSES) do assert.is_table(rows[name], name) end
        local n = 0
        for _ in pairs(rows) do n = n + 1 end
        assert.equal(#CLEARINGHOUSES, n)
    end)

    for _, row in ipairs(ecommpay.CLEARINGHOUSES) do
        local name = row.name
        it(("%s: takes a valid account number and bank code, refuses an invalid one"):format(name), function()
            local ex = rows[name]
            assert.is_true(core.validate(S, { account = { clearinghouse = name, number = ex[1], bank_code = ex[3] } }))
            local ok, v = core.validate(S, { account = { clearinghouse = name, number = ex[2], bank_code = ex[3] } })
            assert.is_nil(ok)
            assert.same({ path = "account.number", code = "pattern",
                message = "account.number: does not match the " .. name .. " account number format" }, v[1])
            assert.equal(1, #v)
            if row.bank_code then
                _, v = core.validate(S, { account = { clearinghouse = name, number = ex[1], bank_code = ex[4] } })
                assert.same({ { "account.bank_code", "pattern" } }, pairs_of(v))
            else
                _, v = core.validate(S, { account = { clearinghouse = name, number = ex[1], bank_code = "12345" } })
                assert.same({ { "account.bank_code", "format" } }, pairs_of(v))
                assert.equal("account.bank_code: must be a BIC (SWIFT) code for " .. name, v[1].message)
            end
        end)
    end

    it("leaves the number alone when the clearinghouse is unknown or missing (that field reports itself)", function()
        local _, v = core.validate(S, { account = { clearinghouse = "ATLANTIS", number = "x" } })
        assert.same({ { "account.clearinghouse", "enum" } }, pairs_of(v))
        _, v = core.validate(S, { account = { number = "x" } })
        assert.same({ { "account.clearinghouse", "required" } }, pairs_of(v))
    end)
end)

describe("pattern_by with a label and formats: a provider's table handed in as data", function()
    -- The core knows no provider's field names: the same rule with other
    -- names and another table works the same way.
    local S = core.schema{ type = "object", fields = {
        scheme = { type = "enum", values = { "US", "EU", "XX" } },
        acct = { type = "string", pattern_by = { field = "scheme", label = "routing number",
            patterns = { US = "^[0-9]{9}$", EU = { format = "iban" } } } },
        key = { type = "string", secret = true },
        ref = { type = "string", pattern_by = { field = "key", patterns = { A = "^a+$", B = { format = "email" } },
            label = "reference" } },
    } }

    it("checks the pattern or the format the sibling's value chooses, with the label in the message", function()
        assert.is_true(core.validate(S, { scheme = "US", acct = "123456789" }))
        assert.is_true(core.validate(S, { scheme = "EU", acct = "DE89370400440532013000" }))
        assert.is_true(core.validate(S, { scheme = "XX", acct = "anything" })) -- a value without a rule
        local _, v = core.validate(S, { scheme = "US", acct = "12345" })
        assert.same({ { path = "acct", code = "pattern", message = "acct: does not match the US routing number format" } }, v)
        _, v = core.validate(S, { scheme = "EU", acct = "DE89370400440532013001" })
        assert.same({ { path = "acct", code = "format", message = "acct: must be an IBAN for EU" } }, v)
    end)

    it("names a secret sibling, never its value", function()
        local _, v = core.validate(S, { key = "A", ref = "b" })
        assert.same({ path = "ref", code = "pattern", message = "ref: does not match the chosen key reference format" }, v[1])
        _, v = core.validate(S, { key = "B", ref = "not mail" })
        assert.same({ path = "ref", code = "format", message = "ref: must be an e-mail address for chosen key" }, v[1])
    end)

    it("is the only way to a clearinghouse rule: a field named clearinghouse means nothing by itself", function()
        assert.is_nil(core.clearinghouses)
        local plain = core.schema{ type = "object", fields = {
            clearinghouse = { type = "string" }, number = { type = "string" }, bank_code = { type = "string" } } }
        assert.is_true(core.validate(plain, { clearinghouse = "SWEDEN", number = "x", bank_code = "y" }))
    end)

    it("leaves no provider's name or field names in the generic validator's C sources", function()
        local names = { "clearinghouse", "clearing", "bank_code", "account_number", "ecommpay", "trustly", "trustpay",
            "begateway", "figure 32" }
        for _, file in ipairs { "validate.c", "checks.c", "checks.h", "refdata.c", "pattern.c", "money.c" } do
            local f = assert(io.open("csrc/" .. file, "rb"))
            local text = f:read("*a"):lower()
            f:close()
            for _, name in ipairs(names) do
                assert.is_nil(text:find(name, 1, true), "csrc/" .. file .. " mentions " .. name)
            end
        end
    end)
end)

describe("secret fields", function()
    it("never put the value in a message, whatever the violation", function()
        local secret = "hunter2-Ω-<very-long-secret>"
        local S = core.schema{ type = "object", fields = {
            password = { type = "string", secret = true, max_len = 8, min_len = 40, pattern = "^[a-z]+$", forbid = "<>",
                         enum = { "a", "b" } },
            pin = { type = "decimal", secret = true, decimals = 0, max_digits = 4 },
            card = { type = "iban", secret = true },
            token = { type = "email", secret = true },
        } }
        local ok, v = core.validate(S, { password = secret, pin = "123456789", card = "DE88370400440532013000",
            token = "tok_live_abc" })
        assert.is_nil(ok)
        -- password: enum, forbidden, max_len, min_len, pattern; pin: range; card: checksum; token: format
        assert.equal(8, #v)
        for _, violation in ipairs(v) do
            assert.is_true(violation.secret)
            for _, part in ipairs { secret, "hunter2", "very-long", "123456789", "370400440532", "tok_live" } do
                assert.is_nil(violation.message:find(part, 1, true), violation.message)
            end
        end
        v = select(2, core.validate(core.schema{ type = "object", fields = { password = { type = "string", secret = true } } },
            { password = "\255" .. secret }))
        assert.same({ path = "password", code = "utf8", message = "password: is not valid UTF-8", secret = true }, v[1])
    end)

    it("keep what is inside a secret object or array secret, unknown keys included", function()
        local S = core.schema{ type = "object", fields = {
            card = { type = "object", secret = true, additional = false, fields = {
                pan = { type = "string", pattern = "^[0-9]{16}$" },
                clearinghouse = { type = "enum", values = CLEARINGHOUSES },
                number = { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.number },
            } },
            pins = { type = "array", secret = true, items = { type = "string", pattern = "^[0-9]{4}$" } },
            open = { type = "object", additional = false },
        } }
        local _, v = S:validate({
            card = { pan = "4111x", ["4111111111111111"] = "cvv 123", [4111111111111111] = true,
                     clearinghouse = "SWEDEN", number = "x" },
            pins = { "12345" },
            open = { extra = 1 },
        })
        assert.same({ { "card.(number key)", "unknown" }, { "card.(string key)", "unknown" }, { "card.number", "pattern" },
            { "card.pan", "pattern" }, { "open.extra", "unknown" }, { "pins[1]", "pattern" } }, pairs_of(v))
        for _, violation in ipairs(v) do
            if violation.path == "open.extra" then
                assert.is_nil(violation.secret)
            else
                assert.is_true(violation.secret, violation.path)
            end
            for _, part in ipairs { "4111", "cvv", "SWEDEN", "12345" } do
                assert.is_nil(violation.message:find(part, 1, true), violation.message)
                assert.is_nil(violation.path:find(part, 1, true), violation.path)
            end
        end
    end)

    it("mark only secret fields as secret", function()
        local _, v = core.validate(payout_schema(), { general = {}, payment = {}, customer = {}, account = {} })
        for _, violation in ipairs(v) do assert.is_nil(violation.secret) end
    end)
end)

describe("core.check for values that are not schema-shaped", function()
    it("returns true, or nil with a message and a code", function()
        assert.is_true(core.check("email", "anna@example.se"))
        local ok, msg, code = core.check("email", "nope")
        assert.is_nil(ok)
        assert.equal("value: is not a valid e-mail address", msg)
        assert.equal("format", code)
        assert.same({ nil, "Amount: must have exactly 2 decimals", "decimals" },
            { core.check("decimal", "103", { decimals = 2 }, "Amount") })
    end)

    it("names the value as asked, also for the checks it keeps compiled", function()
        for _, name in ipairs { "customer.email", "Email", "value" } do
            assert.equal(name .. ": is not a valid e-mail address", select(2, core.check("email", "x", nil, name)))
        end
        for _ = 1, 3 do
            assert.is_true(core.check("email", "anna@example.se"))
            assert.equal("format", select(3, core.check("email", "anna@example")))
        end
    end)

    it("raises for misuse", function()
        assert_raises("check: bad argument #1 'type' (string expected, got number)", core.check, 1, "x")
        assert_raises("check: bad argument #1 'type' (unknown type 'strnig')", core.check, "strnig", "x")
        assert_raises("check: bad argument #1 'type' (unknown type 'email\\0junk')", core.check, "email\0junk", "x")
        assert_raises("check: bad argument #3 'opts' (table expected, got string)", core.check, "string", "x", "max_len")
        assert_raises("check: bad argument #3 'opts' ('max_len' must be a non-negative integer)",
            core.check, "string", "x", { max_len = "3" })
        assert_raises("check: bad argument #3 'opts' ('required_if' is only for fields of an object)", core.check,
            "string", "x", { required_if = { field = "a", equals = 1 } })
        assert_raises("check: bad argument #4 'name' (string expected, got table)", core.check, "string", "x", nil, {})
    end)
end)

describe("a bad schema", function()
    local cases = {
        { "a table expected", "x", "schema: bad argument #1 'schema' (table expected, got string)" },
        { "an unknown type", { type = "objekt" }, "schema: bad argument #1 'schema' (unknown type 'objekt')" },
        { "a missing type", { max_len = 3 }, "schema: bad argument #1 'schema' ('type' must be a string, got nil)" },
        { "an unknown option", { type = "string", maxlen = 3 }, "(unknown option 'maxlen' for type 'string')" },
        { "an option of another type", { type = "integer", max_len = 3 }, "(unknown option 'max_len' for type 'integer')" },
        { "a wrong option type, with the schema path",
          { type = "object", fields = { payment = { type = "object", fields = { amount = { type = "amount", min = "100" } } } } },
          "(payment.amount: 'min' must be an integer within 2^53, got string)" },
        { "a non-boolean flag", { type = "string", required = "yes" }, "('required' must be a boolean, got string)" },
        { "an empty enum", { type = "enum", values = {} }, "('values' must be a non-empty list of strings)" },
        { "an enum without values", { type = "enum" }, "(type 'enum' needs 'values')" },
        { "a currency enum with a typo", { type = "currency", enum = { "EURO" } }, "('enum' item 1 ('EURO') is not a valid code)" },
        { "a field that is not a schema", { type = "object", fields = { a = "string" } }, "(a: a schema must be a table, got string)" },
        { "an array item schema", { type = "object", fields = { list = { type = "array", items = { type = "strin" } } } },
          "(list[]: unknown type 'strin')" },
        { "required_if naming no sibling",
          { type = "object", fields = { a = { type = "string", required_if = { field = "nope", equals = 1 } } } },
          "(a: 'required_if' names 'nope', which is not another field of this object)" },
        { "required_if with both equals and in",
          { type = "object", fields = { a = { type = "any" },
              b = { type = "any", required_if = { field = "a", equals = 1, ["in"] = { 2 } } } } },
          "(b: 'required_if' needs exactly one of equals and in)" },
        { "clearing, which is ecommpay's rule and not the core's", { type = "string", clearing = "number" },
          "(unknown option 'clearing' for type 'string')" },
        { "pattern_by outside an object", { type = "string", pattern_by = { field = "a", patterns = {} } },
          "('pattern_by' is only for fields of an object)" },
        { "pattern_by naming no sibling",
          { type = "object", fields = { number = { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.number } } },
          "(number: 'pattern_by' names 'clearinghouse', which is not another field of this object)" },
        { "a pattern_by format it does not know",
          { type = "object", fields = { a = { type = "any" },
              n = { type = "string", pattern_by = { field = "a", patterns = { X = { format = "bank" } } } } } },
          "(n: 'pattern_by.patterns' X: {format = F} takes \"bic\", \"iban\", \"email\", \"url\" or \"date\")" },
        { "a pattern_by label that is not a string",
          { type = "object", fields = { a = { type = "any" },
              n = { type = "string", pattern_by = { field = "a", patterns = {}, label = 1 } } } },
          "(n: 'pattern_by.label' must be a string)" },
        { "decimal bounds with other decimals", { type = "decimal", decimals = 2, min = "0.0" },
          "('min' must be a decimal string with 2 decimals)" },
        { "a forbid that is not text", { type = "string", forbid = "" }, "('forbid' must be a non-empty UTF-8 string)" },
        -- a name is all of its bytes: "string\0x" is not "string"
        { "a type name with a NUL byte", { type = "string\0x" }, "(unknown type 'string\\0x')" },
        { "an option name with a NUL byte", { type = "string", ["max_len\0"] = 3 },
          "(unknown option 'max_len\\0' for type 'string')" },
        { "a pattern_by key with a NUL byte",
          { type = "object", fields = { a = { type = "any" },
              n = { type = "string", pattern_by = { field = "a", patterns = {}, ["label\0"] = "x" } } } },
          "(n: 'pattern_by' takes field, patterns and label)" },
        { "a required_if key with a NUL byte",
          { type = "object", fields = { a = { type = "any" },
              b = { type = "any", required_if = { field = "a", ["in\0"] = { 1 }, equals = 1 } } } },
          "(b: 'required_if' takes only field, equals and in)" },
    }
    for _, c in ipairs(cases) do
        it("raises for " .. c[1], function()
            assert_raises(c[3], core.schema, c[2])
        end)
    end

    it("raises for a bad regular expression, at compile time", function()
        local ok, err = pcall(core.schema, { type = "object", fields = { ref = { type = "string", pattern = "^[0-9" } } })
        assert.is_false(ok)
        assert.matches("schema: bad argument #1 'schema' %(ref: pattern '%^%[0%-9' is not a valid POSIX ERE: ", err)
        ok, err = pcall(core.schema, { type = "object", fields = { a = { type = "any" }, b = { type = "string",
            pattern_by = { field = "a", patterns = { X = "(" } } } } })
        assert.is_false(ok)
        assert.matches("b: pattern_by pattern '%(' is not a valid POSIX ERE", err)
    end)

    it("raises for a schema nested too deep, or one that contains itself", function()
        local deep = { type = "string" }
        for _ = 1, 40 do deep = { type = "array", items = deep } end
        assert.matches("schema nested deeper than 32 levels", select(2, pcall(core.schema, deep)))
        local loop = { type = "object", fields = {} }
        loop.fields.self = loop
        assert.matches("schema nested deeper than 32 levels", select(2, pcall(core.schema, loop)))
    end)

    it("raises, and writes nothing out of bounds, when compiling a field adds or removes fields", function()
        -- a field's schema with an __index that changes the very `fields` table being compiled
        local function mutating(fields, change)
            return setmetatable({}, { __index = function(_, k)
                if k == "type" then return "string" end
                change(fields)
            end })
        end
        local grown, added = {}, 0 -- hundreds of fields, some visited by the running traversal
        grown.a = mutating(grown, function(f)
            for _ = 1, 100 do added = added + 1; f["k" .. added] = { type = "string" } end
        end)
        assert.matches("'fields' changed while it was being compiled",
            select(2, pcall(core.schema, { type = "object", fields = grown })))
        local shrunk = {}
        for i = 1, 20 do shrunk["f" .. i] = mutating(shrunk, function(f) for k in pairs(f) do f[k] = nil end end) end
        assert.matches("'fields' changed while it was being compiled",
            select(2, pcall(core.schema, { type = "object", fields = shrunk })))
        collectgarbage()
    end)

    it("raises when validate is given something else than a compiled schema", function()
        assert_raises("validate: bad argument #1 'schema' (compiled schema expected (core.schema{...}), got table)",
            core.validate, { type = "any" }, 1)
        local S = core.schema{ type = "any" }
        assert_raises("schema:validate: bad argument #1 'schema' (compiled schema expected (core.schema{...}), got table)",
            S.validate, {}, 1)
    end)
end)

describe("a compiled schema", function()
    it("closes idempotently and refuses work once closed", function()
        local S = core.schema{ type = "string", pattern = "^a$" }
        assert.equal("luapay.schema (string)", tostring(S))
        S:close()
        S:close()
        assert.equal("luapay.schema (closed)", tostring(S))
        assert_raises("luapay.schema: schema is closed", core.validate, S, "a")
        assert_raises("luapay.schema: schema is closed", S.validate, S, "a")
    end)

    it("releases its patterns when collected, closed or not", function()
        for i = 1, 100 do
            local S = core.schema{ type = "object", fields = {
                clearinghouse = { type = "enum", values = CLEARINGHOUSES },
                number = { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.number, pattern = "^[0-9]+$" },
            } }
            if i % 2 == 0 then S:close() end
        end
        collectgarbage()
        collectgarbage()
    end)

    it("survives an error while compiling without leaking what it compiled so far", function()
        for _ = 1, 50 do
            assert.is_false(pcall(core.schema, { type = "object", fields = {
                a = { type = "string", pattern = "^a+$" }, b = { type = "string", pattern = "^[" },
            } }))
        end
        collectgarbage()
    end)

    if _VERSION == "Lua 5.4" then
        it("closes when held in a to-be-closed variable (Lua 5.4)", function()
            local chunk = assert(load([[
                local core = ...
                local escaped
                do
                    local S <close> = core.schema{ type = "any" }
                    escaped = S
                end
                return tostring(escaped)
            ]]))
            assert.equal("luapay.schema (closed)", chunk(core))
        end)
    end
end)
