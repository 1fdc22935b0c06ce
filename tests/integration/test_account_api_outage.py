"""The HTTP APIs while the service's own store is down (a real connection refused, not a fake): the
answer is a 503 in words with Retry-After, never a bare 500 or the driver's repr with addresses and
errno. One handler in runtime (http.answer_outages_in_words) serves every service."""
import httpx
import pytest
from cryptography.fernet import Fernet

from maillink_ingest.app import create_app
from maillink_ingest.settings import IngestSettings
from tests.conftest import bearer

pytestmark = pytest.mark.integration


async def test_a_store_outage_is_answered_in_words(monkeypatch, auth_env, token):
    for key, value in auth_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAILLINK_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:1/")  # nothing listens there
    app = create_app(IngestSettings())
    alice = bearer(token("u-alice", "accounts:read", "accounts:write"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest") as client:
        # (each request waits out the driver's 5 s server selection: two are enough)
        for response in (await client.get("/accounts/acc-1", headers=alice),
                         await client.delete("/accounts/acc-1", headers=alice)):
            assert response.status_code == 503, response.text
            assert response.json()["detail"] == ("maillink is catching up: the service's database is unavailable; "
                                                 "nothing is lost.")
            assert "Errno" not in response.text and "27017" not in response.text and "Error" not in response.text
            assert response.headers["retry-after"] == "5"


async def test_the_matcher_mail_tab_during_a_store_outage_is_a_503_in_words(monkeypatch, auth_env, token):
    # Found from outside: GET /mail answered a bare 500 while the store was stopped for 30 s.
    from maillink_matcher.app import create_app as create_matcher
    from maillink_matcher.settings import MatcherSettings

    for key, value in auth_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:1/")  # nothing listens there
    app = create_matcher(MatcherSettings())
    alice = bearer(token("u-alice", "mail:read"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://matcher") as client:
        response = await client.get("/mail", headers=alice)
    assert response.status_code == 503, response.text
    assert response.json()["detail"] == ("maillink is catching up: the service's database is unavailable; "
                                         "nothing is lost.")
    assert response.headers["retry-after"] == "5"
    assert "Errno" not in response.text and "127.0.0.1" not in response.text
