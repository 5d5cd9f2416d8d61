"""Command line: ``run``, ``run-once``, ``trigger``, ``backfill``, ``gaps``, ``status``,
``check-config``, ``export-snapshot``, ``sim``, ``demo``.

``--config`` goes before or after the command (``finappd run-once eod --config x.toml``).
``run-once``, ``trigger`` (in process) and ``backfill`` treat SIGTERM and SIGINT as the
daemon does: the run is cancelled and recorded ``cancelled``, never left ``running``.

Exit codes: 0 ok; 1 a run failed (or was cancelled), or the database could not be
read; 2 ``status --check`` found a stale flow; 3 a run was partial; 78 (EX_CONFIG)
the configuration is invalid, so systemd does not restart-loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from finappd import __version__
from finappd.config import EX_CONFIG, Settings, find_config_file, load_settings, parse_duration
from finappd.errors import ConfigError, StoreError
from finappd.logging import configure_logging

__all__ = ["main"]

RUN_EXIT = {"ok": 0, "partial": 3, "failed": 1, "cancelled": 1}


_CONFIG_HELP = "TOML config file (default: $FINAPPD_CONFIG, ...)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finappd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"finappd {__version__}")
    parser.add_argument("--config", help=_CONFIG_HELP)
    # Each command takes --config too; SUPPRESS keeps one given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=_CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", parents=[common], help="run the daemon: every flow on its schedule")
    once = sub.add_parser(
        "run-once", parents=[common], help="run one flow now and print its summary as JSON"
    )
    once.add_argument("flow")
    once.add_argument(
        "--dry-run", action="store_true", help="print what it would request; send nothing"
    )
    trigger = sub.add_parser(
        "trigger",
        parents=[common],
        help="run a flow now: through the daemon's API when it runs, else in this process",
    )
    trigger.add_argument("flow")
    trigger.add_argument(
        "--wait", action="store_true", help="wait for the run's end and print it (API)"
    )
    back = sub.add_parser(
        "backfill",
        parents=[common],
        help="fetch a flow's history in chunks (resumable) and print the run as JSON",
    )
    back.add_argument("flow")
    back.add_argument("--start", type=_day, required=True, help="first day, YYYY-MM-DD")
    back.add_argument("--end", type=_day, default=None, help="last day (default: today, UTC)")
    back.add_argument("--tickers", nargs="+", default=None, help="only these (default: all)")
    gaps = sub.add_parser(
        "gaps",
        parents=[common],
        help="expected trading days with no bar: holiday, not_yet_published, missing",
    )
    gaps.add_argument("flow", nargs="?", default=None, help="one flow (default: all bar flows)")
    gaps.add_argument("--fill", action="store_true", help="fetch the missing days only")
    gaps.add_argument("--json", action="store_true", help="print JSON")
    gaps.add_argument("--all", action="store_true", help="list holidays too")
    status = sub.add_parser(
        "status", parents=[common], help="each flow's health: last runs, next fire, failures"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--check",
        action="store_true",
        help="exit 2 when a flow has no good run since its cutoff (for monitoring)",
    )
    status.add_argument(
        "--max-age",
        type=_duration,
        metavar="DURATION",
        help="with --check: a good run must be newer than this, e.g. 26h (default: from "
        "each flow's schedule, allowing one missed run)",
    )
    sub.add_parser("check-config", parents=[common], help="validate and print the effective config")
    snap = sub.add_parser(
        "export-snapshot",
        parents=[common],
        help="write a consistent copy of the database to PATH (atomic)",
    )
    snap.add_argument("path", type=Path)
    sim = sub.add_parser("sim", help="run the market-data simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    sim.add_argument("--max-concurrency", type=int, default=None)
    demo = sub.add_parser("demo", help="simulator + daemon + demo DB, no keys, no network")
    demo.add_argument("--seconds", type=float, default=20.0, help="stop after N seconds")
    demo.add_argument("--db", default="finappd-demo.sqlite3", help="demo database path")
    return parser


def _day(text: str) -> date:
    """argparse type: a ``YYYY-MM-DD`` date."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from exc


def _duration(text: str) -> timedelta:
    """argparse type: a duration like ``26h`` or ``90m``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _config_error(exc: ConfigError) -> int:
    """Print one line naming the key (JSON unless stderr is a terminal) and return 78."""
    if sys.stderr.isatty():
        print(f"finappd: invalid config: {exc}", file=sys.stderr)
    else:
        line = {"level": "error", "event": "config.invalid", "key": exc.key}
        line["problem"] = exc.problem
        print(json.dumps(line), file=sys.stderr)
    return EX_CONFIG


def _settings(args: argparse.Namespace) -> tuple[Settings, Path | None]:
    path = find_config_file(args.config)
    if path is None and args.command in {"run", "run-once", "trigger", "backfill", "gaps"}:
        raise ConfigError("config", "no config file: pass --config or set $FINAPPD_CONFIG")
    # Absolute, so a reload re-reads the same file whatever the working directory is.
    path = None if path is None else path.absolute()
    settings = load_settings(path)
    # Only a config that loads pays for importing the providers and flows it is checked on.
    from finappd.validate import check_settings

    return check_settings(settings), path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``finappd`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from finappd.demo import run_demo

        configure_logging("info", "json")
        return asyncio.run(run_demo(args.seconds, Path(args.db).absolute()))
    if args.command == "sim":
        configure_logging("info")
        return asyncio.run(_sim(args))
    try:
        settings, path = _settings(args)
    except ConfigError as exc:
        return _config_error(exc)
    configure_logging(settings.logging.level, settings.logging.format)
    try:
        return _dispatch(args, settings, path)
    except ConfigError as exc:
        return _config_error(exc)
    except StoreError as exc:
        print(f"finappd: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings, path: Path | None) -> int:
    if args.command == "check-config":
        from finappd.calendar import describe
        from finappd.providers.usage import effective_limits_report

        shown = settings.masked()
        for name, limits in effective_limits_report(settings).items():
            shown["providers"][name]["effective_limits"] = limits
        # Each flow's tickers by exchange, and those no calendar knows with their rule.
        shown["exchanges"] = {f.name: describe(f.exchanges()) for f in settings.flows}
        print(json.dumps(shown, indent=2, default=str))
        return 0
    if args.command == "status":
        from finappd.status import print_status

        return print_status(settings, as_json=args.json, check=args.check, max_age=args.max_age)
    if args.command == "export-snapshot":
        from finappd.snapshot import export_snapshot

        snapshot = export_snapshot(settings.store, args.path)
        print(
            json.dumps(
                {
                    "snapshot": str(snapshot.path),
                    "bytes": snapshot.bytes,
                    "seconds": snapshot.seconds,
                    "integrity_check": "ok",
                }
            )
        )
        return 0
    if args.command == "run-once":
        settings.flow(args.flow)  # a ConfigError names an unknown flow before anything opens
        if args.dry_run:
            return asyncio.run(_dry_run(settings, args.flow))
        return asyncio.run(_run_once(settings, args.flow))
    if args.command == "trigger":
        settings.flow(args.flow)
        return asyncio.run(_trigger(settings, args.flow, wait=args.wait))
    if args.command == "backfill":
        settings.flow(args.flow)
        return asyncio.run(_backfill(settings, args))
    if args.command == "gaps":
        from finappd.flows.gaps import run_gaps

        return asyncio.run(
            run_gaps(settings, args.flow, fill=args.fill, as_json=args.json, show_all=args.all)
        )
    from finappd.scheduler import Daemon

    return asyncio.run(Daemon(settings, config_path=path).run())


@contextmanager
def _cancel_on_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGINT cancel the current task (its run ends ``cancelled``)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread gets signals (main() called from a thread: a test's)
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _cancelled(flow: str) -> int:
    """Say on stdout that ``flow``'s run was cancelled (its row says so too); exit 1."""
    print(json.dumps({"flow": flow, "status": "cancelled"}), flush=True)
    return RUN_EXIT["cancelled"]


async def _run_once(settings: Settings, flow: str) -> int:
    from finappd.runtime import Runtime

    try:
        with _cancel_on_signals():
            async with Runtime(settings) as runtime:
                summary = await runtime.run_flow(flow, "manual")
    except asyncio.CancelledError:
        return _cancelled(flow)
    print(json.dumps(summary.as_dict()), flush=True)
    return RUN_EXIT.get(summary.status, 1)


async def _trigger(settings: Settings, flow: str, *, wait: bool) -> int:
    """Through the daemon's API when it answers (``--wait``: follow the run), else in process."""
    from finappd.api.client import ApiClient, ApiError, DaemonUnreachable

    try:
        async with ApiClient(settings.api) as api:
            run_id = await api.trigger(flow)
            if not wait:
                print(json.dumps({"run_id": run_id, "flow": flow, "via": "api"}), flush=True)
                return 0
            end: dict[str, object] = {}
            async for event in api.events(run_id):
                end = event
    except DaemonUnreachable:
        return await _run_once(settings, flow)
    except ApiError as exc:
        print(f"finappd: the daemon refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(end), flush=True)
    return RUN_EXIT.get(str(end.get("status")), 1)


async def _dry_run(settings: Settings, flow: str) -> int:
    from finappd.flows.dryrun import dry_run
    from finappd.runtime import Runtime

    async with Runtime(settings) as runtime:
        plan = await dry_run(settings, flow, runtime.store, runtime.writer, datetime.now(UTC))
    print(json.dumps(plan), flush=True)
    return 0


async def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    from finappd.flows.backfill import run_backfill
    from finappd.runtime import Runtime

    flow = settings.flow(args.flow)
    end = args.end or datetime.now(UTC).date()
    try:
        with _cancel_on_signals():
            async with Runtime(settings) as runtime:
                chain = [runtime.providers[p] for p in (flow.provider, *flow.fallback)]
                summary = await run_backfill(
                    flow=flow.name,
                    kind=flow.kind,
                    tickers=args.tickers or flow.tickers,
                    start=args.start,
                    end=end,
                    providers=chain,
                    store=runtime.store,
                    writer=runtime.writer,
                    num_workers=flow.num_workers,
                )
    except asyncio.CancelledError:
        return _cancelled(flow.name)
    print(json.dumps(summary.as_dict()), flush=True)
    return RUN_EXIT.get(summary.status, 1)


async def _sim(args: argparse.Namespace) -> int:
    from finappd.sim import SimConfig, serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    config = SimConfig(latency=args.latency, max_concurrency=args.max_concurrency)
    await serve(config, args.host, args.port, stop)
    return 0
