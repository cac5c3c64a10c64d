"""Scale-out benchmark: the Dask executor and the shared S3 cache against the local executor.

Three measurements, each from one run of fresh command-line builds (``python -m sphinx
-b html`` in a subprocess), printed as a Markdown table:

* overhead: 50 small Dropout/BatchNorm examples, clean and cold, the local executor with
  2 workers against a 2-worker ``LocalCluster`` started by the build;
* scaling: 64 examples that each sleep 0.5 s (work that does not need this machine's
  cores, like a GPU kernel or I/O) on 1, 2, 4 and 8 Dask worker processes of a cluster
  started and warmed here; the makespan (the examples' own time from the build's closing
  line) against the ideal 32 s / workers;
* shared cache: clean checkouts building against the S3 prefix a first one filled
  (moto's server on 127.0.0.1) against warm local builds (clean checkouts whose local
  cache folder holds every result), ``--repeats`` of each, alternating;
* the author loop: after one example is edited, the incremental rebuild with a Dask
  cluster kept running (torch already imported) against the local executor.

Needs the ``dask`` and ``test`` extras (distributed, s3fs, moto). Run from the repository
root: ``python benchmarks/scaleout.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLOSING = re.compile(r"evaldemo: (\d+) examples? ran, (\d+) came from the cache, (\d+) failed.*\(([\d.]+) s\)")
CONF = 'project = "scaleout"\nextensions = ["sphinx_evaldemo"]\nevaldemo_timeout = 120\n'


def model_example(number: int) -> str:
    width = 4 + number % 7
    layer = ("nn.Dropout(0.5)", f"nn.BatchNorm1d({width})", "nn.Dropout(0.2)")[number % 3]
    return (
        "```{evaldemo}\n"
        f":input: torch.randn(4, {width})\n\n"
        "import torch\nimport torch.nn as nn\n\n"
        f"net = nn.Sequential(nn.Linear({width}, {width}), {layer})  # example {number}\n"
        "```\n"
    )


def sleep_example(number: int) -> str:
    return (
        "```{evaldemo}\n"
        "import time\n"
        "time.sleep(0.5)\n"
        f'print("example {number} waited half a second")\n'
        "```\n"
    )


def write_project(folder: Path, examples: list[str], per_page: int = 5, conf: str = "") -> Path:
    """A project of pages holding ``per_page`` examples each; ``conf`` is added to conf.py.

    (Settings go into conf.py: ``-D evaldemo_workers=2`` reaches Sphinx as a string.)
    """
    src = folder / "src"
    src.mkdir(parents=True)
    (src / "conf.py").write_text(CONF + conf, encoding="utf-8")
    names = []
    for start in range(0, len(examples), per_page):
        name = f"page{start // per_page + 1:03d}"
        names.append(name)
        body = "\n".join(examples[start:start + per_page])
        (src / f"{name}.md").write_text(f"# {name}\n\n{body}", encoding="utf-8")
    toctree = "\n".join(names)
    (src / "index.md").write_text(f"# Scale-out\n\n```{{toctree}}\n{toctree}\n```\n", encoding="utf-8")
    return src


def build(src: Path, out: Path, *defines: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One command-line build; its wall time and what its closing line says."""
    options = [part for define in defines for part in ("-D", define)]
    command = [sys.executable, "-m", "sphinx", "-b", "html", *options, str(src), str(out)]
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=1800, check=False)
    seconds = time.perf_counter() - started
    found = CLOSING.search(done.stdout + done.stderr)
    if done.returncode or found is None or "WARNING" in done.stderr:
        raise SystemExit(f"build failed: {' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    ran, cached, failed, makespan = found.groups()
    return {"wall": seconds, "ran": int(ran), "cached": int(cached), "failed": int(failed),
            "makespan": float(makespan)}


def overhead(base: Path, repeats: int) -> list[str]:
    examples = [model_example(n) for n in range(50)]
    rows = []
    walls: dict[str, list[float]] = {"local": [], "dask": []}
    for attempt in range(repeats):
        for name, conf in (
            ("local", "evaldemo_workers = 2\n"),
            ("dask", 'evaldemo_workers = 2\nevaldemo_executor = "dask"\n'
                     'evaldemo_dask_scheduler = "local"\n'),
        ):
            folder = base / f"overhead-{name}-{attempt}"
            src = write_project(folder, examples, conf=conf)
            done = build(src, folder / "out")
            assert done["ran"] == 50, done
            walls[name].append(done["wall"])
            print(f"  overhead {name} #{attempt + 1}: {done['wall']:.1f} s", flush=True)
    local, dask = statistics.median(walls["local"]), statistics.median(walls["dask"])
    rows.append(f"| 50 examples, clean cold, local executor (2 workers) | {local:.1f} s | |")
    rows.append(f"| 50 examples, clean cold, 2-worker LocalCluster | {dask:.1f} s | {dask / local:.2f} x local (target <= 1.15) |")
    return rows


def scaling(base: Path, counts: list[int]) -> list[str]:
    import dask
    import distributed

    from sphinx_evaldemo.examples.executors.dask import LOCAL_SCHEDULER, run_on_worker
    from sphinx_evaldemo.examples.model import ExampleRequest, dumps

    examples = [sleep_example(n) for n in range(64)]
    rows = []
    for workers in counts:
        with dask.config.set(LOCAL_SCHEDULER):
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                               processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
        try:
            client.wait_for_workers(workers, timeout=300)
            folder = base / f"scaling-{workers}"
            src = write_project(folder, examples, per_page=8)
            warm = dumps(ExampleRequest(code="pass"))
            addresses = list(client.scheduler_info(n_workers=-1)["workers"])
            # torch imported on every worker first, by the executor the build will use
            # (a Dask worker keeps one per source folder)
            client.gather([client.submit(run_on_worker, warm, str(src), workers=[a], pure=False)
                           for a in addresses])
            done = build(src, folder / "out", "evaldemo_executor=dask",
                         env={"EVALDEMO_DASK_SCHEDULER": cluster.scheduler_address})
        finally:
            client.close()
            cluster.close()
        ideal = 32.0 / workers
        rows.append(
            f"| 64 x sleep 0.5 s on {workers} Dask worker process{'es' if workers > 1 else ''} "
            f"| makespan {done['makespan']:.1f} s (build {done['wall']:.1f} s) "
            f"| ideal {ideal:.1f} s: {done['makespan'] / ideal:.2f} x |"
        )
        print("  " + rows[-1], flush=True)
    return rows


def shared_cache(base: Path, repeats: int) -> list[str]:
    """A first checkout fills the S3 prefix; then ``repeats`` pairs of clean checkouts,
    alternating: one against the S3 prefix, one against a warm local cache folder."""
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    walls: dict[str, list[float]] = {"s3": [], "local": []}
    try:
        s3fs.S3FileSystem(endpoint_url=endpoint, key="bench", secret="bench").mkdir("bench")
        examples = [model_example(n) for n in range(50)]
        on_s3 = "evaldemo_cache_dir=s3://bench/shared"
        first = write_project(base / "s3-first", examples)
        cold = build(first, base / "s3-first" / "out", on_s3, env=env)
        local_cache = f"evaldemo_cache_dir={base / 'local-cache'}"
        filler = write_project(base / "local-first", examples)
        build(filler, base / "local-first" / "out", local_cache)
        for attempt in range(repeats):
            for name, define in (("s3", on_s3), ("local", local_cache)):
                folder = base / f"{name}-checkout-{attempt}"
                done = build(write_project(folder, examples), folder / "out", define, env=env)
                assert done["ran"] == 0, done
                walls[name].append(done["wall"])
                print(f"  cache {name} #{attempt + 1}: {done['wall']:.2f} s", flush=True)
    finally:
        server.stop()
    shared, warm = statistics.median(walls["s3"]), statistics.median(walls["local"])
    return [
        f"| 50 examples, first checkout, S3 cache cold | {cold['wall']:.1f} s | {cold['ran']} ran |",
        f"| 50 examples, second clean checkout, same S3 prefix (median of {repeats}) | {shared:.2f} s "
        f"| 0 ran; {shared / warm:.2f} x warm local (target <= 1.2) |",
        f"| 50 examples, clean checkout, warm local cache folder (median of {repeats}) | {warm:.2f} s | 0 ran |",
    ]


def author_loop(base: Path) -> list[str]:
    """One example edited, then an incremental rebuild: a warm cluster against none."""
    import dask
    import distributed

    from sphinx_evaldemo.examples.executors.dask import LOCAL_SCHEDULER

    examples = [model_example(n) for n in range(50)]
    times = {}
    with dask.config.set(LOCAL_SCHEDULER):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    try:
        for name, conf in (("local", ""), ("warm cluster", 'evaldemo_executor = "dask"\n')):
            folder = base / f"author-{name.replace(' ', '-')}"
            src = write_project(folder, examples, conf=conf)
            env = {"EVALDEMO_DASK_SCHEDULER": cluster.scheduler_address}
            build(src, folder / "out", env=env)  # the first build fills the cache (and warms)
            page = src / "page001.md"
            page.write_text(page.read_text().replace("# example 0", "# example 0, edited"))
            done = build(src, folder / "out", env=env)
            assert done["ran"] == 1, done
            times[name] = done["wall"]
    finally:
        cluster.close()
    return [
        f"| one-example edit, rebuild, local executor | {times['local']:.1f} s | |",
        f"| one-example edit, rebuild, warm 2-worker cluster | {times['warm cluster']:.1f} s "
        f"| {times['warm cluster'] / times['local']:.2f} x local |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=1, help="builds of each kind (overhead, shared cache)")
    parser.add_argument("--only", choices=("overhead", "scaling", "cache", "author"), action="append")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    # bytecode, as an installed package has it (PYTHONDONTWRITEBYTECODE may be set)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "sphinx_evaldemo")], check=True)
    base = Path(tempfile.mkdtemp(prefix="evaldemo-scaleout-"))
    rows = ["| what | time | against |", "| --- | --- | --- |"]
    try:
        if not args.only or "overhead" in args.only:
            rows += overhead(base, args.repeats)
        if not args.only or "scaling" in args.only:
            rows += scaling(base, args.workers)
        if not args.only or "cache" in args.only:
            rows += shared_cache(base, args.repeats)
        if not args.only or "author" in args.only:
            rows += author_loop(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nscale-out, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
