"""devtools/fs_settle.py: a benchmark that creates files waits while new files cost far more than on a
quiet filesystem, and says so; it does not wait when they do not."""
from maillink_devtools import fs_settle


def test_the_probe_creates_its_files_fanned_out_and_keeps_them(tmp_path):
    cost = fs_settle.create_cost_ms(tmp_path / "probe", files=40)
    made = [p for p in (tmp_path / "probe").rglob("*") if p.is_file()]
    assert cost > 0 and len(made) == 40 and all(p.stat().st_size == 10_000 and p.parent.name == p.name[:2] for p in made)


def test_it_waits_while_new_files_are_costly_and_reports_the_wait(tmp_path, monkeypatch):
    costs, said, slept = iter([0.9, 0.05, 0.4, 0.05, 0.04]), [], []
    monkeypatch.setattr(fs_settle, "create_cost_ms", lambda directory: next(costs))
    monkeypatch.delenv("MAILLINK_BENCH_NO_SETTLE", raising=False)
    fs_settle.settle(tmp_path, say=lambda text, **_: said.append(text), sleep=slept.append)
    # a quiet probe counts only when the next one, a few seconds on, is quiet too
    assert slept == [10, fs_settle.CONFIRM_S, 10, fs_settle.CONFIRM_S]
    assert "0.90 ms" in said[0] and len(said) == 2 and "settled" in said[-1] and "0.040 ms" in said[-1]


def test_a_quiet_filesystem_is_only_confirmed(tmp_path, monkeypatch):
    said, slept = [], []
    monkeypatch.delenv("MAILLINK_BENCH_NO_SETTLE", raising=False)
    monkeypatch.setattr(fs_settle, "create_cost_ms", lambda directory: 0.04)
    fs_settle.settle(tmp_path, say=lambda text, **_: said.append(text), sleep=slept.append)
    assert said == [] and slept == [fs_settle.CONFIRM_S]


def test_it_gives_up_after_the_limit_with_a_warning(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(fs_settle, "create_cost_ms", lambda directory: 0.8)
    monkeypatch.delenv("MAILLINK_BENCH_NO_SETTLE", raising=False)
    fs_settle.settle(tmp_path, say=lambda text, **_: said.append(text), limit_s=-1, sleep=lambda s: None)
    assert said[-1].startswith("WARNING") and "0.80 ms" in said[-1]


def test_it_waits_out_a_recent_removal_recorded_by_a_benchmark(tmp_path, monkeypatch):
    said, slept, stamp = [], [], tmp_path / "removed"
    monkeypatch.setattr(fs_settle, "create_cost_ms", lambda directory: 0.04)
    monkeypatch.delenv("MAILLINK_BENCH_NO_SETTLE", raising=False)
    fs_settle.removed(stamp)
    at = float(stamp.read_text())
    fs_settle.settle(tmp_path, say=lambda text, **_: said.append(text), sleep=slept.append, stamp=stamp,
                     clock=lambda: at + 30)
    assert slept[0] == fs_settle.AFTER_REMOVAL_S - 30 and "30 s ago" in said[0]
    slept.clear()
    fs_settle.settle(tmp_path, sleep=slept.append, stamp=stamp, clock=lambda: at + fs_settle.AFTER_REMOVAL_S + 1)
    assert slept == [fs_settle.CONFIRM_S]  # long enough ago: only the probes
