"""The verified caller of one request."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    subject: str                       # `sub`: the calling service or user
    user_id: str | None = None         # the acting user, where a person acts
    company_id: str | None = None      # the acting user's (or service's) company
    scopes: frozenset[str] = field(default_factory=frozenset)
    key_id: str = ""                   # which key signed the token (for logs and audits)

    def has(self, scope: str) -> bool:
        return scope in self.scopes
