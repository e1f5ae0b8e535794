--- The provider fakes the sandbox can host, each mounted at /<name>/: one
-- per provider in the registry (luapay.providers), in luapay.sandbox.<name>.
-- A fake module may offer describe(base_url) -> {base_url, credentials}
-- so the `luapay` command and the REPL can configure a client for it.
local registry = require "luapay.providers"

local providers = {}

-- The registry's names (kept here too: scripts and specs read it).
providers.NAMES = registry.NAMES

local function module_of(name)
    return "luapay.sandbox." .. name
end

--- The fakes present in this installation, in the order of NAMES.
function providers.available()
    local list = {}
    for _, name in ipairs(providers.NAMES) do
        if registry.installed(module_of(name)) then list[#list + 1] = name end
    end
    return list
end

--- Routes for sandbox.start hosting every available fake, and the
-- sandbox's own JSON API at /_sandbox/ (luapay.sandbox.journal).
function providers.routes()
    local routes = { ["/_sandbox/"] = "luapay.sandbox.journal" }
    for _, name in ipairs(providers.available()) do routes["/" .. name .. "/"] = module_of(name) end
    return routes
end

--- What a client needs to talk to the fake of `name` in sandbox `sb`.
function providers.describe(name, sb)
    local base_url = sb.url .. "/" .. name
    local fake = require(module_of(name))
    if fake.describe then return fake.describe(base_url, sb) end
    return { base_url = base_url, credentials = {} }
end

return providers
