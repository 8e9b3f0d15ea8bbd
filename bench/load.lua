-- The wrk driver of the benchmark (bench/run.sh) and of the fault suite (Tests/Faults/load.py).
--
--   LOAD_REQUESTS=requests.txt wrk -t2 -c100 -d15s --latency -s bench/load.lua http://127.0.0.1:28180
--
-- LOAD_REQUESTS names a file of requests, one per line: "PATH TOKEN", a GET of PATH (with its
-- query) carrying "Authorization: Bearer TOKEN". A request's share of the load is its share of
-- the lines, so a weighted mix is written as repeated lines.
--   LOAD_ORDER=random (default)  every request is a line picked at random
--   LOAD_ORDER=cycle             each thread walks the lines in order, from its own offset
--   LOAD_CLOSE=1                 "Connection: close" on every request (a connection per request)
--
-- response() counts every status and every X-Cache value ("none" when absent), and for answers
-- of 300 and above: JSON error bodies, 503 "unavailable" bodies, and the first few bodies as
-- samples. done() prints one line, which bench/reporting/summary.py reads:
--   LOAD_SUMMARY {"requests":…,"duration_us":…,"bytes":…,
--                 "latency_us":{"p50":…,"p90":…,"p99":…,"max":…,"mean":…,"stdev":…},
--                 "status":{"200":…,…},"x_cache":{"HIT":…,"MISS":…,…},
--                 "socket_errors":{"connect":…,"read":…,"write":…,"timeout":…},
--                 "wrk_status_errors":…,"error_json":…,"unavailable_json":…,"samples":["503 {…",…]}

local SAMPLES_PER_THREAD, SAMPLES, SAMPLE_BYTES = 5, 10, 160

local function fail(message)
    io.stderr:write("load.lua: " .. message .. "\n")
    os.exit(2)
end

-- Every Lua state (one per thread, and the main one) reads the list.
local function read_lines()
    local file = os.getenv("LOAD_REQUESTS") or fail("LOAD_REQUESTS (a file of 'PATH TOKEN' lines) is not set")
    local f = io.open(file, "r") or fail("cannot open LOAD_REQUESTS file " .. file)
    local lines = {}
    for line in f:lines() do
        local path, token = line:match("^%s*(%S+)%s+(%S+)%s*$")
        if path ~= nil then
            table.insert(lines, { path, token })
        elseif line:match("%S") then
            fail(file .. ": not 'PATH TOKEN': " .. line:sub(1, 80))
        end
    end
    f:close()
    if #lines == 0 then fail("no requests in " .. file) end
    return lines
end

local lines = read_lines()
local order = os.getenv("LOAD_ORDER") or "random"
if order ~= "random" and order ~= "cycle" then fail("LOAD_ORDER must be random or cycle (got " .. order .. ")") end
local close = os.getenv("LOAD_CLOSE") == "1"

-- ---------------------------------------------------------------------------------------------
-- Main state: setup() and done() run here.

local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("thread_id", #threads)
end

-- ---------------------------------------------------------------------------------------------
-- Per-thread state. The counters are globals so that done() can read them (thread:get).

local reqs, next_index = {}, 0
statuses, x_cache, samples = {}, {}, {}
error_json, unavailable_json = 0, 0

function init(args)
    local id = thread_id or 1
    for i, line in ipairs(lines) do
        local headers = { ["Authorization"] = "Bearer " .. line[2] }
        if close then headers["Connection"] = "close" end
        reqs[i] = wrk.format("GET", line[1], headers)
    end
    math.randomseed(os.time() * 1000 + id * 7919)
    for _ = 1, 10 do math.random() end
    next_index = (id * 7919) % #reqs
end

function request()
    if order == "cycle" then
        next_index = next_index % #reqs + 1
        return reqs[next_index]
    end
    return reqs[math.random(#reqs)]
end

function response(status, headers, body)
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    local xc = headers["X-Cache"] or headers["x-cache"] or "none"
    x_cache[xc] = (x_cache[xc] or 0) + 1
    if status < 300 then return end
    body = body or ""
    if body:find('"request_id"', 1, true) and body:find('"error":"', 1, true) then
        error_json = error_json + 1
    end
    if status == 503 and body:find('"error":"unavailable"', 1, true) then
        unavailable_json = unavailable_json + 1
    end
    if #samples < SAMPLES_PER_THREAD then
        table.insert(samples, key .. " " .. body:sub(1, SAMPLE_BYTES))
    end
end

-- ---------------------------------------------------------------------------------------------
-- The summary (main state)

local function json_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function json_counts(t)  -- {name = integer}, keys sorted
    local parts = {}
    for k, v in pairs(t) do table.insert(parts, json_string(tostring(k)) .. ":" .. string.format("%d", v)) end
    table.sort(parts)
    return "{" .. table.concat(parts, ",") .. "}"
end

local function json_strings(list)
    local parts = {}
    for _, s in ipairs(list) do table.insert(parts, json_string(s)) end
    return "[" .. table.concat(parts, ",") .. "]"
end

local function add_counts(into, from)
    for k, v in pairs(from or {}) do into[k] = (into[k] or 0) + v end
end

function done(summary, latency, requests)
    local all_statuses, all_x_cache, all_samples = {}, {}, {}
    local all_error_json, all_unavailable_json = 0, 0
    for _, thread in ipairs(threads) do
        add_counts(all_statuses, thread:get("statuses"))
        add_counts(all_x_cache, thread:get("x_cache"))
        for _, s in ipairs(thread:get("samples") or {}) do
            if #all_samples < SAMPLES then table.insert(all_samples, s) end
        end
        all_error_json = all_error_json + (thread:get("error_json") or 0)
        all_unavailable_json = all_unavailable_json + (thread:get("unavailable_json") or 0)
    end
    local e = summary.errors
    io.write(string.format(
        'LOAD_SUMMARY {"requests":%d,"duration_us":%d,"bytes":%d,'
        .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f,"stdev":%.1f},'
        .. '"status":%s,"x_cache":%s,'
        .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"wrk_status_errors":%d,'
        .. '"error_json":%d,"unavailable_json":%d,"samples":%s}\n',
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, latency.stdev,
        json_counts(all_statuses), json_counts(all_x_cache),
        e.connect, e.read, e.write, e.timeout, e.status,
        all_error_json, all_unavailable_json, json_strings(all_samples)))
end
