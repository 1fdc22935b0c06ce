-- Paces wrk (Debian's wrk has no fixed-rate option, unlike wrk2): every connection waits
-- WRK_DELAY_MS after each answer before sending its next request. With C connections the offered
-- rate is about C * 1000 / (delay + latency); bench_tracker.py calibrates the delay to a target rate.
-- wrk's latency figures exclude the delay: they are the server's answer times at that rate.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS")) or 0

function delay()
   return delay_ms
end
