-- wrk script for benchmarks/earn_http.py: POST /v1/transactions with random members and amounts and
-- unique POS ids, or GET /v1/health; prints one JSON line of results when done.
-- args: mode (purchase|health) token store_id min_customer max_customer occurred_at run_tag idempotency(yes|no)
--       lines(yes|no) pace_ms (0: as fast as possible; else each connection waits about this long
--       between a response and its next request, so the total rate is below saturation)

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  mode, token, store_id = args[1], args[2], args[3]
  min_customer, max_customer = tonumber(args[4]), tonumber(args[5])
  occurred_at, run_tag = args[6], args[7]
  idempotency = args[8] == "yes"
  with_lines = args[9] == "yes"
  pace_ms = tonumber(args[10] or "0")
  math.randomseed(os.time() * 1000 + thread_id)
  counter = 0
  statuses = {}
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end

function request()
  if mode == "health" then
    return wrk.format("GET", "/v1/health", headers)
  end
  counter = counter + 1
  local pos_id = string.format("%s-%d-%d", run_tag, thread_id, counter)
  if idempotency then
    -- What a careful POS sends: one key per sale, reused only on retries.
    headers["Idempotency-Key"] = pos_id
  end
  local amount = math.random(50000, 2000000)
  local lines = ""
  if with_lines and counter % 3 == 0 then
    -- 1-3 lines from 200 skus in 5 categories, as in benchmarks/rules.py
    local categories = {"dairy", "bakery", "ice cream", "drinks", "snacks"}
    local parts = {}
    amount = 0
    for _ = 1, math.random(1, 3) do
      local quantity, price = math.random(1, 3), ({25000, 60000, 120000})[math.random(1, 3)]
      amount = amount + quantity * price
      table.insert(parts, string.format('{"sku":"SKU-%03d","category":"%s","quantity":%d,"unit_price":%d}',
        math.random(0, 199), categories[math.random(1, 5)], quantity, price))
    end
    lines = ',"lines":[' .. table.concat(parts, ",") .. ']'
  end
  local body = string.format(
    '{"store_id":"%s","transaction_id":"%s","customer_id":%d,"occurred_at":"%s","amount":%d,"currency":"VND"%s}',
    store_id, pos_id, math.random(min_customer, max_customer), occurred_at, amount, lines)
  return wrk.format("POST", "/v1/transactions", headers, body)
end

function delay()
  -- Jittered (0.5 to 1.5 times) so that the connections do not fire in step.
  if pace_ms > 0 then
    return math.floor(pace_ms * (0.5 + math.random()))
  end
  return 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do
      codes[status] = (codes[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(codes) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"statuses":{%s},' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non_2xx":%d,' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, table.concat(parts, ","),
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
