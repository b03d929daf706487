-- wrk script: the same POST /api/chat as zeno-worker's quick_query
-- (JSON {query, thread_id}, Bearer token, NDJSON accepted). Every request
-- gets a fresh thread_id, as the fake server requires for a new thread.
local token = os.getenv("ZENO_MACHINE_USER_TOKEN") or "zeno-key:bench001:0123456789abcdef0123456789abcdef"
local run = tostring(os.time())
local counter = 0
local thread_tag = "t"

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/x-ndjson"

function setup(thread)
  counter = counter + 1
  thread:set("thread_tag", "t" .. counter)
end

function request()
  counter = counter + 1
  local body = '{"query":"What is the forest cover in Brazil?","thread_id":"wrk-' ..
    run .. '-' .. thread_tag .. '-' .. counter .. '"}'
  return wrk.format(nil, "/api/chat", nil, body)
end
