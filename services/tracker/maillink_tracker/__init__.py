"""tracker: open pixel and click redirect, opened/clicked events.

The walking skeleton runs the service with its Kafka producer, its own database and its HTTP
side (/healthz, /metrics); its domain arrives with its own issue.
"""
