--- A real browser for the specs: Debian's chromium, headless, driven through
-- the Chrome DevTools Protocol over --remote-debugging-pipe (JSON messages
-- ended by NUL on file descriptors 3 and 4, here two FIFOs), so neither a
-- websocket client nor an npm package is needed. Clicks and typing are real
-- input events (Input.dispatchMouseEvent, Input.insertText); JavaScript is
-- only used to read the page and to find where an element is.
--
--   local b = browser.start { ports = { sb.port } }
--   b:open(url)                    -- a new tab, waits until it has loaded
--   b:click('button[value="approve"]'); b:wait_url("^https://shop/ok")
--   b:type('input[name="customer_email"]', "a@b.example")
--   b:page() --> { url, title, text, html }
--   b:close()
local cjson = require "cjson"
local core = require "luapay.core"

local browser = {}
local Browser = {}
Browser.__index = Browser

-- The browser is not for a test process's sanitizer runtime.
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "
local TIMEOUT = 20 -- seconds for one page to load or one condition to hold

local function sh(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function capture(cmd)
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    return (out:gsub("%s+$", ""))
end

--- The chromium binary, or nil (scripts/setup.sh installs Debian's chromium).
function browser.binary()
    local path = capture("command -v chromium 2>/dev/null")
    return path ~= "" and path or nil
end

--- Starts a headless chromium. opts.ports: loopback ports to allow even if
-- chromium counts them unsafe (the sandbox's ports are random).
function browser.start(opts)
    opts = opts or {}
    local bin = assert(browser.binary(), "chromium is not installed (scripts/setup.sh installs it)")
    local dir = capture(CLEAN_ENV .. "mktemp -d /tmp/luapay-browser.XXXXXX")
    assert(os.execute(CLEAN_ENV .. "mkfifo " .. sh(dir .. "/in") .. " " .. sh(dir .. "/out")))
    local ports = {}
    for i, p in ipairs(opts.ports or {}) do ports[i] = tostring(p) end
    local args = {
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-proxy-server", "--remote-debugging-pipe",
        "--user-data-dir=" .. dir .. "/profile",
        #ports > 0 and ("--explicitly-allowed-ports=" .. table.concat(ports, ",")) or nil,
    }
    -- chromium reads commands on fd 3 and writes answers on fd 4; `timeout`
    -- ends it if a spec never does.
    -- (the log first, in its own exec: opening a FIFO blocks until this
    -- process opens the other end, and popen's pipe must be let go by then)
    local cmd = ("(exec </dev/null >%s 2>&1; exec %stimeout 120 %s %s 3<%s 4>%s) & echo $!"):format(
        sh(dir .. "/log"), CLEAN_ENV, sh(bin), table.concat(args, " "), sh(dir .. "/in"), sh(dir .. "/out"))
    local pid = capture(cmd)
    local self = setmetatable({ dir = dir, pid = pid, id = 0 }, Browser)
    self.w = assert(io.open(dir .. "/in", "w")) -- in the order the shell opens them
    self.r = assert(io.open(dir .. "/out", "r"))
    return self
end

function Browser:log()
    local f = io.open(self.dir .. "/log", "r")
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
end

local function read_message(self)
    local buf = {}
    while true do
        local ch = self.r:read(1)
        if not ch then error("the browser went away:\n" .. self:log(), 3) end
        if ch == "\0" then return cjson.decode(table.concat(buf)) end
        buf[#buf + 1] = ch
    end
end

--- One DevTools command; returns its result, or nil and the error message.
function Browser:call(method, params, session)
    self.id = self.id + 1
    local msg = { id = self.id, method = method, params = params }
    if session ~= false then msg.sessionId = session or self.session end -- false: the browser itself
    self.w:write(cjson.encode(msg), "\0")
    self.w:flush()
    while true do
        local m = read_message(self)
        if m.id == self.id then
            if m.error then return nil, m.error.message end
            return m.result
        end
    end
end

local function must(res, err)
    if res == nil then error(err, 2) end
    return res
end

--- The value of a JavaScript expression in the tab (nil while the tab is
-- between two pages).
function Browser:eval(expression)
    local res = self:call("Runtime.evaluate", { expression = expression, returnByValue = true })
    if not res or res.exceptionDetails then return nil end
    local v = res.result.value
    if v == cjson.null then return nil end
    return v
end

--- Waits until the expression is truthy; returns its value.
function Browser:wait(expression, what)
    local deadline = core.monotime() + TIMEOUT
    repeat
        local v = self:eval(expression)
        if v then return v end
        core.sleep(0.05)
    until core.monotime() > deadline
    error(("browser: waited %ds for %s; the page is %s"):format(TIMEOUT, what or expression,
        cjson.encode(self:page() or {})), 2)
end

local LOADED = "document.readyState === 'complete' && location.href !== 'about:blank'"

--- Opens url in a new tab and waits until it has loaded.
function Browser:open(url)
    if self.target then self:call("Target.closeTarget", { targetId = self.target }, false) end
    local target = must(self:call("Target.createTarget", { url = "about:blank" }, false))
    self.target = target.targetId
    self.session = must(self:call("Target.attachToTarget", { targetId = target.targetId, flatten = true }, false)).sessionId
    must(self:call("Page.navigate", { url = url }))
    self:wait(LOADED, "the page to load")
    return self:page()
end

--- What the tab shows: url, title, text (as rendered), html.
function Browser:page()
    local s = self:eval("document.readyState === 'complete' && JSON.stringify({ url: location.href, title: document.title, "
        .. "text: document.body ? document.body.innerText : '', html: document.documentElement.outerHTML })")
    return s and cjson.decode(s) or nil
end

--- Waits until the tab has loaded a URL matching the Lua pattern.
function Browser:wait_url(pattern)
    local deadline = core.monotime() + TIMEOUT
    repeat
        local p = self:page()
        if p and p.url:find(pattern) then return p end
        core.sleep(0.05)
    until core.monotime() > deadline
    error(("browser: waited %ds for a URL matching %q; the page is %s"):format(TIMEOUT, pattern,
        cjson.encode(self:page() or {})), 2)
end

--- A left click in the middle of the element the CSS selector finds.
function Browser:click(selector)
    local at = self:eval(("(() => { const e = document.querySelector(%s); if (!e) return null; "
        .. "e.scrollIntoView({ block: 'center' }); const r = e.getBoundingClientRect(); "
        .. "return [r.left + r.width / 2, r.top + r.height / 2]; })()"):format(cjson.encode(selector)))
    if not at then error("browser: nothing on the page matches " .. selector, 2) end
    for _, kind in ipairs { "mousePressed", "mouseReleased" } do
        must(self:call("Input.dispatchMouseEvent",
            { type = kind, x = at[1], y = at[2], button = "left", clickCount = 1 }))
    end
end

--- Clicks into the field and types the text.
function Browser:type(selector, text)
    self:click(selector)
    must(self:call("Input.insertText", { text = text }))
end

function Browser:close()
    if self.w then
        pcall(self.call, self, "Browser.close", nil, false)
        self.w:close()
        self.r:close()
        self.w, self.r = nil, nil
    end
    -- `timeout` passes the TERM on to chromium; the profile goes once it has exited
    os.execute(("kill %s 2>/dev/null; for i in $(seq 50); do kill -0 %s 2>/dev/null || break; sleep 0.1; done; rm -rf %s")
        :format(self.pid, self.pid, sh(self.dir)))
end

return browser
