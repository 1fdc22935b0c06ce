"""Raw MIME -> envelope: shared with bcc-gateway, so it lives in maillink_schemas.mime."""
from maillink_schemas.mime import SNIPPET_CHARS, ParsedMessage, parse

__all__ = ["SNIPPET_CHARS", "ParsedMessage", "parse"]
