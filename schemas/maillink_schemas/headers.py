"""Values that end up in a mail header (or any line-based protocol) can never carry a line break.

A CR or LF inside a header value ends the header early and lets the rest of the value become
headers of its own ("header injection": an extra Bcc, a forged From). Every contract field that
the system writes into a header uses `HeaderText`, so such a value is refused where it enters,
with a 422 at the API or a dead letter on the bus, never silently cleaned.
"""
from typing import Annotated

from pydantic import AfterValidator

_FORBIDDEN = ("\r", "\n", "\x00")


def single_line(value: str) -> str:
    if any(c in value for c in _FORBIDDEN):
        raise ValueError("must be a single line: CR, LF and NUL are not allowed in a header value")
    return value


HeaderText = Annotated[str, AfterValidator(single_line)]
