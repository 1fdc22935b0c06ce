"""tracker: the open pixel and the click redirect (public, token-signed), opened/clicked events with
human and machine told apart, registrations from outbound, per-message stats and milestones.

Layout: domain/ (pure: networks, user agents, classification, stats, redirect targets), adapters/
(registrations, hits, the batched publisher), edge.py (what a public request does), aggregator.py
(consumers), entrypoints/ (HTTP), app.py (wiring). See docs/tracker.md.
"""
