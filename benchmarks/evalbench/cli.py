"""The command line: ``python benchmarks/bench.py`` (same flags as always)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import common
from .builds import Runner
from .common import HERE
from .corpus import make_pages
from .report import dump, load, machine, machine_line, report, use_package
from .scenarios import COMPETITORS, Bench, Results

DESCRIPTION = "Build-time benchmark: sphinx-evaldemo against plain code blocks, the raw run, and others."


def importable(python: str, module: str) -> bool:
    done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False,
                          cwd=tempfile.gettempdir())
    return done.returncode == 0


@contextlib.contextmanager
def scratch(out: Path, keep: bool) -> Iterator[Path]:
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100],
                        help="numbers of examples (five a page)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--out", type=Path, default=HERE / "_runs", help="where reports go")
    parser.add_argument("--competitors", action="store_true",
                        help="also build with sphinx-gallery, MyST-NB, jupyter-sphinx")
    parser.add_argument("--competitor-repeats", type=int, default=None,
                        help="runs of each competitor measurement (default: --repeats)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that runs the builds and the floor")
    parser.add_argument("--rev", metavar="REV",
                        help="measure the package as committed at REV (e.g. HEAD), not the "
                             "working tree")
    parser.add_argument("--keep", action="store_true", help="keep the generated trees")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-build timings")
    parser.add_argument("--per-page", type=int, default=common.PER_PAGE, metavar="N",
                        help=f"examples a page (default {common.PER_PAGE}; issue 13's 1,000 "
                             "examples are on 100 pages: 10)")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="only print the report of an earlier run's latest.json")
    args = parser.parse_args(argv)
    if args.from_json:
        raw = json.loads(args.from_json.read_text())
        common.PER_PAGE = int(raw.get("per_page", common.PER_PAGE))
        print(report(load(raw["results"]), raw["sizes"], raw["machine"], raw["header"]))
        return 0
    sizes = sorted(set(args.sizes))
    common.PER_PAGE = args.per_page
    python = args.python
    args.out = args.out.resolve()
    package = use_package(python, args.rev, args.out)
    competitors: list[str] = []
    if args.competitors:
        for name, module in COMPETITORS.items():
            if importable(python, module):
                competitors.append(name)
            else:
                print(f"skipping {name}: {python} cannot import {module}", flush=True)
        if "myst-nb" in competitors and not importable(python, "ipykernel"):
            print("skipping myst-nb: no ipykernel (it needs a Jupyter kernel)", flush=True)
            competitors.remove("myst-nb")
        if "jupyter-sphinx" in competitors and not importable(python, "ipykernel"):
            print("skipping jupyter-sphinx: no ipykernel", flush=True)
            competitors.remove("jupyter-sphinx")
    competitor_repeats = args.competitor_repeats or args.repeats

    info = machine(python, competitors, package)
    print(f"machine: {machine_line(info)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with scratch(args.out, args.keep) as work:
        runner = Runner(python, work, verbose=not args.quiet)
        bench = Bench(runner, results)
        print("warming up", flush=True)
        bench.warm_up()
        for repeat in range(max(args.repeats, competitor_repeats if competitors else 0)):
            for size in sizes:
                pages = make_pages(size)
                print(f"run {repeat + 1}, {size} examples on {len(pages)} pages", flush=True)
                if repeat < args.repeats:
                    bench.plain(size, pages)
                    bench.floor(size, pages)
                    bench.evaldemo(size, pages)
                if repeat < competitor_repeats:
                    for name in competitors:
                        bench.competitor(name, size, pages)
    elapsed = time.perf_counter() - started
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    reps = f"medians of {args.repeats} runs"
    if competitors and competitor_repeats != args.repeats:
        reps += f" ({competitor_repeats} for the competitors)"
    header = (
        f"### Benchmark, {stamp}\n\n{common.PER_PAGE} examples a page; wall time of each build "
        f"(one subprocess each), {reps}; whole run {elapsed / 60:.1f} min; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"OMP_NUM_THREADS={runner.env['OMP_NUM_THREADS']}."
    )
    table = report(results, sizes, info, header)
    print()
    print(table)
    (args.out / "latest.md").write_text(table, encoding="utf-8")
    raw = {"machine": info, "sizes": sizes, "results": dump(results), "elapsed": elapsed,
           "header": header, "per_page": common.PER_PAGE}
    (args.out / "latest.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    print(f"written: {args.out / 'latest.md'}, {args.out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
