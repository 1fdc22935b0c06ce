-- wrk script of `make bench-tracker`, used for every target alike (nginx, the bare app, the tracker).
-- Requests cycle through the paths in WRK_PATHS_FILE (one pixel per line: many tracked messages,
-- as in real traffic, rather than one message whose events would all fall on one partition).
-- WRK_DELAY_MS > 0 paces the load (Debian's wrk has no fixed-rate option, unlike wrk2): every
-- connection waits that long after each answer before its next request, so C connections offer
-- about C * 1000 / (delay + latency) requests/s; bench_tracker.py calibrates the delay to a target
-- rate. wrk's latency figures exclude the delay: they are the server's answer times at that rate.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS")) or 0
local paths, n, i = {}, 0, 0

-- In init, not at load: only then do wrk.headers hold the Host header wrk.format() needs.
init = function(args)
   for line in io.lines(os.getenv("WRK_PATHS_FILE")) do
      n = n + 1
      paths[n] = wrk.format("GET", line)
   end
end

request = function()
   i = i % n + 1
   return paths[i]
end

if delay_ms > 0 then
   delay = function()
      return delay_ms
   end
end
