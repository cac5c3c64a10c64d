"""The cost of a fresh process per example (issue 9): median and max, example by example.

Each of the benchmark corpus's first N examples (see ``evalbench/corpus.py``) is timed
two ways, on this machine:

- **in one process**: ``run_example`` called in one Python process that has run every
  example once already (torch warm, nothing to fork): what an example costs when
  examples share a process, as they did before issue 9;
- **in a fresh process**: submitted alone to a ``LocalExecutor(1)`` and waited for
  (request to answer, as the build sees it): the warm parent hands it to a forked child
  (one is kept forked ahead), which runs it, reports and exits.

The overhead of an example is the second minus the first. Run from the repository root:

    python benchmarks/overhead.py            # 50 examples
    python benchmarks/overhead.py --count 200

Needs torch; uses this work tree's package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from evalbench.corpus import make_examples  # noqa: E402

from sphinx_evaldemo.examples.executors.local import LocalExecutor  # noqa: E402
from sphinx_evaldemo.examples.model import ExampleRequest  # noqa: E402

#: Times every request's second run in one process (the first run warms it).
IN_ONE_PROCESS = """
import json, sys, time
import numpy as np
from sphinx_evaldemo.examples.model import ExampleRequest
from sphinx_evaldemo.examples.worker.run import run_example
requests = [ExampleRequest.from_dict(r) for r in json.load(sys.stdin)]
printing = dict(np.get_printoptions())
for request in requests:
    run_example(request, printing)
times = []
for request in requests:
    started = time.perf_counter()
    run_example(request, printing)
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def requests(count: int) -> list[ExampleRequest]:
    return [ExampleRequest(code=e.code(), input=e.input()) for e in make_examples(count)]


def in_one_process(batch: list[ExampleRequest]) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", IN_ONE_PROCESS], input=json.dumps([r.to_dict() for r in batch]),
                          capture_output=True, text=True, env=env, check=True, timeout=600)
    times: list[float] = json.loads(done.stdout)
    return times


def in_fresh_processes(batch: list[ExampleRequest]) -> list[float]:
    with tempfile.TemporaryDirectory() as cwd:
        executor = LocalExecutor(1, cwd)
        try:
            executor.run(batch[0])  # the warm parent's start is not an example's cost
            times = []
            for request in batch:
                started = time.perf_counter()
                result = executor.run(request)
                times.append(time.perf_counter() - started)
                if not result.ok:
                    raise SystemExit(f"an example failed: {result.failure}")
        finally:
            executor.close()
    return times


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"| {label} | {statistics.median(ms):.1f} ms | {ms[0]:.1f} ms | {ms[-1]:.1f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=50, help="examples (default 50)")
    options = parser.parse_args()
    batch = requests(options.count)
    one = in_one_process(batch)
    fresh = in_fresh_processes(batch)
    print(f"{options.count} examples, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print("| per example | median | min | max |\n| --- | ---: | ---: | ---: |")
    print(summary("in one process (second run)", one))
    print(summary("in a fresh process (request to answer)", fresh))
    print(summary("**overhead** (fresh minus one process, example by example)",
                  [f - o for f, o in zip(fresh, one, strict=True)]))


if __name__ == "__main__":
    main()
