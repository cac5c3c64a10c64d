"""The cost of a fresh process per example (issue 9): median and max, example by example.

Each of the benchmark corpus's first N examples (see ``evalbench/corpus.py``) is timed
two ways, on this machine:

- **in one process**: ``run_example`` called in one Python process that has run every
  example once already (torch warm, nothing to fork): what an example costs when
  examples share a process, as they did before issue 9;
- **in a fresh process**: submitted alone to a ``LocalExecutor(1)`` and waited for
  (request to answer, as the build sees it): the warm parent hands it to a forked child
  (one is kept forked ahead), which runs it, reports and exits.

The overhead of an example is the second minus the first. Then, where the overhead goes
(``--split``, Linux): a process warmed as the worker warms its parent forks, for each
example, a child that runs the example twice and reports each run's CPU time and page
faults (the first run pays for the pages it is the first to write: copy-on-write; the
second finds them copied), and a child that does nothing, for the fork and exit alone.
Run from the repository root:

    python benchmarks/overhead.py            # 50 examples
    python benchmarks/overhead.py --count 200
    python benchmarks/overhead.py --split     # also where a fresh process's cost goes

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

from sphinx_evaldemo.examples.executors.local import LocalExecutor, _add_tunables  # noqa: E402
from sphinx_evaldemo.examples.model import ExampleRequest, encode  # noqa: E402

#: Times every request's second run in one process (the first run warms it).
IN_ONE_PROCESS = """
import json, sys, time
import numpy as np
from sphinx_evaldemo.examples.model import ExampleRequest, decode, encode
from sphinx_evaldemo.examples.worker.run import run_example
requests = [decode(ExampleRequest, r) for r in json.load(sys.stdin)]
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


#: Forks one child per example, as the warm parent does, and measures inside each child.
SPLIT = """
import json, os, resource, sys, time
from sphinx_evaldemo.examples.model import ExampleRequest, decode, encode
from sphinx_evaldemo.examples.worker.__main__ import warm
from sphinx_evaldemo.examples.worker.run import run_example
requests = [decode(ExampleRequest, r) for r in json.load(sys.stdin)]
start, printing = warm("fork")
assert start == "fork", start

def used():
    mine = resource.getrusage(resource.RUSAGE_SELF)
    return mine.ru_utime + mine.ru_stime, mine.ru_minflt

def in_child(work):
    read, write = os.pipe()
    began = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, json.dumps(work()).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.close(read)
    child = os.wait4(pid, 0)[2]
    wall = time.perf_counter() - began
    return json.loads(data), wall, child.ru_utime + child.ru_stime, child.ru_minflt

def twice(request):
    def work():
        runs = []
        for _ in range(2):
            cpu, faults = used()
            run_example(request, printing, fresh=True)
            after = used()
            runs.append((after[0] - cpu, after[1] - faults))
        return runs
    return work

rows = [in_child(twice(r)) for r in requests]
empty = [in_child(lambda: []) for _ in requests]
print(json.dumps({"rows": rows, "empty": empty}))
"""


def requests(count: int) -> list[ExampleRequest]:
    return [ExampleRequest(code=e.code(), input=e.input()) for e in make_examples(count)]


def in_one_process(batch: list[ExampleRequest]) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", IN_ONE_PROCESS], input=json.dumps([encode(r) for r in batch]),
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


def split(batch: list[ExampleRequest]) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    _add_tunables(env)  # the warm parent's heap on huge pages, as the executor starts it
    done = subprocess.run([sys.executable, "-c", SPLIT], input=json.dumps([encode(r) for r in batch]),
                          capture_output=True, text=True, env=env, check=True, timeout=600)
    data = json.loads(done.stdout)
    rows, empty = data["rows"], data["empty"]

    def line(label: str, values: list[float], unit: str = "ms", scale: float = 1000) -> str:
        value = statistics.median(values) * scale
        return f"| {label} | {value:.1f} {unit} |" if unit else f"| {label} | {value:.0f} |"

    return "\n".join([
        "| a fresh child, per example | median |", "| --- | ---: |",
        line("fork and exit of a child that runs nothing: wall", [e[1] for e in empty]),
        line("the same: the child's CPU", [e[2] for e in empty]),
        line("the same: the child's page faults", [e[3] for e in empty], "", 1),
        line("first run of the example in its child: CPU", [r[0][0][0] for r in rows]),
        line("the same: page faults", [r[0][0][1] for r in rows], "", 1),
        line("second run of the same example in the same child: CPU", [r[0][1][0] for r in rows]),
        line("the same: page faults", [r[0][1][1] for r in rows], "", 1),
    ])


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"| {label} | {statistics.median(ms):.1f} ms | {ms[0]:.1f} ms | {ms[-1]:.1f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=50, help="examples (default 50)")
    parser.add_argument("--split", action="store_true", help="also where a fresh process's cost goes")
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
    if options.split:
        print()
        print(split(batch))


if __name__ == "__main__":
    main()
