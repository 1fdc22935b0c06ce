"""A service started while Kafka is away waits for it instead of exiting (found by `make chaos`:
outbound, restarted just before a broker restart, exited with "Unable to bootstrap")."""
import socket
import uuid

import pytest

from maillink_devtools.processes import ServiceSet
from tests.conftest import KAFKA, MONGODB_URL, RUN_DIR

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_service_waits_for_an_unreachable_broker_and_starts_when_it_answers(auth_env, namespace):
    # A TCP forwarder stands in for the broker's address: closed at first (connection refused),
    # then forwarding to the real broker, as when a restarted broker comes back.
    import subprocess
    import sys
    import time

    import httpx

    port = _free_port()
    host, kafka_port = KAFKA.split(":")
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL}
    # Kafka's advertised listener is the real one, so only the bootstrap address goes through the gap.
    env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{port}"
    procs = ServiceSet()
    svc = procs.start("tracker", _free_port(), env, RUN_DIR / "e2e-logs" / namespace)
    try:
        time.sleep(4)
        assert svc.process.poll() is None, svc.log_path.read_text()[-2000:]
        assert "Kafka is not reachable yet" in svc.log_path.read_text()
        forwarder = subprocess.Popen([sys.executable, "-c", _FORWARD, str(port), host, kafka_port])
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{svc.url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert svc.process.poll() is None, svc.log_path.read_text()[-2000:]
                time.sleep(0.5)
            assert httpx.get(f"{svc.url}/healthz", timeout=5).status_code == 200
        finally:
            forwarder.kill()
    finally:
        procs.stop()


_FORWARD = """
import asyncio, sys
listen, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    finally:
        w.close()
async def serve(r, w):
    ur, uw = await asyncio.open_connection(host, port)
    await asyncio.gather(pipe(r, uw), pipe(ur, w))
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", listen)
    await server.serve_forever()
asyncio.run(main())
"""
