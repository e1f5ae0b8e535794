-- core.trustly_notification against the general path it stands in for
-- (core.json_decode with lexemes, core.trustly_verify, core.json_plain in
-- place), on the input as a whole notification and as the data of one whose
-- signature holds for data {}: what the C pass answers, the general path
-- answers the same; what it leaves (it returns nothing) is not checked here.
local core = require "luapay.core"
local trustly = require "luapay.trustly"
local read = require("support.util").read

local priv = assert(core.pkey(read("spec/fixtures/keys/merchant_private.pem")))
local pub = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))
local SIG = core.base64_encode(priv:sign("creditu", "sha1")) -- method .. uuid .. serialize({})
local LEXEMES = { numbers = "lexeme" }

local function pack(...) return { n = select("#", ...), ... } end
local function str(v) return type(v) == "string" and v or nil end

local function same(a, b)
    if type(a) ~= type(b) then return false end
    if type(a) == "number" then return a == b or (a ~= a and b ~= b) end
    if type(a) ~= "table" then return a == b end
    if getmetatable(a) ~= getmetatable(b) then return false end
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
end

local function general(raw)
    local doc = core.json_decode(raw, LEXEMES)
    local params = type(doc) == "table" and doc.params
    assert(type(params) == "table" and type(doc.method) == "string" and type(params.uuid) == "string"
        and type(params.signature) == "string", "the C pass took what is not a notification")
    local ok = core.trustly_verify(pub, doc.method, params.uuid, params.data, params.signature)
    if not ok then return ok end
    local data = params.data
    assert(select(2, core.json_plain(data, false, true)) == data)
    local currency = str(data.currency)
    local amount = currency and str(data.amount) and core.to_minor(data.amount, currency) or nil
    return true, doc.method, params.uuid, data, amount, currency, str(data.orderid), str(data.messageid),
        str(data.notificationid), str(data.enduserid)
end

local function check(raw)
    local fast = pack(core.trustly_notification(pub, raw, trustly.NOTIFICATION_PLAN))
    if fast.n == 0 then return end
    local slow = pack(general(raw))
    assert(fast[1] == slow[1], "the verdicts differ")
    if fast[1] ~= true then return assert(fast.n == 1) end
    for i = 2, 10 do assert(same(fast[i], slow[i]), "value " .. i .. " differs") end
end

return function(s)
    check(s)
    check('{"method":"credit","params":{"uuid":"u","signature":"' .. SIG .. '","data":' .. s .. '}}')
end
