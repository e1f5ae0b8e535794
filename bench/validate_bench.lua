-- Validation bench: a full ecommpay Trustly payout request (21 fields in
-- nested objects, the Figure 32 clearinghouse rule) checked by a schema
-- compiled into luapay.core, against the same checks written in plain Lua
-- with string patterns, in the same run. Prints "name ops_per_second".
-- (The ecommpay docs also list BGN for Trustly; ISO 4217 withdrew it in 2026-01.)
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local rate = require("util").rate

local CURRENCIES = { "EUR", "CZK", "DKK", "GBP", "HUF", "NOK", "PLN", "RON", "SEK" }
local clearing_names = {}
for i, row in ipairs(ecommpay.CLEARINGHOUSES) do clearing_names[i] = row.name end

-- The request, as a merchant's code would build it.
local request = {
    general = {
        project_id = 1625,
        payment_id = "payout-2026-000123",
        merchant_callback_url = "https://merchant.example.com/callbacks/ecommpay",
        signature = "pVmAtGFBQJD2dK4XHHP7Z9vTqN8y2YQm3w0lC6xMg5uRkEo1s7bJf4hWi9aZ61679A==",
    },
    payment = { amount = 5000, currency = "SEK", description = "Payout for order 4711" },
    customer = {
        id = "customer-125", ip_address = "198.51.100.23", first_name = "Anna",
        last_name = "Söderström", email = "anna.soderstrom@example.se", country = "SE",
    },
    account = { clearinghouse = "SWEDEN", bank_code = "5000", number = "1234567890" },
    additional_data = {
        sender = {
            party_type = "ORGANISATION", first_name = "Merchant AB", address = "Drottninggatan 1, Stockholm",
            country = "SE", last_name = nil,
        },
    },
}

-- 1. The compiled C schema.
local S = core.schema{
    type = "object",
    fields = {
        general = { type = "object", required = true, additional = false, fields = {
            project_id = { type = "integer", required = true, min = 1 },
            payment_id = { type = "string", required = true, min_len = 1, max_len = 255, pattern = "^[A-Za-z0-9_-]+$" },
            merchant_callback_url = { type = "url", max_len = 2048 },
            signature = { type = "string", required = true, max_len = 1024, secret = true },
        } },
        payment = { type = "object", required = true, additional = false, fields = {
            amount = { type = "amount", required = true, min = 1 },
            currency = { type = "currency", required = true, enum = CURRENCIES },
            description = { type = "string", max_len = 255, forbid = "<>" },
        } },
        customer = { type = "object", required = true, fields = {
            id = { type = "string", required = true, max_len = 255 },
            ip_address = { type = "ip", required = true },
            first_name = { type = "string", required = true, max_len = 255 },
            last_name = { type = "string", required = true, max_len = 255 },
            email = { type = "email" },
            country = { type = "country" },
        } },
        account = { type = "object", required = true, additional = false, fields = {
            clearinghouse = { type = "enum", required = true, values = clearing_names },
            number = { type = "string", required = true, pattern_by = ecommpay.ACCOUNT_FORMATS.number },
            bank_code = { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.bank_code },
        } },
        additional_data = { type = "object", fields = {
            sender = { type = "object", fields = {
                party_type = { type = "enum", required = true, values = { "PERSON", "ORGANISATION" } },
                first_name = { type = "string", required = true, max_len = 255 },
                last_name = { type = "string", max_len = 255, required_if = { field = "party_type", equals = "PERSON" } },
                address = { type = "string", required = true, max_len = 255 },
                country = { type = "country", required = true },
            } },
        } },
    },
}

-- 2. The same checks in plain Lua with string patterns.
local function set(list)
    local t = {}
    for _, v in ipairs(list) do t[v] = true end
    return t
end
local currency_ok = set(CURRENCIES)
local party_ok = set { "PERSON", "ORGANISATION" }
local country_ok = {}
for code in ([[AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET
FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO
IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH
MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW]]):gmatch("%u%u") do
    country_ok[code] = true
end

-- Figure 32's EREs as Lua patterns: [set]{m,n} becomes m copies and n-m optional ones.
local function lua_pattern(ere)
    return (ere:gsub("(%b[])(%b{})", function(class, rep)
        local m, n = rep:match("^{(%d+),?(%d*)}$")
        m = tonumber(m)
        n = rep:find(",") and tonumber(n) or m
        class = class:gsub("0%-9", "%%d")
        return class:rep(m) .. (class .. "?"):rep(n - m)
    end))
end
local number_pattern, bank_pattern = {}, {}
for _, row in ipairs(ecommpay.CLEARINGHOUSES) do
    number_pattern[row.name] = lua_pattern(row.number)
    bank_pattern[row.name] = row.bank_code and lua_pattern(row.bank_code) or false
end

local function utf8_len(s) -- nil for invalid UTF-8
    if not s:find("[\128-\255]") then return #s end
    local n, i, len = 0, 1, #s
    while i <= len do
        local c = s:byte(i)
        local k = c < 0x80 and 0 or c >= 0xC2 and c <= 0xDF and 1 or c >= 0xE0 and c <= 0xEF and 2
            or c >= 0xF0 and c <= 0xF4 and 3 or nil
        if not k then return nil end
        for j = i + 1, i + k do
            local b = s:byte(j)
            if not b or b < 0x80 or b > 0xBF then return nil end
        end
        i, n = i + k + 1, n + 1
    end
    return n
end

-- Helpers at file level, so the validator creates no closures per call.
local function bad(errs, path, code) errs[#errs + 1] = { path = path, code = code } end

local function str(errs, v, path, required, max)
    if v == nil then
        if required then bad(errs, path, "required") end
        return nil
    end
    if type(v) ~= "string" then return bad(errs, path, "type") end
    local n = utf8_len(v)
    if not n then return bad(errs, path, "utf8") end
    if max and n > max then bad(errs, path, "max_len") end
    return v
end

local function obj(errs, v, path, required)
    if v == nil then
        if required then bad(errs, path, "required") end
        return nil
    end
    if type(v) ~= "table" then return bad(errs, path, "type") end
    return v
end

local function only(errs, t, path, allowed)
    for k in pairs(t) do
        if not allowed[k] then bad(errs, path .. "." .. tostring(k), "unknown") end
    end
end

local GENERAL_KEYS = { project_id = true, payment_id = true, merchant_callback_url = true, signature = true }
local PAYMENT_KEYS = { amount = true, currency = true, description = true }
local ACCOUNT_KEYS = { clearinghouse = true, number = true, bank_code = true }

local function lua_validate(r)
    local errs = {}
    if type(r) ~= "table" then return bad(errs, "", "type") end
    local g = obj(errs, r.general, "general", true)
    if g then
        only(errs, g, "general", GENERAL_KEYS)
        local id = g.project_id
        if id == nil then bad(errs, "general.project_id", "required")
        elseif type(id) ~= "number" or id % 1 ~= 0 then bad(errs, "general.project_id", "type")
        elseif id < 1 then bad(errs, "general.project_id", "range") end
        local pid = str(errs, g.payment_id, "general.payment_id", true, 255)
        if pid and (#pid < 1 or not pid:find("^[%w_%-]+$")) then bad(errs, "general.payment_id", "pattern") end
        local url = str(errs, g.merchant_callback_url, "general.merchant_callback_url", false, 2048)
        if url and not (url:find("^[Hh][Tt][Tt][Pp][Ss]?://[%w%-%.]+[%w%-]") and
                not url:find("[^%w%-%._~:/%?#%[%]@!%$&'%(%)%*%+,;=%%]")) then
            bad(errs, "general.merchant_callback_url", "format")
        end
        str(errs, g.signature, "general.signature", true, 1024)
    end
    local p = obj(errs, r.payment, "payment", true)
    if p then
        only(errs, p, "payment", PAYMENT_KEYS)
        local a = p.amount
        if a == nil then bad(errs, "payment.amount", "required")
        elseif math.type and math.type(a) ~= "integer" or type(a) ~= "number" or a % 1 ~= 0 then
            bad(errs, "payment.amount", "type")
        elseif a < 1 or a > 2 ^ 53 then bad(errs, "payment.amount", "range") end
        local c = p.currency
        if c == nil then bad(errs, "payment.currency", "required")
        elseif type(c) ~= "string" then bad(errs, "payment.currency", "type")
        elseif not currency_ok[c] then bad(errs, "payment.currency", "enum") end
        local d = str(errs, p.description, "payment.description", false, 255)
        if d and d:find("[<>]") then bad(errs, "payment.description", "forbidden") end
    end
    local c = obj(errs, r.customer, "customer", true)
    if c then
        str(errs, c.id, "customer.id", true, 255)
        local ip = c.ip_address
        if ip == nil then bad(errs, "customer.ip_address", "required")
        elseif type(ip) ~= "string" then bad(errs, "customer.ip_address", "type")
        else
            local a, b, cc, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
            local ok = a ~= nil
            if ok then
                for k = 1, 4 do
                    local part = k == 1 and a or k == 2 and b or k == 3 and cc or d
                    if #part > 3 or tonumber(part) > 255 or (#part > 1 and part:sub(1, 1) == "0") then ok = false end
                end
            else
                ok = ip:find("^[%x:%.]+$") ~= nil and ip:find(":") ~= nil
            end
            if not ok then bad(errs, "customer.ip_address", "format") end
        end
        str(errs, c.first_name, "customer.first_name", true, 255)
        str(errs, c.last_name, "customer.last_name", true, 255)
        local e = str(errs, c.email, "customer.email", false, 254)
        if e and not (e:find("^[^%s@]+@[^%s@]+$") and e:find("@[^%.][^@]*%.[^@]*[^%.]$") and not e:find("%.%.", e:find("@"))) then
            bad(errs, "customer.email", "format")
        end
        local co = c.country
        if co ~= nil and (type(co) ~= "string" or not country_ok[co]) then bad(errs, "customer.country", "format") end
    end
    local acc = obj(errs, r.account, "account", true)
    if acc then
        only(errs, acc, "account", ACCOUNT_KEYS)
        local ch = acc.clearinghouse
        if ch == nil then bad(errs, "account.clearinghouse", "required")
        elseif type(ch) ~= "string" then bad(errs, "account.clearinghouse", "type")
        elseif not number_pattern[ch] then bad(errs, "account.clearinghouse", "enum") end
        local num = str(errs, acc.number, "account.number", true)
        if num and number_pattern[ch] and not num:find(number_pattern[ch]) then bad(errs, "account.number", "pattern") end
        local bank = str(errs, acc.bank_code, "account.bank_code", false)
        if bank and number_pattern[ch] then
            local bp = bank_pattern[ch]
            if bp and not bank:find(bp) then bad(errs, "account.bank_code", "pattern") end
            if not bp and not bank:find("^%u%u%u%u%u%u[%u%d][%u%d]$") and not bank:find("^%u%u%u%u%u%u[%u%d][%u%d][%u%d][%u%d][%u%d]$") then
                bad(errs, "account.bank_code", "format")
            end
        end
    end
    local ad = obj(errs, r.additional_data, "additional_data", false)
    local s = ad and obj(errs, ad.sender, "additional_data.sender", false)
    if s then
        local pt = s.party_type
        if pt == nil then bad(errs, "additional_data.sender.party_type", "required")
        elseif not party_ok[pt] then bad(errs, "additional_data.sender.party_type", "enum") end
        str(errs, s.first_name, "additional_data.sender.first_name", true, 255)
        str(errs, s.last_name, "additional_data.sender.last_name", pt == "PERSON", 255)
        str(errs, s.address, "additional_data.sender.address", true, 255)
        local co = s.country
        if co == nil then bad(errs, "additional_data.sender.country", "required")
        elseif type(co) ~= "string" or not country_ok[co] then bad(errs, "additional_data.sender.country", "format") end
    end
    if #errs > 0 then return nil, errs end
    return true
end

-- Both must agree before either is timed: the request passes, and each of
-- these broken copies fails on the same field.
local function broken(path, value)
    local function copy(t)
        local c = {}
        for k, v in pairs(t) do c[k] = type(v) == "table" and copy(v) or v end
        return c
    end
    local r = copy(request)
    local t, key = r, nil
    for part in path:gmatch("[^%.]+") do
        if key then t = t[key] end
        key = part
    end
    t[key] = value
    return r
end
assert(S:validate(request) == true, "C schema rejects the request")
assert(lua_validate(request) == true, "plain Lua rejects the request")
for _, case in ipairs {
    { "account.number", "12345678901234567" }, { "account.bank_code", "500" },
    { "payment.amount", 0 }, { "payment.currency", "USD" }, { "customer.email", "anna@example" },
    { "customer.ip_address", "198.51.100.256" }, { "customer.country", "XX" },
    { "general.payment_id", "payout 1" }, { "additional_data.sender.party_type", "PERSON" },
    { "payment.description", "<b>" }, { "general.extra", 1 },
} do
    local r = broken(case[1], case[2])
    local ok1, v1 = S:validate(r)
    local ok2, v2 = lua_validate(r)
    assert(not ok1 and not ok2, "C and Lua disagree on " .. case[1])
    assert(#v1 == 1 and #v2 == 1, case[1] .. ": " .. #v1 .. " and " .. #v2 .. " violations")
end

local validate = S.validate
print(("validation_c %.0f"):format(rate(function() return validate(S, request) end)))
print(("validation_lua %.0f"):format(rate(function() return lua_validate(request) end)))
