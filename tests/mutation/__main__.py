"""Mutation testing of the pure modules and the validation, grant and authz code.

    .venv/bin/python -m tests.mutation                    # every target, one worker
    .venv/bin/python -m tests.mutation upload/parts -j 2  # targets whose name contains a word
    .venv/bin/python -m tests.mutation --audit            # only the audit's named mutants
    .venv/bin/python -m tests.mutation --list dag         # print the mutants, run nothing

Each mutant (tests/mutation/operators.py) is written into a copy of its package on a
PYTHONPATH overlay (the repository is never touched; the namespace package `streamify` finds
the overlay's copy first), then the target's unit test files run with ``pytest -x``: a failing
run KILLS the mutant, a passing one means it SURVIVED, one over the time limit is a TIMEOUT
(an endless loop: noticed, so counted with the killed). Before the mutants, the unmutated copy
must pass the same tests, and must be the module the tests import. At the end: killed /
survived / timeout per target and every survivor's diff; ``--json FILE`` keeps each result as
it comes, ``--report FILE`` prints the report again from it.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.mutation.operators import Mutant, generate, hand_written
from tests.mutation.targets import AUDIT, TARGETS, Target

ROOT = Path(__file__).resolve().parents[2]
KILLED, SURVIVED, TIMEOUT, ERROR = "killed", "survived", "timeout", "error"


@dataclass
class Result:
    ident: str  # target#n, stable while the module's source does not change
    target: str
    line: int
    operator: str
    description: str
    audit: list[str]  # the audit's names for this mutant
    status: str
    seconds: float
    diff: str
    detail: str = ""  # the end of pytest's output, for errors


class Slot:
    """One job slot: a PYTHONPATH overlay holding copies of the targets' packages, and a worker
    process (tests/mutation/worker.py) that runs pytest against it in a fresh fork each time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._copied: set[str] = set()
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "tests.mutation.worker"],
            cwd=ROOT,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )

    def file_of(self, target: Target) -> Path:
        """The target module's path in the overlay (its package copied there on first use)."""
        if target.package_dir not in self._copied:
            src = ROOT / target.package_dir
            dst = self.root / "streamify" / src.name
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            self._copied.add(target.package_dir)
        return (
            self.root / "streamify" / Path(target.path).relative_to(Path(target.package_dir).parent)
        )

    def ask(self, target: Target, args: list[str], timeout: float, probe: str = "") -> dict:
        job = {
            "overlay": str(self.root),
            "args": args,
            "first": ",".join(target.first),
            "oracle": str(self.root.parent / "oracle.pickle"),
            "timeout": timeout,
            "probe": probe,
        }
        assert self._worker.stdin and self._worker.stdout
        self._worker.stdin.write(json.dumps(job) + "\n")
        self._worker.stdin.flush()
        answer = self._worker.stdout.readline()
        if not answer:
            sys.exit("the mutation worker died")
        return json.loads(answer)

    def close(self) -> None:
        if self._worker.stdin:
            self._worker.stdin.close()
        self._worker.wait()


def test_files(target: Target, committed_only: bool) -> list[str]:
    """The target's test files that exist (resolved once, at the start of a run); with
    `committed_only`, only those git knows (the suite before uncommitted test files)."""
    files = [t for t in target.tests if (ROOT / t).exists()]
    if committed_only:
        known = subprocess.run(
            ["git", "ls-files", *files], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        files = [t for t in files if t in known]
    return files


def run_tests(
    target: Target, files: list[str], slot: Slot, timeout: float
) -> tuple[str, float, str]:
    args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "tests.mutation.plugin", *files]
    answer = slot.ask(target, args, timeout)
    # pytest: 0 all passed, 1 a test failed, 2 collection/import error (the mutant broke the import)
    code = answer["code"]
    status = TIMEOUT if code is None else {0: SURVIVED, 1: KILLED, 2: KILLED}.get(code, ERROR)
    return status, answer["seconds"], answer["output"]


def mutants_of(target: Target, audit_only: bool) -> list[Mutant]:
    source = (ROOT / target.path).read_text()
    mutants = [] if audit_only else generate(target.name, source, target.scope)
    by_source = {
        ast.dump(ast.parse(m.source)): i for i, m in enumerate(mutants)
    }  # same code, any layout
    for a in AUDIT:
        if a.target != target.name:
            continue
        m = hand_written(target.name, source, a.old, a.new, a.label, a.occurrence)
        tree = ast.dump(ast.parse(m.source))
        if tree in by_source:  # the same bug as a generated mutant: label that one
            i = by_source[tree]
            old = mutants[i]
            mutants[i] = Mutant(
                old.target,
                old.line,
                old.operator,
                old.description,
                old.source,
                (*old.labels, a.label),
            )
        else:
            by_source[tree] = len(mutants)
            mutants.append(m)
    return mutants


def baseline(target: Target, files: list[str], slot: Slot) -> float:
    """Seconds the unmutated target's tests take; exits if they fail or miss the overlay."""
    file = slot.file_of(target)
    probe = slot.ask(target, [], 60, probe=target.module)
    if Path(probe["output"].strip()) != file:
        sys.exit(
            f"{target.name}: the tests would import {probe['output']!r}, not the overlay's {file}"
        )
    if not files:
        sys.exit(f"{target.name}: none of its test files exists: {target.tests}")
    status, seconds, tail = run_tests(target, files, slot, timeout=900)
    if status != SURVIVED:
        sys.exit(f"{target.name}: the unmutated tests do not pass ({status}):\n{tail}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.mutation", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("targets", nargs="*", help="target names, or words in them (default: all)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel pytest runs (default 1)")
    p.add_argument("--audit", action="store_true", help="only the audit's hand-written mutants")
    p.add_argument(
        "--list", action="store_true", help="print the mutants and their diffs, run nothing"
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="ID",
        help="run one mutant (target#n); repeatable",
    )
    p.add_argument(
        "--json", type=Path, help="write every result to this file as it comes (JSON lines)"
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="print the report of an earlier run's --json file",
    )
    p.add_argument(
        "--committed-tests",
        action="store_true",
        help="run only test files git knows (the score before new, uncommitted tests)",
    )
    args = p.parse_args(argv)
    if args.report:
        report_file(args.report)
        return 0

    targets = [t for t in TARGETS if not args.targets or any(w in t.name for w in args.targets)]
    if not targets:
        p.error(f"no target matches {args.targets}; targets: {', '.join(t.name for t in TARGETS)}")
    work: list[tuple[Target, str, Mutant]] = []
    for target in targets:
        for n, m in enumerate(mutants_of(target, args.audit)):
            ident = f"{target.name}#{n}"
            if not args.only or ident in args.only:
                work.append((target, ident, m))
    sources = {t.name: (ROOT / t.path).read_text() for t in targets}

    if args.list:
        for target, ident, m in work:
            labels = (
                f" [audit: {', '.join(m.labels)}]" if m.operator != "audit" and m.labels else ""
            )
            print(f"{ident} line {m.line} {m.operator}: {m.description}{labels}")
            print(m.diff(sources[target.name], target.path))
        return 0

    started = time.monotonic()
    signal.signal(
        signal.SIGTERM, lambda *_: sys.exit(143)
    )  # still stop the workers, remove the overlays
    tmp = Path(tempfile.mkdtemp(prefix="streamify-mutation-"))
    log = args.json.open("w") if args.json else None
    lock = threading.Lock()
    results: list[Result] = []
    pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
    all_slots = [Slot(tmp / f"w{i}") for i in range(max(1, args.jobs))]
    try:
        slots: queue.Queue[Slot] = queue.Queue()
        for slot in all_slots:
            slots.put(slot)
        first = slots.get()
        limits, files = {}, {}
        for target in {t.name: t for t, _, _ in work}.values():
            files[target.name] = test_files(target, args.committed_tests)
            seconds = baseline(target, files[target.name], first)
            limits[target.name] = max(60.0, 4 * seconds + 30)  # the machine may be shared
            print(
                f"baseline {target.name}: {' '.join(files[target.name])} pass in {seconds:.1f} s",
                flush=True,
            )
        slots.put(first)

        def run(item: tuple[Target, str, Mutant]) -> None:
            target, ident, m = item
            slot = slots.get()
            file = slot.file_of(target)
            try:
                file.write_text(m.source)
                status, seconds, tail = run_tests(
                    target, files[target.name], slot, limits[target.name]
                )
            finally:
                file.write_text(sources[target.name])
                slots.put(slot)
            r = Result(
                ident,
                target.name,
                m.line,
                m.operator,
                m.description,
                list(m.labels),
                status,
                round(seconds, 2),
                m.diff(sources[target.name], target.path),
                tail if status == ERROR else "",
            )
            with lock:
                results.append(r)
                print(
                    f"{status:8} {seconds:5.1f} s  {ident} line {m.line}: {m.description}",
                    flush=True,
                )
                if log:
                    log.write(json.dumps(asdict(r)) + "\n")
                    log.flush()

        for future in [pool.submit(run, item) for item in work]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for slot in all_slots:
            slot.close()
        if log:
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    order = {ident: i for i, (_, ident, _) in enumerate(work)}
    report(
        sorted(results, key=lambda r: order[r.ident]),
        [t.name for t in targets],
        f"{(time.monotonic() - started) / 60:.1f} min",
    )
    return 0


def report(results: list[Result], targets: list[str], elapsed: str) -> None:
    print(
        f"\n{'target':24} {'mutants':>7} {'killed':>7} {'survived':>8} {'timeout':>7} {'error':>5} {'score':>6}"
    )
    totals = dict.fromkeys((KILLED, SURVIVED, TIMEOUT, ERROR), 0)
    for target in targets:
        mine = [r for r in results if r.target == target]
        if not mine:
            continue
        counts = {s: sum(r.status == s for r in mine) for s in totals}
        for s, n in counts.items():
            totals[s] += n
        score = (counts[KILLED] + counts[TIMEOUT]) / len(mine)
        print(
            f"{target:24} {len(mine):7} {counts[KILLED]:7} {counts[SURVIVED]:8} "
            f"{counts[TIMEOUT]:7} {counts[ERROR]:5} {score:6.1%}"
        )
    n = len(results)
    score = (totals[KILLED] + totals[TIMEOUT]) / n if n else 1.0
    print(
        f"{'total':24} {n:7} {totals[KILLED]:7} {totals[SURVIVED]:8} {totals[TIMEOUT]:7} "
        f"{totals[ERROR]:5} {score:6.1%}   ({elapsed})"
    )
    for r in results:
        if r.status in (SURVIVED, ERROR):
            labels = f" [audit: {', '.join(r.audit)}]" if r.operator != "audit" and r.audit else ""
            print(
                f"\n{r.status.upper()} {r.ident} line {r.line} {r.operator}: {r.description}{labels}"
            )
            print(r.diff.rstrip())
            if r.detail:
                print(r.detail.rstrip())


def report_file(path: Path) -> None:
    """The report of a finished (or interrupted) run from its --json file."""
    results = [Result(**json.loads(line)) for line in path.read_text().splitlines() if line]
    names = [t.name for t in TARGETS]
    results.sort(key=lambda r: (names.index(r.target), int(r.ident.rpartition("#")[2])))
    report(results, names, "see the run's log for its time")


if __name__ == "__main__":
    raise SystemExit(main())
