"""What a consumer publishes when it gives up on a message."""
from pydantic import Field

from .base import Event


class DeadLettered(Event):
    source_topic: str
    partition: int
    offset: int
    consumer: str = Field(description="Service (consumer group) that gave up.")
    key: str | None = Field(default=None, description="Original key, base64.")
    payload: str = Field(description="Original value, base64, so nothing is lost.")
    error_type: str
    error: str = Field(description="Why it failed, for a person.")
    attempts: int
