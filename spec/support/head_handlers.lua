--- Raw response heads for spec 74 (the cosocket transport's head parsing
-- over random heads): /h/raw sends an answer's bytes as they are; /h/run
-- sends a list of requests through the cosocket transport inside nginx and
-- answers with what each gave (heads.observe), as JSON.
local core = require "luapay.core"

local H = {}

--- heads.observe(transport, req) -> one plain, JSON-safe description of
-- what transport:request(req) did: raised, error, or response, with the
-- elapsed time. Names, values and body are hex (they may be any bytes).
function H.observe(transport, req, now)
    local started = now()
    local ok, res, err = pcall(transport.request, transport, req)
    local out = { elapsed = now() - started }
    if not ok then
        out.raised = tostring(res)
    elseif res then
        local names = {}
        for name in pairs(res.headers) do names[#names + 1] = name end
        table.sort(names)
        local lines = {}
        for _, name in ipairs(names) do
            local v = res.headers[name]
            for _, x in ipairs(type(v) == "table" and v or { v }) do lines[#lines + 1] = name .. ": " .. x end
        end
        out.status, out.body_bytes = res.status, #res.body
        out.head = core.hex_encode(table.concat(lines, "\n"))
        out.body = core.hex_encode(res.body)
    else
        out.type, out.message = err.type, err.message
    end
    return out
end

-- /h/raw?a=<base64 answer>&s=<seconds>: the answer, then s seconds of
-- silence before closing.
function H.raw()
    local args = ngx.req.get_uri_args()
    local answer = assert(core.base64_decode(args.a or ""))
    local sock = assert(ngx.req.socket(true))
    if sock:send(answer) and tonumber(args.s or 0) > 0 then ngx.sleep(tonumber(args.s)) end
end

-- /h/run (POST, a JSON list of requests): each through a new cosocket transport.
function H.run()
    ngx.req.read_body()
    local reqs = assert(core.json_decode(ngx.req.get_body_data()))
    local cosocket = require "luapay.http.cosocket"
    local function now() ngx.update_time(); return ngx.now() end
    local out = {}
    for i, req in ipairs(reqs) do
        local t = cosocket.new()
        out[i] = H.observe(t, req, now)
        t:close()
    end
    ngx.header["Content-Type"] = "application/json"
    ngx.print(assert(core.json_encode(setmetatable(out, core.array_mt))))
end

function H.handle(path)
    local f = ({ raw = H.raw, run = H.run })[path:match("^([^/]+)")]
    if not f then return ngx.exit(404) end
    return f()
end

return H
