--- luapay.trustpay.payment_order: the pain.001.001.03 document (an ISO
-- 20022 credit transfer) that TrustPay's API Banking takes for a payment
-- order: the order table checked, then written as XML. No I/O: the client
-- sends the document (create_order and create_orders, in
-- luapay.trustpay.banking).
local core = require "luapay.core"
local fields = require "luapay.trustpay.fields"

local payment_order = {}

local str, NUMERIC10 = fields.str, fields.NUMERIC10
local normalize, violation, validate = fields.normalize, fields.violation, fields.validate

local function order_fields(single)
    local f = {
        AbaCode = str(9, { pattern = "^[0-9]{9}$", required_if = { field = "CreditorBankCountry", equals = "US" } }),
        Address = str(60),
        Amount = { type = "amount", required = true, min = 1 },
        BsbCode = str(6, { pattern = "^[0-9]{6}$", required_if = { field = "CreditorBankCountry", equals = "AU" } }),
        ClientReference = str(30),
        CorrespondentBank = str(35),
        CreationDateTime = str(19, { pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$" }),
        CreditorAccount = str(34, { required = true }),
        CreditorAddress = str(70),
        CreditorBankAddress = str(35, { required = true }),
        CreditorBankBic = { type = "bic", required = true },
        CreditorBankCity = str(35, { required = true }),
        CreditorBankCountry = { type = "country", required = true },
        CreditorBankName = str(35, { required = true }),
        CreditorCity = str(35),
        CreditorCountry = { type = "country" },
        CreditorName = str(35, { required = true }),
        Currency = { type = "currency", required = true },
        DebtorAccount = str(10, { required = true, pattern = NUMERIC10 }),
        DebtorName = str(35, { required = true }),
        Description = str(140),
        EndToEndReference = str(35),
        MessageId = str(35, { required = true }),
        RequestedExecutionDate = { type = "date", required = true },
        TransitCode = str(9, { pattern = "^0[0-9]{8}$", required_if = { field = "CreditorBankCountry", equals = "CA" } }),
    }
    if single then
        f.CityCode = str(35, { required = true })
        f.SymbolConstant = str(4, { pattern = "^[0-9]{1,4}$" })
        f.SymbolSpecific = str(10, { pattern = NUMERIC10 })
        f.SymbolVariable = str(10, { pattern = NUMERIC10 })
    end
    return f
end

local ORDER_SCHEMA = core.schema{ type = "object", additional = false, fields = order_fields(true) }
local ORDERS_SCHEMA = core.schema{ type = "array", min_items = 1,
    items = { type = "object", additional = false, fields = order_fields(false) } }

-- A SEPA order: euros to an IBAN. Anything else is an "Other country"
-- order, which needs the creditor's address, city and country.
local function is_sepa(o)
    return o.Currency == "EUR" and type(o.CreditorAccount) == "string" and core.check("iban", o.CreditorAccount) == true
end

local CONTROL = "[%z\1-\8\11\12\14-\31\127]"

-- UTF-8 characters (continuation bytes not counted).
local function ulen(s)
    local _, n = s:gsub("[^\128-\191]", "")
    return n
end

-- Checks the schema cannot express: "Other country" required fields,
-- the execution date, XML-unsafe control characters.
local function order_rules(o, prefix, today)
    local v = {}
    if type(o) ~= "table" then return v end
    if not is_sepa(o) then
        for _, k in ipairs({ "CreditorAddress", "CreditorCity", "CreditorCountry" }) do
            if o[k] == nil then
                v[#v + 1] = violation(prefix .. k, "required", "is required for an order that is not SEPA (euros to an IBAN)")
            end
        end
        if type(o.CreditorAddress) == "string" and ulen(o.CreditorAddress) > 35 then
            v[#v + 1] = violation(prefix .. "CreditorAddress", "max_len", "must be at most 35 characters for an order that is not SEPA")
        end
    end
    -- An amount the schema takes may still not fit Numeric(13,2) or two
    -- decimals (1.001 KWD): refused here, not raised while writing.
    local integer = type(o.Amount) == "number" and o.Amount == math.floor(o.Amount)
        and (not math.type or math.type(o.Amount) == "integer")
    if integer and type(o.Currency) == "string" and core.check("currency", o.Currency) == true then
        local ok, why = fields.amount(o.Amount, o.Currency)
        if not ok then v[#v + 1] = violation(prefix .. "Amount", "range", why) end
    end
    if type(o.RequestedExecutionDate) == "string" and core.check("date", o.RequestedExecutionDate) == true
        and o.RequestedExecutionDate < today then
        v[#v + 1] = violation(prefix .. "RequestedExecutionDate", "range", "must be today or later")
    end
    for k, x in pairs(o) do
        if type(k) == "string" and type(x) == "string" and x:find(CONTROL) then
            v[#v + 1] = violation(prefix .. k, "forbidden", "must not contain control characters (XML cannot carry them)")
        end
    end
    return v
end

-- A CR goes as a character reference: an XML parser reads a raw CR (or
-- CR LF) as LF, so the bank would read another text than the one sent.
local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;", ["\r"] = "&#13;" }

--- trustpay.xml_escape(s): s with & < > " ' as XML entities and CR as
-- &#13; (public in luapay.trustpay).
function payment_order.xml_escape(s)
    return (tostring(s):gsub("[&<>\"'\r]", ESCAPES))
end
local esc = payment_order.xml_escape

-- Elements are written only when they have content.
local function el(name, ...)
    local inner = table.concat({ ... })
    if inner == "" then return "" end
    return "<" .. name .. ">" .. inner .. "</" .. name .. ">"
end
local function leaf(name, value)
    if value == nil or value == "" then return "" end
    return "<" .. name .. ">" .. esc(value) .. "</" .. name .. ">"
end

local CLEARING = { { "AbaCode", "USABA" }, { "BsbCode", "AUBSB" }, { "TransitCode", "CACPA" } }

local function payment_xml(o, n)
    local amount = assert(fields.amount(o.Amount, o.Currency))
    local sepa = is_sepa(o)
    local clearing = ""
    for _, c in ipairs(CLEARING) do
        if o[c[1]] then clearing = el("ClrSysMmbId", el("ClrSysId", leaf("Cd", c[2])), leaf("MmbId", o[c[1]])) end
    end
    local account = core.check("iban", o.CreditorAccount) == true and leaf("IBAN", o.CreditorAccount)
        or el("Othr", leaf("Id", o.CreditorAccount))
    local symbols = ""
    if o.SymbolVariable or o.SymbolSpecific or o.SymbolConstant then
        symbols = (o.SymbolVariable and "/VS" .. o.SymbolVariable or "") .. (o.SymbolSpecific and "/SS" .. o.SymbolSpecific or "")
            .. (o.SymbolConstant and "/KS" .. o.SymbolConstant or "")
    end
    return el("PmtInf",
        leaf("PmtInfId", tostring(n)),
        leaf("PmtMtd", "TRF"),
        leaf("NbOfTxs", "1"),
        leaf("CtrlSum", amount),
        sepa and el("PmtTpInf", el("SvcLvl", leaf("Cd", "SEPA"))) or "",
        leaf("ReqdExctnDt", o.RequestedExecutionDate),
        el("Dbtr", leaf("Nm", o.DebtorName), el("PstlAdr", leaf("TwnNm", o.CityCode), leaf("AdrLine", o.Address))),
        el("DbtrAcct", el("Id", el("Othr", leaf("Id", o.DebtorAccount))), leaf("Ccy", o.Currency)),
        el("DbtrAgt", el("FinInstnId", leaf("BIC", "TPAYSKBX"))),
        leaf("ChrgBr", sepa and "SLEV" or "SHAR"),
        el("CdtTrfTxInf",
            el("PmtId", leaf("EndToEndId", o.EndToEndReference or "NOTPROVIDED")),
            '<Amt><InstdAmt Ccy="' .. esc(o.Currency) .. '">' .. amount .. "</InstdAmt></Amt>",
            el("IntrmyAgt1", el("FinInstnId", leaf("Nm", o.CorrespondentBank))),
            el("CdtrAgt", el("FinInstnId", leaf("BIC", o.CreditorBankBic), clearing, leaf("Nm", o.CreditorBankName),
                el("PstlAdr", leaf("TwnNm", o.CreditorBankCity), leaf("Ctry", o.CreditorBankCountry),
                    leaf("AdrLine", o.CreditorBankAddress)))),
            el("Cdtr", leaf("Nm", o.CreditorName),
                el("PstlAdr", leaf("TwnNm", o.CreditorCity), leaf("Ctry", o.CreditorCountry), leaf("AdrLine", o.CreditorAddress))),
            el("CdtrAcct", el("Id", account)),
            el("RmtInf", leaf("Ustrd", o.Description),
                symbols ~= "" and el("Strd", el("CdtrRefInf", leaf("Ref", symbols))) or "",
                o.ClientReference and el("Strd", leaf("AddtlRmtInf", "CREF:" .. o.ClientReference)) or "")))
end

local function utc_now() return os.date("!%Y-%m-%dT%H:%M:%S") end

--- payment_order.document(orders, single) -> the pain.001.001.03 document
-- | nil, err (validation). Validates one order (single) or a list, fills
-- CreationDateTime and EndToEndReference, and writes the document. Raises,
-- naming create_order or create_orders, if orders is not a table.
function payment_order.document(orders, single)
    local list, schema, what
    if single then
        if type(orders) ~= "table" then
            error("trustpay.Client:create_order: bad argument #1 'order' (table expected, got "
                .. type(orders) .. ")", 3)
        end
        list, schema, what = { normalize(orders) }, ORDER_SCHEMA, "create_order"
    else
        if type(orders) ~= "table" then
            error("trustpay.Client:create_orders: bad argument #1 'orders' (a list of order tables"
                .. " expected, got " .. type(orders) .. ")", 3)
        end
        list = {}
        for i, o in ipairs(orders) do list[i] = type(o) == "table" and normalize(o) or o end
        schema, what = ORDERS_SCHEMA, "create_orders"
    end
    local today = os.date("!%Y-%m-%d")
    local extra = {}
    for i, o in ipairs(list) do
        local prefix = single and "" or ("[%d]."):format(i)
        for _, x in ipairs(order_rules(o, prefix, today)) do extra[#extra + 1] = x end
        if i > 1 and type(o) == "table" and type(list[1]) == "table" then
            for _, k in ipairs({ "MessageId", "CreationDateTime", "DebtorName" }) do
                if o[k] ~= nil and o[k] ~= list[1][k] then
                    extra[#extra + 1] = violation(prefix .. k, "enum", "must equal the first order's (one pain.001 message per call)")
                end
            end
        end
    end
    local ok, err = validate(schema, single and list[1] or list, what, extra)
    if not ok then return nil, err end
    local first = list[1]
    local created = first.CreationDateTime or utc_now()
    local payments = {}
    for i, o in ipairs(list) do payments[i] = payment_xml(o, i) end
    -- CtrlSum adds the amounts as written; with mixed currencies it is only a checksum.
    local total = 0
    for _, o in ipairs(list) do
        local a = assert(fields.amount(o.Amount, o.Currency))
        local int, frac = a:match("^(%d+)%.(%d%d)$")
        total = total + tonumber(int) * 100 + tonumber(frac)
    end
    return '<?xml version="1.0" encoding="UTF-8"?>'
        .. '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        .. el("CstmrCdtTrfInitn",
            el("GrpHdr", leaf("MsgId", first.MessageId), leaf("CreDtTm", created), leaf("NbOfTxs", tostring(#list)),
                leaf("CtrlSum", fields.decimal2(total)), el("InitgPty", leaf("Nm", first.DebtorName))),
            table.concat(payments))
        .. "</Document>"
end

--- trustpay.order_xml(order) / trustpay.orders_xml(orders) -> the
-- pain.001.001.03 document | nil, err (validation), as create_order and
-- create_orders send it (public in luapay.trustpay).
function payment_order.order_xml(order) return payment_order.document(order, true) end
function payment_order.orders_xml(orders) return payment_order.document(orders, false) end

return payment_order
