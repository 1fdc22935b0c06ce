"""`maillink accounts ...`: mailbox accounts through ingest's HTTP API (never its database).

The token comes from --token or MAILLINK_TOKEN; without one, a short-lived token for --user is
minted from the local development key set (what `maillink token` does). The password is read
from standard input only (--password-stdin), so it never appears in a process list or history.
"""
import os
import sys
import time

import httpx

from . import tokens

ACCOUNT_SCOPES = ["accounts:read", "accounts:write"]


def _client(args) -> httpx.Client:
    token = args.token or os.environ.get("MAILLINK_TOKEN")
    if not token:
        if not args.user:
            raise ValueError("give --token (or MAILLINK_TOKEN), or --user to mint a local development token")
        token = tokens.mint(args.keys, subject=args.user, user_id=args.user, company_id=args.company,
                            scopes=ACCOUNT_SCOPES, audience=["maillink-ingest"], ttl_s=600)
    return httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _check(response: httpx.Response) -> dict | list:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise ValueError(f"{response.status_code}: {detail}")
    return response.json()


def imap_endpoint(args) -> dict:
    """--imap-host wins; otherwise the provider's preset from the one catalog in schemas/."""
    if args.imap_host:
        return {"imap_host": args.imap_host, "imap_port": args.imap_port or 993, "security": args.security or "ssl"}
    if not args.provider:
        raise ValueError("give --provider (e.g. gmail) or --imap-host")
    try:
        from maillink_schemas.providers import PROVIDERS
    except ImportError as exc:
        raise ValueError("this build has no provider catalog; give --imap-host, --imap-port and --security") from exc
    preset = PROVIDERS.get(args.provider)
    if preset is None or preset.imap is None:
        raise ValueError(f"unknown provider {args.provider!r}; known: {', '.join(sorted(PROVIDERS))}")
    return {"imap_host": preset.imap.host, "imap_port": args.imap_port or preset.imap.port,
            "security": args.security or preset.imap.security.value}


def _read_password(args) -> str:
    if not args.password_stdin:
        raise ValueError("the password is read from standard input: add --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ValueError("no password on standard input")
    return password


def add(args) -> None:
    folders = {"all_folders": True, "folders": []} if args.all_folders else \
        {"all_folders": False, "folders": args.folders.split(",")} if args.folders else None
    body = {"email": args.email, "password": _read_password(args), **imap_endpoint(args),
            "first_sync_days": args.first_sync_days, **({"folders": folders} if folders else {}),
            **({"username": args.username} if args.username else {})}
    with _client(args) as client:
        accepted = _check(client.post("/accounts", json=body))
    print(f"{accepted['account_id']}  version {accepted['version']}  "
          f"{'syncing' if accepted['applied'] else 'accepted (the sync service picks it up shortly)'}")


def listing(args) -> None:
    with _client(args) as client:
        accounts = _check(client.get("/accounts"))
    for a in accounts:
        print(f"{a['account_id']}  {a['email']:<32} {a['state']:<13} {a['messages_synced']:>7} messages"
              + (f"  {a['error']}" if a.get("error") else ""))
    print(f"{len(accounts)} account(s)")


def change(args) -> None:
    body = {"enabled": {"pause": False, "resume": True}[args.command_action]} if args.command_action != "update" \
        else {"password": _read_password(args)}
    with _client(args) as client:
        accepted = _check(client.patch(f"/accounts/{args.account_id}", json=body))
    print(f"{accepted['account_id']}  version {accepted['version']}")


def remove(args) -> None:
    with _client(args) as client:
        removed = _check(client.delete(f"/accounts/{args.account_id}"))
    print(f"{removed['account_id']} removed" + ("" if removed["applied"] else " (being applied)"))


def reconcile(args) -> None:
    with _client(args) as client:
        marked = _check(client.post(f"/accounts/{args.account_id}/reconcile"))
    folders = marked["folders"]
    print(f"{marked['account_id']}: reconciliation requested for {len(folders)} folder(s)"
          + (f" ({', '.join(folders)}); each runs it on its next pass" if folders else " (nothing synced yet)"))


def status(args) -> None:
    with _client(args) as client:
        view = _check(client.get(f"/accounts/{args.account_id}"))
        if not args.once and view["state"] in ("pending", "connecting", "initial_sync"):
            view = _follow(client, args.account_id, view, args.interval)
    print_status(view)


def _follow(client: httpx.Client, account_id: str, view: dict, interval: float) -> dict:
    """A live bar per folder (done/total from the folder states) until the first sync is over."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        bars: dict[str, int] = {}
        while True:
            for folder in view["folders"]:
                if folder["folder"] not in bars:
                    bars[folder["folder"]] = progress.add_task(folder["folder"], total=folder["total"] or None)
                progress.update(bars[folder["folder"]], completed=folder["done"], total=folder["total"] or None)
            if view["state"] not in ("pending", "connecting", "initial_sync"):
                return view
            time.sleep(interval)
            view = _check(client.get(f"/accounts/{account_id}"))


def print_status(view: dict) -> None:
    print(f"{view['email']}: {view['state']}" + (f" — {view['error']}" if view.get("error") else ""))
    if view.get("retry_at"):
        print(f"  tries again at {view['retry_at']}")
    for f in view["folders"]:
        line = f"  {f['folder']:<24} {f['synced']:>7} synced"
        if not f["initial_done"] and f["total"]:
            line += f"  first sync {f['done']}/{f['total']}"
        if f.get("problem"):
            line += f"  ! {f['problem']['error']}"
        print(line)


def register(sub, default_url: str) -> None:
    accounts = sub.add_parser("accounts", help="mailbox accounts: add, list, status, pause, resume, update, reconcile, remove")
    accounts.add_argument("--url", default=os.environ.get("MAILLINK_INGEST_URL", default_url),
                          help="ingest's base URL (default: %(default)s)")
    accounts.add_argument("--token", help="bearer token (default: MAILLINK_TOKEN, or one minted for --user)")
    accounts.add_argument("--user", default=os.environ.get("MAILLINK_USER"), help="acting user for a local token")
    accounts.add_argument("--company", default="c-demo", help="company of a local token (default: %(default)s)")
    actions = accounts.add_subparsers(dest="command_action", required=True)
    add_p = actions.add_parser("add", help="connect a mailbox")
    add_p.add_argument("--email", required=True)
    add_p.add_argument("--provider", help="a preset from the provider catalog, e.g. gmail")
    add_p.add_argument("--imap-host")
    add_p.add_argument("--imap-port", type=int)
    add_p.add_argument("--security", choices=["ssl", "starttls", "plain"])
    add_p.add_argument("--username", help="login name, if not the address")
    add_p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_p.add_argument("--folders", help="only these folders, comma-separated (default: INBOX,Sent)")
    add_p.add_argument("--all-folders", action="store_true", help="every folder except Trash, Junk and Drafts")
    add_p.add_argument("--first-sync-days", type=int, default=3)
    add_p.set_defaults(run=add)
    actions.add_parser("list", help="your accounts and their state").set_defaults(run=listing)
    status_p = actions.add_parser("status", help="one account's state, folders and first-sync progress")
    status_p.add_argument("account_id")
    status_p.add_argument("--once", action="store_true", help="no live progress bar during the first sync")
    status_p.add_argument("--interval", type=float, default=1.0)
    status_p.set_defaults(run=status)
    for name, text in (("pause", "stop syncing (keeps everything)"), ("resume", "sync again"),
                       ("update", "new password (from standard input)")):
        p = actions.add_parser(name, help=text)
        p.add_argument("account_id")
        if name == "update":
            p.add_argument("--password-stdin", action="store_true")
        p.set_defaults(run=change)
    reconcile_p = actions.add_parser("reconcile", help="audit every folder now: server UIDs vs delivered, "
                                                       "delivered vs stored blobs; gaps are repaired")
    reconcile_p.add_argument("account_id")
    reconcile_p.set_defaults(run=reconcile)
    remove_p = actions.add_parser("remove", help="stop syncing and delete credentials and folder state")
    remove_p.add_argument("account_id")
    remove_p.set_defaults(run=remove)
