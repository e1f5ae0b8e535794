--- Runs inside the sandbox's nginx: dispatches each request by the longest
-- matching path prefix to a handler module's handle(path, config).
local router = {}

local routes = {}
router.config = {}

function router.init(conf)
    router.config = conf.config or {}
    router.config.ports = conf.ports
    routes = {}
    for prefix, module in pairs(conf.routes or {}) do
        routes[#routes + 1] = { prefix = prefix, module = module }
        require(module) -- load in the master: a broken handler fails the start
    end
    table.sort(routes, function(a, b) return #a.prefix > #b.prefix end)
end

local function find(uri)
    for _, r in ipairs(routes) do
        if uri:sub(1, #r.prefix) == r.prefix then return require(r.module), uri:sub(#r.prefix + 1) end
    end
end

function router.handle()
    local module, path = find(ngx.var.uri)
    if module then return module.handle(path, router.config) end
    ngx.status = 404
    ngx.header["Content-Type"] = "text/plain"
    ngx.say("no sandbox route for ", ngx.var.uri)
end

function router.log()
    local module, path = find(ngx.var.uri)
    if module and module.log then module.log(path, router.config) end
end

return router
