"""outbound: sends mail on the user's behalf, sent/send-failed events.

The walking skeleton runs the service with its Kafka producer, its own database and its HTTP
side (/healthz, /metrics); its domain arrives with its own issue.
"""
