--- luapay.providers: the one list of the providers luapay speaks.
-- `require "luapay"` loads each listed provider lazily (luapay.<name>);
-- the sandbox hosts its fake (luapay.sandbox.<name>) at /<name>/; the
-- `luapay` command and the REPL load its adapter (luapay.cli.<name>).
-- Everything else about a provider lives in those files; this list only
-- says which providers exist and in which order they are shown.
-- spec/00-packaging_spec.lua checks that the files, the rockspec and
-- `require "luapay"` agree with it (ARCHITECTURE.md, "Adding a provider").
local providers = {}

--- The providers, one line each: name (the module under luapay., the
-- sandbox path, the command's word with "_" typed as "-") and title (how
-- people write it).
-- @table LIST
providers.LIST = {
    { name = "ecommpay", title = "ecommpay" },
    { name = "trustly", title = "Trustly" },
    { name = "trustpay", title = "TrustPay" },
    { name = "begateway", title = "beGateway" },
    { name = "trustly_na", title = "Trustly NA" },
}

--- The providers' names, in the order of LIST.
-- @table NAMES
providers.NAMES = {}

--- name -> its entry in LIST.
-- @table BY_NAME
providers.BY_NAME = {}

for i, entry in ipairs(providers.LIST) do
    providers.NAMES[i] = entry.name
    providers.BY_NAME[entry.name] = entry
end

--- providers.module(name) -> "luapay.<name>", or nil for a name not listed.
function providers.module(name)
    if providers.BY_NAME[name] then return "luapay." .. name end
    return nil
end

--- providers.installed(module) -> whether `require(module)` finds it as a
-- Lua file on package.path (an installation may leave a fake or an adapter
-- out). package.searchpath where there is one; Lua 5.1 has none.
function providers.installed(module)
    if package.searchpath then return package.searchpath(module, package.path) ~= nil end
    local file = module:gsub("%.", "/")
    for template in package.path:gmatch("[^;]+") do
        local f = io.open((template:gsub("%?", file)), "r")
        if f then
            f:close()
            return true
        end
    end
    return false
end

return providers
