--- Runs inside nginx: dispatches each request by the longest matching path
-- prefix to a handler module's handle(path, config), and records each
-- request in the sandbox's journal (luapay.sandbox.journal).
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
    if module then
        -- A handler's error is kept for the journal, then raised as before
        -- (nginx logs it and answers 500).
        local ok, err = pcall(module.handle, path, router.config)
        if not ok then
            ngx.ctx.sandbox_error = tostring(err)
            error(err, 0)
        end
        return
    end
    ngx.status = 404
    ngx.header["Content-Type"] = "text/plain"
    ngx.say("no sandbox route for ", ngx.var.uri)
end

function router.log()
    local module, path = find(ngx.var.uri)
    if module and module.log then module.log(path, router.config) end
    require("luapay.sandbox.journal").request()
end

return router
