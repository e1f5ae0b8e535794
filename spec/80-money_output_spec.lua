-- What people read shows money as money ("25.00 EUR", not "2500 EUR"):
-- the command's readable output on a terminal. What scripts read (--json,
-- a pipe) keeps amounts as integers in minor units.
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"

local SECRET = "luapay-ecommpay-sandbox-secret"
local ENV = "LUAPAY_CONFIG=/nonexistent LUAPAY_ECOMMPAY_PROJECT_ID=1625 LUAPAY_ECOMMPAY_SECRET=" .. SECRET

local function callback_file(amount, currency)
    local body = { payment = { id = "p-1", status = "success", amount = amount, currency = currency },
        operation = { type = "sale", status = "success", sum_initial = { amount = amount, currency = currency } },
        project_id = 1625 }
    body.signature = ecommpay.signature(body, SECRET)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(core.json_encode(body))
    f:close()
    return path
end

-- On a pseudo-terminal (util-linux's script), as someone typing it.
local function on_terminal(args)
    local p = io.popen(("env -u LD_PRELOAD NO_COLOR=1 %s script -qec %q /dev/null </dev/null"):format(ENV, "bin/luapay " .. args))
    local out = p:read("*a")
    p:close()
    return (out:gsub("\r\n", "\n"))
end

local function piped(args)
    local p = io.popen(("env -u LD_PRELOAD %s bin/luapay %s </dev/null"):format(ENV, args))
    local out = p:read("*a")
    p:close()
    return out
end

describe("the luapay command's readable output", function()
    it("shows an event's amount as money with the currency's decimals next to the integer", function()
        for _, case in ipairs { { 2500, "EUR", "25.00 EUR" }, { 2500, "KWD", "2.500 KWD" }, { 2500, "JPY", "2500 JPY" } } do
            local file = callback_file(case[1], case[2])
            finally(function() os.remove(file) end)
            local out = on_terminal("verify ecommpay " .. file)
            assert.truthy(out:find("\n  amount = 2500, -- " .. case[3] .. "\n", 1, true), out)
            assert.truthy(out:find('\n  currency = "' .. case[2] .. '",\n', 1, true), out)
        end
    end)

    it("keeps amounts integers in minor units in JSON", function()
        local file = callback_file(2500, "EUR")
        finally(function() os.remove(file) end)
        local out = on_terminal("verify ecommpay --json " .. file)
        assert.equal(2500, core.json_decode(out).amount)
        assert.is_nil(out:find("25.00", 1, true), out)
        out = piped("verify ecommpay " .. file)
        assert.equal(2500, core.json_decode(out).amount)
        assert.is_nil(out:find("25.00", 1, true), out)
    end)
end)
