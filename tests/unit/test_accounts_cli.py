"""`maillink accounts`: the provider preset, the password from stdin only, and the live first-sync bar
(against a fake of ingest's own API)."""
import argparse
import io

import httpx
import pytest

from maillink_devtools import accounts_cli


def args(**kw) -> argparse.Namespace:
    base = {"imap_host": None, "imap_port": None, "security": None, "provider": None, "password_stdin": False}
    return argparse.Namespace(**{**base, **kw})


def test_an_explicit_server_wins_and_a_missing_one_is_a_clear_error():
    assert accounts_cli.imap_endpoint(args(imap_host="127.0.0.1", imap_port=10143, security="plain")) == {
        "imap_host": "127.0.0.1", "imap_port": 10143, "security": "plain"}
    with pytest.raises(ValueError, match="--provider"):
        accounts_cli.imap_endpoint(args())


def test_the_password_comes_from_stdin_only(monkeypatch):
    with pytest.raises(ValueError, match="--password-stdin"):
        accounts_cli._read_password(args())
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert accounts_cli._read_password(args(password_stdin=True)) == "s3cret"


def view(state: str, done: int) -> dict:
    return {"email": "a@example.com", "state": state, "error": None, "retry_at": None,
            "folders": [{"folder": "INBOX", "synced": done, "done": done, "total": 3, "initial_done": done == 3,
                         "problem": None}]}


def test_status_follows_the_first_sync_until_it_is_done(capsys):
    answers = iter([view("initial_sync", 1), view("initial_sync", 2), view("synced", 3)])
    client = httpx.Client(base_url="http://ingest",
                          transport=httpx.MockTransport(lambda request: httpx.Response(200, json=next(answers))))
    first = client.get("/accounts/a1").json()
    final = accounts_cli._follow(client, "a1", first, interval=0)
    assert final["state"] == "synced"
    assert "3/3" in capsys.readouterr().out  # the bar's last frame: done/total


def test_reconcile_posts_to_the_account_and_names_the_folders(monkeypatch, capsys):
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(202, json={"account_id": "a1", "folders": ["INBOX", "Sent"]})

    monkeypatch.setattr(accounts_cli, "_client", lambda a: httpx.Client(base_url="http://ingest",
                                                                        transport=httpx.MockTransport(answer)))
    accounts_cli.reconcile(argparse.Namespace(account_id="a1"))
    assert seen == [("POST", "/accounts/a1/reconcile")]
    assert "2 folder(s) (INBOX, Sent)" in capsys.readouterr().out
