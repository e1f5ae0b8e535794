-- core.check on untrusted strings for every string type of the validator
-- (csrc/validate.c): an answer, true or nil with a message and a code,
-- the same as a compiled schema's, and the same twice.
local core = require "luapay.core"

local TYPES = { "string", "enum", "decimal", "currency", "country", "language", "locale", "iban", "bic", "email",
    "url", "date", "datetime", "ip", "ipv4", "ipv6" }
local OPTS = { enum = { values = { "C", "R", "U" } }, decimal = { decimals = 2 },
    string = { pattern = "^[A-Z][a-z0-9 -]{0,20}$", max_len = 30 } }
local schemas = {}

return function(s)
    if #s == 0 then return end
    local t = TYPES[s:byte(1) % #TYPES + 1]
    local value = s:sub(2)
    local ok, msg, code = core.check(t, value, OPTS[t])
    assert(ok == true or (ok == nil and type(msg) == "string" and type(code) == "string"), "not an answer")
    local again = core.check(t, value, OPTS[t])
    assert(again == ok, "another answer the second time")
    local opts = { type = "object", fields = { v = { type = t } } }
    for k, x in pairs(OPTS[t] or {}) do opts.fields.v[k] = x end
    schemas[t] = schemas[t] or core.schema(opts)
    local sok = schemas[t]:validate({ v = value })
    assert((sok == true) == (ok == true), "a schema answers otherwise")
end
