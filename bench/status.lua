-- bench/status.lua: counts wrk's responses by HTTP status code, so "non-200 responses"
-- is exact (wrk itself counts only socket errors and statuses above 399), and prints
-- one machine-readable summary for bench/load.sh.
--
-- wrk runs each thread in its own Lua state: every thread counts into its own global
-- `counts`, and done() (in the main state) collects them through thread:get().

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

counts = {}

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("counts") or {}) do
         total[status] = (total[status] or 0) + n
      end
   end
   local statuses = {}
   for status in pairs(total) do
      table.insert(statuses, status)
   end
   table.sort(statuses)
   for _, status in ipairs(statuses) do
      io.write(string.format("STATUS %d %d\n", status, total[status]))
   end
   local e = summary.errors
   io.write(string.format(
      "SUMMARY requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d timeout=%d status=%d p50_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(99), latency.max))
end
