"""`maillink`: the command line for people and scripts.

  maillink keys init|rotate|retire KID     the local development key set (.run/auth/)
  maillink token --user U --scope S ...    print a signed token for local use
  maillink dlq list|replay TOPIC [filters]  dead letters: show them, re-publish them to their topic
  maillink accounts add|list|status|pause|resume|update|remove   mailbox accounts, through ingest's API
"""
import argparse
import asyncio
import os
import sys
from pathlib import Path

import httpx

from maillink_schemas.scopes import Scope

from . import accounts_cli, tokens

CHECKOUT = Path(__file__).resolve().parents[2]


def default_keys_dir() -> Path:
    if os.environ.get("MAILLINK_KEYS_DIR"):
        return Path(os.environ["MAILLINK_KEYS_DIR"])
    return Path(os.environ.get("MAILLINK_RUN_DIR", CHECKOUT / ".run")) / "auth"


def _token(args) -> None:
    audience = [f"maillink-{a.removeprefix('maillink-')}" for a in args.aud] if args.aud else tokens.ALL_AUDIENCES
    print(tokens.mint(args.keys, subject=args.sub or args.user or "maillink-cli", user_id=args.user,
                      company_id=args.company, scopes=args.scope, audience=audience, ttl_s=args.ttl))


def _keys(args) -> None:
    if args.action == "init":
        print(tokens.init_keys(args.keys))
    elif args.action == "rotate":
        print(tokens.rotate_keys(args.keys))
    elif args.action == "retire":
        if not args.kid:
            sys.exit("maillink keys retire needs the kid to retire")
        tokens.retire_key(args.keys, args.kid)
        print(f"retired {args.kid}")


def _dlq(args) -> None:
    from maillink_runtime.settings import KafkaSettings

    from . import dlq
    settings = KafkaSettings()
    topic = os.environ.get("MAILLINK_NAMESPACE", "") + args.topic
    offsets = frozenset(int(o) for o in args.offsets.split(",")) if args.offsets else None
    chosen = [p for p in asyncio.run(dlq.parked(settings, topic))
              if dlq.Filter(args.reason, args.consumer, offsets).matches(p)]
    for p in chosen:
        print(f"{p.source_topic}[{p.partition}]@{p.offset}  {p.occurred_at:%Y-%m-%d %H:%M:%S}  {p.consumer}  "
              f"{p.error_type} after {p.attempts} attempt(s): {p.error[:160]}")
    if args.action == "replay" and not args.dry_run:
        print(f"re-published {asyncio.run(dlq.replay(settings, chosen))} record(s) to {topic}")
    else:
        print(f"{len(chosen)} record(s)" + (" would be re-published (dry run)" if args.action == "replay" else ""))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="maillink", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    top.add_argument("--keys", type=Path, default=default_keys_dir(), help="key directory (default: %(default)s)")
    sub = top.add_subparsers(dest="command", required=True)
    token = sub.add_parser("token", help="print a signed token")
    token.add_argument("--user", help="acting user id (claim user_id; also the subject unless --sub)")
    token.add_argument("--company", default="c-demo", help="company id (default: %(default)s)")
    token.add_argument("--scope", action="append", default=[], choices=[s.value for s in Scope],
                       help="a scope; repeat for several")
    token.add_argument("--sub", help="subject, e.g. a service name for a service token")
    token.add_argument("--aud", action="append", help="audience service (default: all five)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default: %(default)s)")
    token.set_defaults(run=_token)
    keys = sub.add_parser("keys", help="manage the local development key set")
    keys.add_argument("action", choices=["init", "rotate", "retire"])
    keys.add_argument("kid", nargs="?")
    keys.set_defaults(run=_keys)
    dead = sub.add_parser("dlq", help="list or replay dead-lettered messages of a topic")
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument("topic", help="the source topic, e.g. mail.message.received.v1 (MAILLINK_NAMESPACE is prefixed)")
    dead.add_argument("--reason", choices=["failed", "rejected", "undecodable"], help="only this kind of failure")
    dead.add_argument("--consumer", help="only what this consumer group parked")
    dead.add_argument("--offsets", help="only these source offsets, comma-separated")
    dead.add_argument("--dry-run", action="store_true", help="show what would be re-published")
    dead.set_defaults(run=_dlq)
    accounts_cli.register(sub, default_url="http://127.0.0.1:8101")
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (FileNotFoundError, KeyError, ValueError, httpx.HTTPError) as exc:
        sys.exit(f"maillink: {exc}")


if __name__ == "__main__":
    main()
