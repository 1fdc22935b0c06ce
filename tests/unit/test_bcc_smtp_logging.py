"""The gateway's aiosmtpd log helper: nothing is done for a level that is off, and what is logged is
masked exactly as aiosmtpd masks it (an AUTH secret never reaches the log)."""
import logging

import aiosmtpd.smtp

from maillink_bcc_gateway.entrypoints import smtp


def test_the_gateway_replaced_aiosmtpds_helper():
    assert aiosmtpd.smtp.sanitized_log is smtp._sanitized_log


def test_a_level_that_is_off_is_skipped_and_one_that_is_on_is_masked(caplog, monkeypatch):
    log = logging.getLogger("mail.log")
    line = b"AUTH PLAIN c2VjcmV0\r\n"
    masked = []
    monkeypatch.setattr(aiosmtpd.smtp, "sanitize", lambda text: masked.append(text) or aiosmtpd.smtp.CLIENT_AUTH_B
                        .sub(lambda m: m.group("authm") + b"********" + m.group("crlf"), text))
    with caplog.at_level(logging.INFO, logger="mail.log"):
        smtp._sanitized_log(log.debug, "_handle_client readline: %r", line)   # DEBUG is off: no work at all
        assert masked == []
        smtp._sanitized_log(log.info, "%r >> %r", ("127.0.0.1", 1), line)
        assert masked == [line]
    assert [r.getMessage() for r in caplog.records] == ["('127.0.0.1', 1) >> b'AUTH PLAIN ********\\r\\n'"]
    assert "c2VjcmV0" not in caplog.text
