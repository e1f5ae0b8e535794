--- luapay.sandbox.events: the notifications each fake can be made to send
-- (`luapay trigger`, POST /_sandbox/trigger). Each fake lists its own in
-- EVENTS (built with events.list), plain data the command reads without
-- a sandbox and the fake uses inside nginx.
--
-- An event is {name, on, means, doc, action}: on is the kind of operation
-- it acts on ("payment", "refund" or "payout"; given no id, the fake
-- creates one), means what the provider's client:notification reads from
-- it ("<kind> <status>", or "unsupported": signed, but luapay does not
-- interpret it), doc what it is in the provider's words, and action the
-- button of the sandbox's page that sends it, if any (one of ACTIONS).
local events = {}

--- The page's buttons, the same for every provider: approve or decline a
-- payment, fail a refund, reverse a payout.
events.ACTIONS = { "approve", "decline", "fail_refund", "reverse_payout" }

--- events.list{ {name, on, means, doc [, action]}, ... } -> EVENTS.
function events.list(t)
    local out = {}
    for i, e in ipairs(t) do out[i] = { name = e[1], on = e[2], means = e[3], doc = e[4], action = e[5] } end
    return out
end

local function names()
    return require("luapay.sandbox.providers").available()
end

--- events.of(provider) -> its EVENTS, or nil when it has no fake (or none
-- that sends notifications).
function events.of(provider)
    for _, name in ipairs(names()) do
        if name == provider then return require("luapay.sandbox." .. name).EVENTS end
    end
end

--- events.all() -> {provider = EVENTS} for every fake that has some, and
-- the providers in order.
function events.all()
    local all, order = {}, {}
    for _, name in ipairs(names()) do
        local list = events.of(name)
        if list then
            all[name] = list
            order[#order + 1] = name
        end
    end
    return all, order
end

--- events.find(provider, name) -> the event, or nil and a message naming
-- the choices. name may be one of ACTIONS.
function events.find(provider, name)
    local all, order = events.all()
    local list = all[provider]
    if not list then
        return nil, ("unknown provider '%s' (%s)"):format(tostring(provider), table.concat(order, ", "))
    end
    local choices = {}
    for _, e in ipairs(list) do
        if e.name == name or (e.action ~= nil and e.action == name) then return e end
        choices[#choices + 1] = e.name
    end
    for _, e in ipairs(list) do
        if e.action then choices[#choices + 1] = e.action end
    end
    return nil, ("unknown %s event '%s' (%s)"):format(provider, tostring(name), table.concat(choices, ", "))
end

return events
