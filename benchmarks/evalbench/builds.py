"""Running one build in a fresh subprocess and splitting its wall time into phases."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import CLOSING, WRAPPER


class BuildFailed(RuntimeError):
    """A build or script exited with a non-zero status."""


@dataclass
class Build:
    seconds: float
    cpu: float | None = None  # user + system seconds, the process and its descendants
    stdout: str = ""
    ran: int | None = None
    cached: int | None = None
    failed: int | None = None
    maxrss_mb: float | None = None
    children_maxrss_mb: float | None = None
    torch_loaded: bool | None = None
    warnings: int = 0
    closing_seconds: float | None = None  # the "(T s)" of evaldemo's closing line
    workers: int | None = None  # workers started, when the closing line says
    example_seconds: float | None = None  # the examples' own run times, summed (from the cache)
    phases: dict[str, float] = field(default_factory=dict)


#: phase -> what it covers, in the order of a build
PHASES = {
    "start": "interpreter start-up and Sphinx's imports",
    "init": "configuration, extensions' setup, builder, environment",
    "read": "reading and parsing the pages",
    "env-updated": "env-updated handlers (evaldemo: waiting for the examples, stopping workers)",
    "write": "resolving and writing pages",
    "search": "of which: feeding the search index",
    "finish": "build-finished handlers, search index and static files",
    "exit": "interpreter shutdown",
}


def phases(info: dict[str, Any], launched: float, ended: float) -> dict[str, float]:
    """Split one build's wall time at its events (times are seconds since the epoch)."""
    events: dict[str, list[float]] = info["events"]
    main_start, main_end = info["main_start"], info["main_end"]

    def at(name: str, index: int, default: float) -> float:
        return events[name][index] if name in events else default

    read_start = at("env-before-read-docs", 0, at("env-updated", 0, main_start))
    updated_start = at("env-updated", 0, read_start)
    updated_end = at("env-updated", 1, updated_start)
    finished = at("build-finished", 0, main_end)
    return {
        "start": main_start - launched,
        "init": read_start - main_start,
        "read": updated_start - read_start,
        "env-updated": updated_end - updated_start,
        "write": finished - updated_end,
        "search": info["search_feed"],
        "finish": main_end - finished,
        "exit": ended - main_end,
    }


class Runner:
    def __init__(self, python: str, work: Path, verbose: bool) -> None:
        self.python = python
        self.work = work
        self.verbose = verbose
        self.env = dict(os.environ)
        # One thread per process, as the extension's workers use: on 2 cores, torch's
        # default of one thread per core, next to any other busy process, makes these small
        # examples up to 100 times slower (threads spin waiting for each other).
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self._serial = 0
        self.launched = self.ended = self.cpu = 0.0  # of the last subprocess

    def fresh(self, label: str) -> Path:
        self._serial += 1
        path = self.work / f"{self._serial:04d}-{label}"
        path.mkdir(parents=True)
        return path

    def _run(self, command: list[str], what: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        self.launched = time.time()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=self.env,
                              cwd=self.work, check=False)
        seconds = time.perf_counter() - started
        self.ended = time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time of the process and every descendant it waited for (workers, kernels)
        self.cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if done.returncode != 0:
            raise BuildFailed(
                f"{what} failed with status {done.returncode}:\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}"
            )
        if self.verbose:
            print(f"    {what}: {seconds:.2f} s", flush=True)
        return seconds, done

    def sphinx(self, src: Path, run: Path, *options: str, what: str = "sphinx") -> Build:
        """One ``sphinx-build -b html`` in a subprocess; out and doctrees live under ``run``."""
        stats = run / "stats.json"
        command = [
            self.python, "-c", WRAPPER, str(stats), "-b", "html",
            str(src), str(run / "html"), "-d", str(run / "doctrees"), *options,
        ]
        seconds, done = self._run(command, what)
        info = json.loads(stats.read_text())
        build = Build(
            seconds,
            stdout=done.stdout,
            maxrss_mb=info["maxrss_kb"] / 1024,
            children_maxrss_mb=info["children_maxrss_kb"] / 1024,
            torch_loaded=info["torch_loaded"],
            warnings=done.stderr.count("WARNING"),
            phases=phases(info, self.launched, self.ended),
            cpu=self.cpu,
        )
        closing = CLOSING.search(done.stdout)
        if closing:
            build.ran, build.cached, build.failed = (
                int(closing[name]) for name in ("ran", "cached", "failed")
            )
            build.workers = int(closing["workers"]) if closing["workers"] else None
            build.closing_seconds = float(closing["seconds"])
        elif re.search(r"evaldemo: \d+ examples? ran", done.stdout):
            raise RuntimeError(f"{what}: the closing line changed; update CLOSING:\n{done.stdout}")
        elif "sphinx_evaldemo" in (src / "conf.py").read_text():
            build.ran = build.cached = build.failed = 0  # nothing read, nothing to say
        if build.warnings and self.verbose:
            print(textwrap.indent(done.stderr[-2000:], "      "), flush=True)
        return build

    def python_script(self, script: Path, what: str) -> tuple[float, dict[str, float]]:
        seconds, done = self._run([self.python, str(script)], what)
        found = re.search(r"floor-timing (\{.*\})", done.stderr)
        return seconds, json.loads(found.group(1)) if found else {}


