--- luapay.pretty: values as readable Lua-like text for the REPL and the
-- command line: nested tables indented, keys sorted, arrays in order,
-- secrets masked (luapay.errors.mask and errors.hide), cycles shown once.
local core = require "luapay.core"
local errors = require "luapay.errors"
local money = require "luapay.money"
local provider = require "luapay.provider"

local pretty = {}

local IDENT = "^[%a_][%w_]*$"
local KEYWORDS = {
    ["and"] = true, ["break"] = true, ["do"] = true, ["else"] = true, ["elseif"] = true, ["end"] = true,
    ["false"] = true, ["for"] = true, ["function"] = true, ["goto"] = true, ["if"] = true, ["in"] = true,
    ["local"] = true, ["nil"] = true, ["not"] = true, ["or"] = true, ["repeat"] = true, ["return"] = true,
    ["then"] = true, ["true"] = true, ["until"] = true, ["while"] = true,
}

local function key_order(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta == "number" end -- array part first
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
end

local function scalar(v)
    local t = type(v)
    if t == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
    -- an integer; without integer subtypes (LuaJIT, Lua 5.1 and 5.2) a whole
    -- number within 2^53, so that amounts print alike under every Lua
    if t == "number" and provider.is_integer(v) then return provider.digits(v) end
    if t == "number" then return ("%.17g"):format(v):gsub("^(%-?%d+)$", "%1.0") end
    if v == core.null then return "null" end
    return tostring(v)
end

-- The amount of a table with an integer amount and a known currency (an
-- event, a transaction) as money, for the comment after it: "25.00 EUR".
local function amount_as_money(t, k)
    local currency = rawget(t, "currency")
    if k ~= "amount" or not provider.is_integer(t[k]) or type(currency) ~= "string" then return nil end
    if core.currency(currency) == nil or math.abs(t[k]) > 2 ^ 53 then return nil end
    return money.format(t[k], currency)
end

local function render(v, indent, seen, out, depth, as_money)
    if type(v) ~= "table" or getmetatable(v) and getmetatable(v).__tostring then
        out[#out + 1] = (scalar(v))
        return
    end
    if seen[v] then
        out[#out + 1] = "<cycle>"
        return
    end
    if depth > 12 then
        out[#out + 1] = "{...}"
        return
    end
    seen[v] = true
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, key_order)
    if #keys == 0 then
        out[#out + 1] = "{}"
        seen[v] = nil
        return
    end
    local n = #v
    local inner = indent .. "  "
    out[#out + 1] = "{\n"
    for _, k in ipairs(keys) do
        out[#out + 1] = inner
        if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then
            if type(k) == "string" and k:match(IDENT) and not KEYWORDS[k] then
                out[#out + 1] = k
            else
                out[#out + 1] = "[" .. (scalar(k)) .. "]"
            end
            out[#out + 1] = " = "
        end
        render(v[k], inner, seen, out, depth + 1, as_money)
        local shown = as_money and amount_as_money(v, k)
        out[#out + 1] = shown and ", -- " .. shown .. "\n" or ",\n"
    end
    out[#out + 1] = indent .. "}"
    seen[v] = nil
end

--- pretty.format(value [, opts]) -> text, with secrets masked: secret-named
-- keys show "***", and no client's secret shows in any form (errors.mask; a
-- client or an error shows as its tostring, which hides them too).
-- opts.money: an integer amount next to a known currency gets the amount
-- as money in a comment, `amount = 2500, -- 25.00 EUR` (the command's
-- readable output).
function pretty.format(value, opts)
    local out = {}
    render(errors.mask(value), "", {}, out, 0, opts ~= nil and opts.money)
    return errors.hide(table.concat(out))
end

--- pretty.print(...): each value formatted, tab-separated like print.
function pretty.print(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = pretty.format((select(i, ...))) end
    print(table.concat(parts, "\t"))
end

return pretty
