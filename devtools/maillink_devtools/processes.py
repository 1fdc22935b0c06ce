"""Starts maillink services as real processes and waits until their /healthz says ok."""
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = {"ingest": 8101, "matcher": 8102, "tracker": 8103, "outbound": 8104, "bcc_gateway": 8105}


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ServiceSet:
    running: dict[str, ServiceProcess] = field(default_factory=dict)
    # What each name was started with, so start_again() can bring a stopped one back the same way.
    started_with: dict[str, tuple] = field(default_factory=dict)

    def start(self, name: str, port: int, env: dict[str, str], log_dir: Path,
              service: str | None = None) -> ServiceProcess:
        """`service` (default: `name`) is which service to run; a distinct `name` runs a second instance."""
        self.started_with[name] = (port, env, log_dir, service)
        service = service or name
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        prefix = service.upper()
        full_env = {**os.environ, **env, f"{prefix}_HTTP_PORT": str(port)}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", f"maillink_{service}"], env=full_env, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.running[name] = ServiceProcess(name, port, proc, log_path)
        return self.running[name]

    def start_again(self, name: str) -> ServiceProcess:
        """A service stopped with stop(name), started again on its port with its settings."""
        return self.start(name, *self.started_with[name])

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for svc in self.running.values():
            while True:
                if svc.process.poll() is not None:
                    raise RuntimeError(f"{svc.name} exited with {svc.process.returncode}; see {svc.log_path}:\n"
                                       + svc.log_path.read_text()[-3000:])
                try:
                    if httpx.get(f"{svc.url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{svc.name} not healthy after {timeout}s; see {svc.log_path}")
                time.sleep(0.2)

    def stop(self, name: str | None = None, timeout: float = 15) -> None:
        for svc in [self.running.pop(name)] if name else list(self.running.values()):
            if svc.process.poll() is None:
                svc.process.terminate()
                try:
                    svc.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    svc.process.kill()
                    svc.process.wait()
        if name is None:
            self.running.clear()
