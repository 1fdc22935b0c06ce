import pytest
from hypothesis import given, strategies as st
from pydantic import BaseModel, ValidationError

from maillink_schemas.headers import HeaderText


class Message(BaseModel):
    subject: HeaderText


@pytest.mark.parametrize("value", ["Hi\r\nBcc: victim@example.com", "Hi\nX: y", "Hi\rX", "nul\x00"])
def test_line_breaks_in_a_header_value_are_refused(value):
    with pytest.raises(ValidationError, match="single line"):
        Message(subject=value)


@given(st.text().filter(lambda s: not any(c in s for c in "\r\n\x00")))
def test_any_single_line_value_passes_unchanged(value):
    assert Message(subject=value).subject == value
