--- luapay: payments for Lua. `require "luapay"` gives the core, the error
-- helpers and the providers; a provider module is loaded on first use, so a
-- merchant who only needs Trustly never loads the others.
local core = require "luapay.core"
local errors = require "luapay.errors"
local money = require "luapay.money"
local providers = require "luapay.providers"

--- What `require "luapay"` returns.
-- @field VERSION the library's version, "0.1.0"
-- @field core luapay.core, the C core (README.md, "The core")
-- @field errors luapay.errors
-- @field money luapay.money, amounts as text: money.format(2500, "EUR") is "25.00 EUR"
-- @field http luapay.http, loaded on first use
-- @field ecommpay luapay.ecommpay, loaded on first use
-- @field trustly luapay.trustly, loaded on first use
-- @field trustpay luapay.trustpay, loaded on first use
-- @field begateway luapay.begateway, loaded on first use
-- @field trustly_na luapay.trustly_na, loaded on first use
-- (and every other provider in luapay.providers, the same way)
-- @table luapay
local luapay = {
    VERSION = "0.1.0",
    core = core,
    errors = errors,
    money = money,
}

-- Loaded on first use: the pipeline and every registered provider.
local lazy = { http = "luapay.http" }
for _, name in ipairs(providers.NAMES) do lazy[name] = providers.module(name) end

return setmetatable(luapay, {
    __index = function(t, name)
        local module = lazy[name]
        if module == nil then return nil end
        local loaded = require(module)
        rawset(t, name, loaded)
        return loaded
    end,
})
