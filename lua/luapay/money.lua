--- luapay.money: amounts shown as people read them. luapay's amounts are
-- integers in minor units with an ISO 4217 currency (2500 EUR is 25.00
-- EUR); this turns one into text with the currency's own exponent, digit
-- by digit in the core (core.to_decimal), never through a float.
local core = require "luapay.core"

local money = {}

--- money.format(minor, currency) -> text: the amount with as many decimals
-- as the currency has and its code after a space:
--     money.format(2500, "EUR")   --> "25.00 EUR"
--     money.format(2500, "JPY")   --> "2500 JPY"
--     money.format(2500, "KWD")   --> "2.500 KWD"
--     money.format(-1, "EUR")     --> "-0.01 EUR"  (a refund, a reversal)
-- Raises, naming the argument, for anything but an integer within 2^53
-- (a float subtype too, under Lua 5.4) and for a currency that is not an
-- active ISO 4217 code: what is shown is always an amount that exists.
function money.format(minor, currency)
    if type(minor) ~= "number" then
        error(("money.format: bad argument #1 'minor' (integer expected, got %s)"):format(type(minor)), 2)
    end
    if type(currency) ~= "string" then
        error(("money.format: bad argument #2 'currency' (string expected, got %s)"):format(type(currency)), 2)
    end
    if core.currency(currency) == nil then
        error(("money.format: bad argument #2 'currency' (%q is not an active ISO 4217 code)"):format(currency), 2)
    end
    -- -minor is exact: |minor| <= 2^53 is checked by to_decimal, and a
    -- larger negative comes back beyond 2^53 (or math.mininteger negative)
    local text, err = core.to_decimal(minor < 0 and -minor or minor, currency)
    if text == nil or (minor < 0 and -minor < 0) then
        err = tostring(err or "amount beyond 2^53 minor units"):gsub("^to_decimal: ", "")
        error(("money.format: bad argument #1 'minor' (%s)"):format(err), 2)
    end
    return (minor < 0 and "-" or "") .. text .. " " .. currency
end

return money
