-- wrk script for the trading-api benchmark (bench/run.sh runs it; it also works alone).
--
--   BENCH_TOKENS=.bench-run/bench/tokens.txt wrk -t2 -c100 -d15s --latency -s bench/mixed.lua http://127.0.0.1:28180
--
-- Every request is a random one of the users in BENCH_TOKENS (one JWT per line, one line per
-- user) with that user's own token, to one endpoint picked by weight:
--   BENCH_ENDPOINT unset or "mixed": reconciliation/status 50 %, positions/open 30 %,
--                                     guards/status 20 %
--   BENCH_ENDPOINT=status | open | guards: that endpoint alone
-- The same script drives the ceiling (a fixed `return 200` body in nginx), so the client does
-- the same work in both.
--
-- response() counts non-2xx responses and the X-Cache values the client saw (a cross-check of
-- the access log). done() prints one machine-readable line:
--   BENCH_SUMMARY {"requests":…,"duration_us":…,"rps":…,"bytes":…,
--                  "latency_us":{"p50":…,"p90":…,"p99":…,"max":…,"mean":…,"stdev":…},
--                  "non2xx":…,"status":{"200":…,…},"x_cache":{"HIT":…,"MISS":…,"BYPASS":…,"none":…},
--                  "socket_errors":{"connect":…,"read":…,"write":…,"timeout":…},"wrk_status_errors":…}

local ENDPOINTS = {
    status = "/api/v1/reconciliation/status",
    open   = "/api/v1/positions/open",
    guards = "/api/v1/guards/status",
}
local MIX = { { "status", 50 }, { "open", 30 }, { "guards", 20 } }

-- ---------------------------------------------------------------------------------------------
-- Main state: one Lua state per thread plus this one; setup() and done() run here.

local threads = {}
local thread_counter = 0

function setup(thread)
    thread_counter = thread_counter + 1
    thread:set("thread_id", thread_counter)
    table.insert(threads, thread)
end

-- ---------------------------------------------------------------------------------------------
-- Per-thread state (each thread runs this file in its own Lua state).

local tokens = {}
local auth = {}            -- pre-built "Bearer <token>" strings
local requests_by_path = {} -- pre-built requests, per endpoint and user: built once, sent many times
local paths = {}           -- weighted list of endpoint names (100 entries)

local function load_tokens()
    local file = os.getenv("BENCH_TOKENS") or ".bench-run/bench/tokens.txt"
    local f = io.open(file, "r")
    if f == nil then
        io.stderr:write("mixed.lua: cannot open BENCH_TOKENS file " .. file .. "\n")
        os.exit(2)
    end
    for line in f:lines() do
        local tok = line:match("^%s*(%S+)%s*$")
        if tok ~= nil then table.insert(tokens, tok) end
    end
    f:close()
    if #tokens == 0 then
        io.stderr:write("mixed.lua: no tokens in " .. file .. "\n")
        os.exit(2)
    end
end

local function build_mix()
    local which = os.getenv("BENCH_ENDPOINT") or "mixed"
    if which == "" or which == "mixed" then
        for _, entry in ipairs(MIX) do
            for _ = 1, entry[2] do table.insert(paths, entry[1]) end
        end
    elseif ENDPOINTS[which] ~= nil then
        table.insert(paths, which)
    else
        io.stderr:write("mixed.lua: BENCH_ENDPOINT must be mixed, status, open or guards (got " .. which .. ")\n")
        os.exit(2)
    end
end

load_tokens()
build_mix()

-- counters of this thread, read by done() through thread:get()
non2xx = 0
status_counts = {}
xcache_hit, xcache_miss, xcache_bypass, xcache_none = 0, 0, 0, 0

function init(args)
    local id = thread_id or 1
    math.randomseed(os.time() * 1000 + id * 7919)
    for _ = 1, 10 do math.random() end
    for name, path in pairs(ENDPOINTS) do
        local reqs = {}
        for i, tok in ipairs(tokens) do
            reqs[i] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tok })
        end
        requests_by_path[name] = reqs
    end
end

function request()
    local name = paths[math.random(#paths)]
    local reqs = requests_by_path[name]
    return reqs[math.random(#reqs)]
end

function response(status, headers, body)
    if status < 200 or status > 299 then non2xx = non2xx + 1 end
    local key = tostring(status)
    status_counts[key] = (status_counts[key] or 0) + 1
    local xc = headers["X-Cache"] or headers["x-cache"]
    if xc == "HIT" then
        xcache_hit = xcache_hit + 1
    elseif xc == "MISS" then
        xcache_miss = xcache_miss + 1
    elseif xc == "BYPASS" then
        xcache_bypass = xcache_bypass + 1
    else
        xcache_none = xcache_none + 1
    end
end

-- ---------------------------------------------------------------------------------------------
-- Summary (main state)

local function json_table(t)
    local parts = {}
    for k, v in pairs(t) do
        table.insert(parts, string.format("%q:%d", tostring(k), v))
    end
    table.sort(parts)
    return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
    local total_non2xx, statuses = 0, {}
    local xc = { HIT = 0, MISS = 0, BYPASS = 0, none = 0 }
    for _, thread in ipairs(threads) do
        total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
        local sc = thread:get("status_counts") or {}
        for k, v in pairs(sc) do statuses[k] = (statuses[k] or 0) + v end
        xc.HIT = xc.HIT + (thread:get("xcache_hit") or 0)
        xc.MISS = xc.MISS + (thread:get("xcache_miss") or 0)
        xc.BYPASS = xc.BYPASS + (thread:get("xcache_bypass") or 0)
        xc.none = xc.none + (thread:get("xcache_none") or 0)
    end
    local duration_s = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        'BENCH_SUMMARY {"requests":%d,"duration_us":%d,"rps":%.2f,"bytes":%d,'
        .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f,"stdev":%.1f},'
        .. '"non2xx":%d,"status":%s,"x_cache":%s,'
        .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"wrk_status_errors":%d}\n',
        summary.requests, summary.duration, summary.requests / duration_s, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, latency.stdev,
        total_non2xx, json_table(statuses), json_table(xc),
        e.connect, e.read, e.write, e.timeout, e.status))
end
