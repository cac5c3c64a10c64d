"""The report: tables, targets and ratios, and the run's JSON."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import common
from .builds import PHASES, Build
from .common import REPO
from .scenarios import ROWS, Results


def machine(python: str, competitors: list[str], package: str) -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    probe = (
        "import json, sys\nfrom importlib import metadata\n"
        "def v(name):\n    try:\n        return metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n        return None\n"
        f"names = ['torch', 'sphinx', 'myst-parser', 'docutils', *{competitors!r}]\n"
        "print(json.dumps({'python': sys.version.split()[0], "
        "**{n: v(n) for n in names}}))\n"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir())
    versions: dict[str, str] = json.loads(done.stdout)
    return {
        "cpu": cpu, "cores": str(cores), "os": platform.platform(terse=True),
        "sphinx-evaldemo": package, **versions,
    }


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def revision() -> str:
    """The commit the working tree's package stands on, and whether its files differ from it."""
    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown revision"
    dirty = git("status", "--porcelain", "--", "sphinx_evaldemo")
    return commit + (" + uncommitted changes to sphinx_evaldemo/" if dirty else "")


def locate(python: str) -> Path | None:
    """Where ``python`` imports sphinx_evaldemo from (run outside any checkout)."""
    done = subprocess.run(
        [python, "-c", "import sphinx_evaldemo; print(sphinx_evaldemo.__file__)"],
        capture_output=True, text=True, check=False, cwd=tempfile.gettempdir(),
    )
    return Path(done.stdout.strip()).resolve().parent if done.returncode == 0 else None


def use_package(python: str, rev: str | None, out: Path) -> str:
    """Make the builds import the package at ``rev`` (or the working tree); describe it.

    Others may be editing the working tree while a benchmark runs; ``--rev HEAD`` measures
    a fixed snapshot instead, exported with ``git archive`` and put first on PYTHONPATH.
    """
    if rev:
        commit = git("rev-parse", "--short", rev)
        if not commit:
            raise SystemExit(f"unknown revision {rev!r}")
        root = out / f"package-{commit}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "sphinx_evaldemo"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        wanted, described = root / "sphinx_evaldemo", f"{commit} (exported)"
    else:
        wanted, described = REPO / "sphinx_evaldemo", revision()
    # bytecode, as an installed package or a long-used checkout has it (with
    # PYTHONDONTWRITEBYTECODE set, every build would compile the package again)
    subprocess.run([python, "-m", "compileall", "-q", str(wanted)], check=True)
    if locate(python) != wanted.resolve():
        path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(wanted.parent), path]))
    found = locate(python)
    if found != wanted.resolve():
        raise SystemExit(f"{python} imports sphinx_evaldemo from {found}, not from {wanted}")
    return described


def machine_line(info: dict[str, str]) -> str:
    fixed = ("cpu", "cores", "os", "python")
    versions = ", ".join(f"{k} {v}" for k, v in info.items() if k not in fixed and v)
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['os']}; Python {info['python']}; "
        f"{versions}"
    )


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _ran_note(builds: list[Build]) -> str:
    runs = sorted({b.ran for b in builds if b.ran is not None})
    if not runs:
        return ""
    return f" · {'/'.join(map(str, runs))} ran"


def check(ok: bool) -> str:
    return "✓" if ok else "✗"


@dataclass
class Target:
    label: str
    values: dict[int, tuple[str, bool] | None]


def targets(results: Results, sizes: list[int]) -> tuple[list[Target], list[Target]]:
    med = results.median
    rows: list[Target] = []

    def per_size(label: str, compute: Callable[[int], tuple[str, bool] | None]) -> None:
        rows.append(Target(label, {size: compute(size) for size in sizes}))

    def ratio(
        size: int, top: str, bottom: list[str], limit: float, stretch: float | None = None
    ) -> tuple[str, bool] | None:
        a, parts = med(size, top), [med(size, k) for k in bottom]
        if a is None or None in parts:
            return None
        value = a / sum(p for p in parts if p is not None)
        text = f"{value:.2f}" + (f" (stretch {check(value <= stretch)})" if stretch else "")
        return text, value <= limit

    per_size("clean, cold cache ≤ 1.2 x (plain + floor); stretch ≤ 1.0",
             lambda s: ratio(s, "ext.cold", ["plain.clean", "floor"], 1.2, 1.0))
    per_size("clean, warm cache ≤ 1.15 x plain", lambda s: ratio(s, "ext.warm", ["plain.clean"], 1.15))
    per_size("prose edit ≤ 1.15 x plain's prose rebuild",
             lambda s: ratio(s, "ext.prose", ["plain.prose"], 1.15))

    def ran_right(size: int) -> tuple[str, bool] | None:
        prose = results.builds(size, "ext.prose")
        code = results.builds(size, "ext.code")
        warm = results.builds(size, "ext.warm")
        if not prose or not code:
            return None
        ok = (all(b.ran == 0 for b in prose) and all(b.ran == 1 for b in code)
              and all(b.ran == 0 and not b.children_maxrss_mb and not b.workers for b in warm))
        return (f"{_ran_note(prose)[3:]} / {_ran_note(code)[3:]} / "
                f"{_ran_note(warm)[3:]}"), ok

    per_size("examples run: prose edit 0 / code edit 1 / warm 0 (no worker)", ran_right)

    def parallel(size: int) -> tuple[str, bool] | None:
        j2, j1 = med(size, "ext.j2"), med(size, "ext.cold")
        if j2 is None or j1 is None:
            return None
        return f"{j2 / j1:.2f}", j2 < j1

    per_size("`-j 2` cold < `-j 1` cold (ratio)", parallel)

    def memory(size: int) -> tuple[str, bool] | None:
        plain = [b.maxrss_mb for b in results.builds(size, "plain.clean") if b.maxrss_mb]
        ext = [b.maxrss_mb for b in results.builds(size, "ext.cold") if b.maxrss_mb]
        torch_in = any(b.torch_loaded for k in ("ext.cold", "ext.warm", "ext.j2")
                       for b in results.builds(size, k))
        if not plain or not ext:
            return None
        diff = statistics.median(ext) - statistics.median(plain)
        text = f"{diff:+.1f} MB" + (" (torch imported!)" if torch_in else "")
        return text, diff <= 30 and not torch_in

    per_size("Sphinx process peak RSS: evaldemo cold - plain ≤ 30 MB, no torch", memory)

    return rows, growth_rows(results, sizes)


def growth_rows(results: Results, sizes: list[int]) -> list[Target]:
    """What each example added between the smallest and the largest corpus, against the floor's
    and the plain build's growth; in wall time (the target) and in CPU time (steadier)."""
    low, high = min(sizes), max(sizes)
    if low == high:
        return []
    rows = []
    for metric, pick in (("wall", lambda b: b.seconds), ("CPU", lambda b: b.cpu)):
        def med(size: int, key: str, pick: Callable[[Build], float | None] = pick) -> float | None:
            values = [v for b in results.builds(size, key) if (v := pick(b)) is not None]
            return statistics.median(values) if values else None

        needed = [med(s, k) for s in (low, high) for k in ("ext.cold", "floor", "plain.clean")]
        if None in needed:
            continue
        e0, f0, p0, e1, f1, p1 = (n for n in needed if n is not None)
        added, reference = e1 - e0, (f1 - f0) + (p1 - p0)
        per_example = added / (high - low) * 1000
        per_reference = reference / (high - low) * 1000
        label = (f"cost growth {low}→{high} ({metric} time): Δevaldemo cold / "
                 "(Δfloor + Δplain) ≤ 1.2")
        if reference <= 0:
            value = (f"undetermined: floor + plain did not grow ({per_reference:+.0f} ms/ex.; "
                     f"evaldemo {per_example:+.0f} ms/ex.)", False)
        else:
            ratio = added / reference
            value = (f"{ratio:.2f} ({per_example:.0f} against {per_reference:.0f} ms per "
                     "added example)", ratio <= 1.2)
        rows.append(Target(label, {high: value}))
    # The floor's total hides its growth (a few ms an example) under the noise of
    # ``import torch``; the script also times its examples alone, which is steadier.
    def inside(size: int) -> float | None:
        parts = results.floor_parts.get(size) or []
        return statistics.median(p["examples"] for p in parts) if parts else None

    needed = [results.median(low, "ext.cold"), results.median(high, "ext.cold"), inside(low),
              inside(high), results.median(low, "plain.clean"), results.median(high, "plain.clean")]
    if None not in needed:
        e0, e1, f0, f1, p0, p1 = (n for n in needed if n is not None)
        reference = (f1 - f0) + (p1 - p0)
        if reference > 0:
            ratio = (e1 - e0) / reference
            label = (f"cost growth {low}→{high}, floor's examples timed inside the script "
                     "(its import left out): same ratio ≤ 1.2")
            value = (f"{ratio:.2f} ({(e1 - e0) / (high - low) * 1000:.0f} against "
                     f"{reference / (high - low) * 1000:.0f} ms per added example)", ratio <= 1.2)
            rows.append(Target(label, {high: value}))
    return rows


def report(results: Results, sizes: list[int], info: dict[str, str], header: str) -> str:
    pages = {size: -(-size // common.PER_PAGE) for size in sizes}
    heads = [f"{size} ex. ({pages[size]} p.)" for size in sizes]
    lines = [header, "", f"Machine: {machine_line(info)}", ""]
    lines += ["| build | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(sizes)]
    for key, label in ROWS.items():
        if not any(results.builds(size, key) or (size, key) in results.failures
                   for size in sizes):
            continue
        cells = []
        for size in sizes:
            builds = results.builds(size, key)
            note = _ran_note(builds) if key.startswith("ext.") else ""
            count = f" (n={len(builds)})" if builds and len(builds) != _most(results) else ""
            failed = " (failed)" if (size, key) in results.failures else ""
            cells.append(seconds(results.median(size, key)) + note + count + failed)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| target (ratio of medians) | " + " | ".join(heads) + " | met |",
              "|---|" + "---:|" * len(sizes) + ":---:|"]
    rows, growth = targets(results, sizes)
    for row in [*rows, *growth]:
        cells = []
        for size in sizes:
            value = row.values.get(size)
            cells.append("" if value is None else f"{value[0]} {check(value[1])}")
        known = [v[1] for v in row.values.values() if v is not None]
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {check(all(known)) if known else '—'} |")
    lines += ["", "| Sphinx process | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(sizes)]
    for key, label in (("plain.clean", "peak RSS, plain build"), ("ext.cold", "peak RSS, evaldemo cold build"),
                       ("ext.warm", "peak RSS, evaldemo warm build")):
        cells = []
        for size in sizes:
            rss = [b.maxrss_mb for b in results.builds(size, key) if b.maxrss_mb]
            cells.append(f"{statistics.median(rss):.0f} MB" if rss else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for size in sizes:
        loaded = [b.torch_loaded for k in ("ext.cold", "ext.warm", "ext.j2") for b in results.builds(size, k)]
        cells.append("—" if not loaded else ("yes ✗" if any(loaded) else "no ✓"))
    lines.append("| `torch` in the Sphinx process's `sys.modules` | " + " | ".join(cells) + " |")
    floor = []
    for size in sizes:
        parts = results.floor_parts.get(size) or []
        if parts:
            imp = statistics.median(p["import"] for p in parts)
            run = statistics.median(p["examples"] for p in parts)
            floor.append(f"{imp:.2f} s + {run:.2f} s ({run / size * 1000:.1f} ms/ex.)")
        else:
            floor.append("—")
    lines.append("| floor, inside: `import torch` + the examples | " + " | ".join(floor) + " |")
    inside = []
    for size in sizes:
        cold = results.builds(size, "ext.cold")
        runs = [b.example_seconds for b in cold if b.example_seconds is not None]
        waits = [b.closing_seconds for b in cold if b.closing_seconds is not None]
        if runs and waits:
            run = statistics.median(runs)
            inside.append(
                f"{run:.2f} s ({run / size * 1000:.1f} ms/ex.); wait {statistics.median(waits):.2f} s"
            )
        else:
            inside.append("—")
    lines.append(
        "| evaldemo cold, inside: the examples' run times in the workers; "
        "wait after reading (closing line) | " + " | ".join(inside) + " |"
    )
    lines += ["", *cpu_table(results, sizes, heads)]
    if results.failures:
        lines += ["", "Failed builds (not in the medians):", ""]
        lines += [f"- {key}, {size} examples: {why}" for (size, key), why in results.failures.items()]
    lines += ["", *phase_table(results, max(sizes))]
    return "\n".join(lines) + "\n"


def cpu_table(results: Results, sizes: list[int], heads: list[str]) -> list[str]:
    """CPU seconds (user + system, with the workers and kernels): less sensitive to other load."""
    lines = [
        "CPU time (user + system of the build and all its child processes; medians):",
        "",
        "| build | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for key, label in ROWS.items():
        cells = []
        for size in sizes:
            cpu = [b.cpu for b in results.builds(size, key) if b.cpu is not None]
            cells.append(seconds(statistics.median(cpu)) if cpu else "—")
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def phase_table(results: Results, size: int) -> list[str]:
    """Medians of each phase of each Sphinx build, for one size."""
    names = list(PHASES)
    lines = [
        f"Where the time goes, {size} examples (medians, seconds; `search` is part of `write`):",
        "",
        "| build | " + " | ".join(names) + " | total |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for key, label in ROWS.items():
        builds = [b for b in results.builds(size, key) if b.phases]
        if not builds:
            continue
        cells = [f"{statistics.median(b.phases[n] for b in builds):.2f}" for n in names]
        total = statistics.median(b.seconds for b in builds)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {total:.2f} |")
    return lines


def _most(results: Results) -> int:
    counts = [len(b) for per in results.samples.values() for b in per.values()]
    return max(counts) if counts else 0


def dump(results: Results) -> dict[str, object]:
    return {
        str(size): {
            key: [
                {k: v for k, v in vars(b).items() if k != "stdout"} for b in builds
            ]
            for key, builds in per.items()
        }
        for size, per in results.samples.items()
    } | {
        "floor_parts": {str(k): v for k, v in results.floor_parts.items()},
        "failures": [[size, key, why] for (size, key), why in results.failures.items()],
    }


def load(raw: dict[str, Any]) -> Results:
    """The inverse of :func:`dump`."""
    results = Results()
    for size, per in raw.items():
        if size.isdigit():
            for key, builds in per.items():
                for build in builds:
                    results.add(int(size), key, Build(**build))
    results.floor_parts = {int(k): v for k, v in raw.get("floor_parts", {}).items()}
    results.failures = {(size, key): why for size, key, why in raw.get("failures", [])}
    return results


