local luapay = require "luapay"
local errors = require "luapay.errors"
local util = require "support.util"

describe("require 'luapay'", function()
    it("gives the version, the core and the error helpers", function()
        assert.matches("^%d+%.%d+%.%d+$", luapay.VERSION)
        assert.equal(require "luapay.core", luapay.core)
        assert.equal(errors, luapay.errors)
    end)

    it("loads a provider module only when it is first used", function()
        -- a fresh interpreter: this one has loaded the providers already
        local script = [[
            local luapay = require "luapay"
            local before = package.loaded["luapay.trustly"] ~= nil or package.loaded["luapay.ecommpay"] ~= nil
            local t = luapay.trustly
            io.write(tostring(before), " ", tostring(t == require "luapay.trustly"), " ",
                tostring(rawget(luapay, "trustly") == t), " ", tostring(package.loaded["luapay.ecommpay"] ~= nil), " ",
                tostring(luapay.no_such_thing))
        ]]
        local build = util.PLAIN_BUILD
        local p = io.popen(("env -u LD_PRELOAD LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' %s -e %q"):format(
            build, util.LUA, script))
        local out = p:read("*a")
        p:close()
        -- nothing loaded up front; trustly on first use, cached; ecommpay still not loaded
        assert.equal("false true true false nil", out)
    end)
end)

describe("luapay.errors", function()
    it("builds typed errors with the DESIGN.md fields", function()
        local e = errors.new("provider", "invalid credentials",
            { http_status = 200, code = 616, request_id = "r-1", retryable = false })
        assert.equal("provider", e.type)
        assert.equal("invalid credentials", e.message)
        assert.equal(616, e.code)
        assert.is_true(errors.is(e))
        assert.is_true(errors.is(e, "provider"))
        assert.is_false(errors.is(e, "network"))
        assert.is_false(errors.is({ type = "provider" }))
        assert.equal("luapay provider error: invalid credentials (HTTP 200, code 616, request r-1)", tostring(e))
    end)

    it("lists the violations of a validation error in its text", function()
        local e = errors.new("validation", "2 invalid fields", { fields = {
            { path = "customer.email", code = "format", message = "customer.email: not an e-mail address" },
            { path = "amount", code = "type" },
        } })
        assert.equal("luapay validation error: 2 invalid fields [customer.email: not an e-mail address; amount: type]",
            tostring(e))
    end)

    it("refuses an unknown error type (a programming error)", function()
        assert.has_error(function() errors.new("oops", "x") end,
            "errors.new: bad argument #1 'type' (unknown error type 'oops')")
    end)

    it("redacts every occurrence of each secret, even with pattern characters", function()
        local text = "login user:p4ss%w(x) failed for p4ss%w(x) with token abc"
        assert.equal("login user:[REDACTED] failed for [REDACTED] with token [REDACTED]",
            errors.redact(text, { "p4ss%w(x)", "abc", "" }))
    end)

    it("masks secret-named keys at any depth and leaves the original alone", function()
        local cfg = { username = "u", Password = "pw", banking = { client_secret = "cs", ["Access-Key"] = "k" },
            private_key = "-----BEGIN", list = { { token = "t" } } }
        cfg.self = cfg
        local m = errors.mask(cfg)
        assert.equal("u", m.username)
        assert.equal("***", m.Password)
        assert.equal("***", m.banking.client_secret)
        assert.equal("***", m.banking["Access-Key"])
        assert.equal("***", m.private_key)
        assert.equal("***", m.list[1].token)
        assert.equal(m, m.self)
        assert.equal("pw", cfg.Password)
    end)
end)

describe("errors.sort_fields", function()
    it("orders violations as core.validate does", function()
        local core = require "luapay.core"
        local schema = core.schema{ type = "object", fields = {
            account = { type = "object", required = true, fields = { number = { type = "string", required = true } } },
            account_id = { type = "integer", required = true },
            items = { type = "array", items = { type = "integer" } },
        } }
        local items = {}
        for i = 1, 11 do items[i] = "x" end
        local _, violations = schema:validate{ account = {}, items = items }
        local shuffled = {}
        for i = #violations, 1, -1 do shuffled[#shuffled + 1] = violations[i] end
        errors.sort_fields(shuffled)
        local order, expected = {}, {}
        for i, v in ipairs(shuffled) do order[i], expected[i] = v.path .. "/" .. v.code, violations[i].path .. "/" .. violations[i].code end
        assert.same(expected, order)
        assert.equal("account.number", shuffled[1].path)
        assert.equal("items[2]", shuffled[4].path)
        assert.equal("items[10]", shuffled[12].path)
    end)
end)
