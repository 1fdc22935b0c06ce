"""What every fuzz suite shares: how many cases to try, and the count it reports.

A suite runs its property over FUZZ_CASES generated inputs (a few hundred in `make test`; `make fuzz`
sets thousands). Each input's outcome is tallied instead of stopping at the first failure, so the
printed line `<suite>: cases=<n> failures=<n>` is the whole run's figure; the test then fails if any
case failed, showing the first few inputs that did.
"""
import os
import traceback
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings


def fuzz_cases(default: int = 300) -> int:
    return int(os.environ.get("FUZZ_CASES", default))


def fuzz_settings(default: int = 300, **overrides) -> settings:
    """Hypothesis settings for a fuzz suite: FUZZ_CASES examples, no deadline (the machine is shared
    and slow; hangs are caught by each suite's own timeouts), no shrinking detours."""
    chosen = {"max_examples": fuzz_cases(default), "deadline": None, "database": None,
              "suppress_health_check": list(HealthCheck), **overrides}
    return settings(**chosen)


@dataclass
class Tally:
    suite: str
    cases: int = 0
    failures: list[str] = field(default_factory=list)

    def record(self, what: str, exc: BaseException | None) -> None:
        self.cases += 1
        if exc is not None:
            detail = "".join(traceback.format_exception(exc, limit=-4))[-1500:]
            self.failures.append(f"{what[:300]}\n{detail}")

    def line(self) -> str:
        return f"{self.suite}: cases={self.cases} failures={len(self.failures)}"

    def report(self, capsys=None) -> None:
        """Prints the verdict line past pytest's capture, then fails with the first failing inputs."""
        if capsys is not None:
            with capsys.disabled():
                print(f"\n{self.line()}")
        else:
            print(self.line())
        assert self.cases > 0, f"{self.suite}: no cases ran"
        assert not self.failures, f"{self.line()}\n" + "\n---\n".join(self.failures[:5])
