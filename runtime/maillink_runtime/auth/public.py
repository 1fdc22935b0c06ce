"""The only routes any service answers without a token. One constant, walked by a test
(tests/unit/test_route_walk.py) that checks every other route of every service answers 401.

Later additions, each public by the product's nature: the tracking pixel and click redirect
(a mail client cannot send a token) and the Smart Bcc confirmation link (followed from an email).
"""
PUBLIC_ROUTES: frozenset[str] = frozenset({
    "/healthz",  # liveness/readiness probes
    "/metrics",  # Prometheus scrapes
    # tracker: a mail client fetching the open pixel or following a tracked link cannot send a
    # token; the signed tracking token in the path is the credential (services/tracker, edge.py).
    "/o/{token}",
    "/c/{token}",
    "/bcc/confirm",  # bcc-gateway: the alternative-address confirmation link, followed from an email
})
