"""The cost of fair-share claiming: `Store.claim` (the owner with the fewest running tasks
first) against the first-in-first-out claim it replaced (one UPDATE of the oldest pending
tasks): the same jobs in two fresh databases of the same kind, measured one after the other.

    .venv/bin/python bench/claim.py [--jobs 5000] [--owners 50] [--claims 200] [--database-url URL]

Default database: a SQLite file in a temporary directory; pass a PostgreSQL URL to measure
that. Prints the median and p99 milliseconds of one claim of two slots (what a worker asks for).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable

from common import log
from sqlalchemy import select, update

from streamify.core.config import TranscodeSettings
from streamify.core.db import make_engine, make_sessions
from streamify.transcode.orchestrator import dag, schema
from streamify.transcode.orchestrator.models import TaskRow
from streamify.transcode.orchestrator.store import Store

SLOTS = 2


def fifo_claim(sessions) -> Callable[[], int]:
    """The previous claim: the oldest pending tasks, whoever owns them."""
    t = TaskRow

    def claim() -> int:
        with sessions() as session, session.begin():
            ready = select(t.id).where(t.state == dag.PENDING, t.kind != dag.ASSEMBLE)
            ready = ready.order_by(t.id).limit(SLOTS).scalar_subquery()
            rows = session.execute(
                update(t)
                .where(t.id.in_(ready), t.state == dag.PENDING)
                .values(state=dag.RUNNING, lease_id=secrets.token_hex(16))
                .returning(t.id)
            ).all()
            return len(rows)

    return claim


def measure(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--owners", type=int, default=50)
    p.add_argument("--claims", type=int, default=200)
    p.add_argument("--database-url", default="")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name in ("fair share (Streamify)", "FIFO (before)"):
            url = args.database_url or f"sqlite:///{tmp}/{len(results)}.db"
            engine = make_engine(url)
            schema.upgrade(engine)
            sessions = make_sessions(engine)
            store = Store(sessions, TranscodeSettings(), "media")
            for i in range(args.jobs):
                store.create_job(
                    f"j{i:06d}{len(results)}", f"users/u{i % args.owners}", "b", "k", 1
                )
            fn = (
                (lambda s=store: s.claim("w", SLOTS))
                if name.startswith("fair")
                else fifo_claim(sessions)
            )
            results[name] = measure(fn, args.claims)
            engine.dispose()
        log(
            f"{args.jobs} pending tasks of {args.owners} owners, {args.claims} claims of {SLOTS} slots"
        )
        log(f"{'claim':<26}{'median ms':>10}{'p99 ms':>9}")
        for name, times in results.items():
            p99 = times[max(0, int(len(times) * 0.99) - 1)]
            log(f"{name:<26}{statistics.median(times):>10.2f}{p99:>9.2f}")


if __name__ == "__main__":
    main()
