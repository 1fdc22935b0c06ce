"""Base classes every contract derives from."""
import hashlib
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field


class Contract(BaseModel):
    # Consumers ignore unknown fields, so producers may add optional ones within a version.
    model_config = ConfigDict(extra="ignore", frozen=True, serialize_by_alias=True,
                              validate_by_name=True, validate_by_alias=True)


class Event(Contract):
    event_id: str = Field(
        description="Deterministic id of this fact: a redelivery or replay of the same fact "
        "carries the same id, so consumers can deduplicate on it."
    )
    occurred_at: datetime = Field(description="When the fact happened (UTC).")


def deterministic_id(*parts: str) -> str:
    """A stable id from the parts that make a fact unique (sha256, hex, 32 chars)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
