"""The yardstick of make bench-bcc: aiosmtpd's own Sink handler, served as aiosmtpd's CLI serves it
(`python -m aiosmtpd -n -c aiosmtpd.handlers.Sink`: the same SMTP class and defaults), with two
additions so it can be given what the gateway gets: the port is opened with SO_REUSEPORT, so
several sink processes can share it as several gateway instances do, and `--uvloop` runs it on the
loop the gateway runs on.

    python -m maillink_devtools.smtp_sink PORT [--uvloop]
"""
import argparse
import asyncio

from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import DATA_SIZE_DEFAULT, SMTP


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(Sink(), data_size_limit=DATA_SIZE_DEFAULT), host="127.0.0.1",
                             port=port, reuse_port=True)
    print("listening", flush=True)  # the bench waits for this line from each process
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.run(serve(args.port))
    else:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
