"""The benchmark scripts stay runnable: each one, at tiny N, exits 0 and prints its figures.

Nothing here looks at a timing: CI machines are too noisy for that, and the
figures are for people (bench/README.md). All five scripts start at once and run
side by side, so the module takes about as long as the slowest one (a few seconds).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Script → the figure lines (by prefix) its ``--quick`` run must print.
FIGURES = {
    "fanout": ("fanout n=200 ",),
    "engine": ("engine part=engine-only n=200 ", "engine part=end-to-end n=200 "),
    "upsert": ("upsert path=raw ", "upsert path=write_bars ", "upsert path=run-writer "),
    "idle": ("idle process=python-asyncio ", "idle process=finappd-run "),
    "memory": ("memory n=1 ", "memory n=500 ", "memory growth_bytes_per_ticker="),
}


@pytest.fixture(scope="module")
def quick_runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every bench script started at once with ``--quick``; killed if a test left it running."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in FIGURES
    }
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_bench_script_exits_zero_and_prints_its_figures(
    name: str, quick_runs: dict[str, subprocess.Popen[str]]
) -> None:
    """``python bench/<name>.py --quick`` exits 0 and prints every figure line it promises."""
    proc = quick_runs[name]
    out, err = proc.communicate(timeout=100)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    for prefix in FIGURES[name]:
        assert any(line.startswith(prefix) for line in lines), f"no {prefix!r} line in:\n{out}"


def test_every_bench_script_is_covered() -> None:
    """Each script in bench/ (not the shared ``_common``) has its figure lines listed here."""
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(FIGURES)
