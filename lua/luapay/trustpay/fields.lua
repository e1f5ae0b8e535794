--- luapay.trustpay.fields: how TrustPay writes the values of its fields,
-- for its three APIs (luapay.trustpay, .banking, .payment_order): amounts
-- with two decimals, Numeric(10) ids, the string fields of its schemas, and
-- the validation errors they give. No I/O.
local core = require "luapay.core"
local errors = require "luapay.errors"
local provider = require "luapay.provider"

local fields = {}

---------------------------------------------------------------------------
-- Integers and validation errors
-- @section integers_and_errors
---------------------------------------------------------------------------

-- A copy of request data (luapay.provider's, shared by every provider).
fields.copy = provider.copy

-- An integer: under LuaJIT a whole number that a double holds exactly.
fields.is_integer = provider.is_integer

-- An integer as its digits (no exponent, no ".0").
fields.int_string = provider.digits

-- One entry of a validation error's fields, worded as core.validate words them.
fields.violation = errors.violation

-- nil and the validation error of what (a method) listing its violations.
function fields.invalid(what, violations)
    return nil, errors.validation(what, violations)
end

-- true, or nil and one validation error for the schema's violations and extra ones.
function fields.validate(schema, value, what, extra)
    local ok, violations = schema:validate(value)
    violations = ok and {} or violations
    for _, v in ipairs(extra or {}) do violations[#violations + 1] = v end
    if #violations > 0 then return fields.invalid(what, violations) end
    return true
end

---------------------------------------------------------------------------
-- Amounts: minor units <-> TrustPay's two decimals
-- @section amounts
---------------------------------------------------------------------------

--- trustpay.amount(minor, currency) -> "1.50" | nil, message (defined
-- here, public in luapay.trustpay). TrustPay writes every amount with
-- exactly two decimals ("en-US", no grouping); for a currency without minor
-- unit 150 is "150.00", and a three-decimal amount must end in 0.
function fields.amount(minor, currency)
    if type(minor) ~= "number" then
        error("trustpay.amount: bad argument #1 'minor' (integer expected, got " .. type(minor) .. ")", 2)
    end
    if type(currency) ~= "string" then
        error("trustpay.amount: bad argument #2 'currency' (string expected, got " .. type(currency) .. ")", 2)
    end
    local s, err = core.to_decimal(minor, currency)
    if not s then return nil, err end
    local int, frac = s:match("^(%d+)%.?(%d*)$")
    if #frac == 0 then
        s = int .. ".00"
    elseif #frac > 2 then
        if not frac:sub(3):match("^0+$") then return nil, "cannot be written with two decimals in " .. currency end
        s = int .. "." .. frac:sub(1, 2)
    elseif #frac == 1 then
        s = s .. "0"
    end
    if #int > 11 then return nil, "exceeds Numeric(13,2)" end
    return s
end

--- trustpay.minor(decimal2, currency) -> integer | nil, message: the
-- inverse, for amounts TrustPay sends ("6.00", "-13.37") (public in
-- luapay.trustpay).
function fields.minor(s, currency)
    local sign, int, frac = tostring(s):match("^(%-?)(%d+)%.(%d%d)$")
    if not int then return nil, "not an amount with two decimals" end
    local cur = core.currency(currency or "")
    if not cur then return nil, "unknown currency" end
    local text
    if cur.exponent == 0 then
        if frac ~= "00" then return nil, "has a fraction, which " .. currency .. " does not have" end
        text = int
    else
        text = int .. "." .. frac .. ("0"):rep(cur.exponent - 2)
    end
    text = text:gsub("^0+(%d)", "%1")
    local v, err = core.to_minor(text, currency)
    if not v then return nil, err end
    if sign == "-" then v = -v end
    return v
end

-- A JSON number with two decimals (API Banking answers 123.45, -13.37) in
-- hundredths; Numeric(13,2) has at most 15 significant digits, which a
-- double prints back exactly.
function fields.hundredths(v)
    if type(v) == "string" then v = tonumber(v) end
    if type(v) ~= "number" or v ~= v or math.abs(v) >= 1e13 then return nil end
    local s = ("%.2f"):format(v)
    local sign, int, frac = s:match("^(%-?)(%d+)%.(%d%d)$")
    local n = tonumber(int) * 100 + tonumber(frac)
    if math.tointeger then n = math.tointeger(n) end
    return sign == "-" and -n or n
end

-- Hundredths as TrustPay writes an amount: "-13.37".
function fields.decimal2(hundredths_value)
    local neg = hundredths_value < 0
    local a = neg and -hundredths_value or hundredths_value
    local int = math.floor(a / 100)
    return (neg and "-" or "") .. fields.int_string(int) .. "." .. ("%02d"):format(a - int * 100)
end

---------------------------------------------------------------------------
-- Fields: schema pieces and what a merchant may pass
-- @section fields
---------------------------------------------------------------------------

-- A Numeric(10) id as a string; a string field of at most max characters.
fields.NUMERIC10 = "^[0-9]{1,10}$"
function fields.str(max, opts)
    local s = { type = "string", min_len = 1, max_len = max }
    for k, v in pairs(opts or {}) do s[k] = v end
    return s
end

-- Normalizes what a merchant may reasonably pass: integer ids as strings,
-- IsRedirect as a boolean. Works on a copy.
fields.ID_FIELDS = { PaymentRequestId = true, AccountId = true, PaymentId = true, OrderId = true, TransactionId = true,
    DebtorAccount = true, AbaCode = true, BsbCode = true, TransitCode = true,
    SymbolConstant = true, SymbolSpecific = true, SymbolVariable = true }
local function integral(v) -- also 652801.0, as lua-cjson decodes JSON integers in Lua 5.4
    return type(v) == "number" and v == math.floor(v) and v >= 0 and v <= 2 ^ 53
end

function fields.normalize(params)
    local p = fields.copy(params)
    for k, v in pairs(p) do
        if fields.ID_FIELDS[k] and integral(v) then p[k] = ("%.0f"):format(v) end
        if k == "IsRedirect" and type(v) == "boolean" then p[k] = v and "True" or "False" end
    end
    return p
end

return fields
