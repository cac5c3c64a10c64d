"""Nothing an example does to its interpreter reaches another example.

Each poison below changes its process the way a user's example might (a monkeypatch, a
global hook, a thread, a signal, a setting); the victim that follows it, on the same
page and on the next page, must show what it shows in a fresh interpreter, and its
model's real output. Built serially with one example at a time (the poison's process
would be the victim's, were processes reused) and with ``-j 2`` and two at a time; the
pages of the two builds must be byte-identical.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from sphinx.testing.util import SphinxTestApp
from torch import nn

from tests.conftest import ROOTS
from tests.helpers import outputs, sections, seed_all, warnings

#: name -> code that changes the process (each prints one fixed line, nothing else).
POISONS = {
    "dropout-forward": "import torch\ntorch.nn.Dropout.forward = lambda self, x: x",
    "relu": "import torch\ntorch.nn.functional.relu = lambda input, inplace=False: input * 0",
    "forward-hook": "import torch\ntorch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o * 0)",
    "printing-thread": (
        "import threading, time\n\ndef chatter():\n    time.sleep(2)\n    while True:\n"
        "        print('LEAKED')\n        time.sleep(0.001)\n\n"
        "threading.Thread(target=chatter, daemon=True).start()"
    ),
    "json-dumps": "import json\njson.dumps = lambda *args, **kwargs: 'not json'",
    "signal-alarm": "import signal\nsignal.alarm(1)",
    "close-stdin": "import os\nos.close(0)",
    "environment": "import os\nos.environ['EVALDEMO_POISON'] = 'yes'",
    "deterministic": "import torch\ntorch.use_deterministic_algorithms(True)",
    "anomaly": "import torch\ntorch.autograd.set_detect_anomaly(True)",
    "matmul-precision": "import torch\ntorch.set_float32_matmul_precision('medium')",
    "cudnn-benchmark": "import torch\ntorch.backends.cudnn.benchmark = True",
    "default-device": "import torch\ntorch.set_default_device('meta')",
    "default-dtype": "import torch\ntorch.set_default_dtype(torch.float64)\ntorch.set_grad_enabled(False)",
    "numpy-seterr": "import numpy as np\nnp.seterr(all='raise')",
    "recursion-limit": "import sys\nsys.setrecursionlimit(200)",
    "builtins": "import builtins\nbuiltins.evaldemo_poison = True",
    "umask": "import os\nos.umask(0o077)",
    "signal-handler": "import signal\nsignal.signal(signal.SIGUSR1, signal.SIG_IGN)",
    "sys-path-and-modules": (
        "import sys\nimport isolation_helper\nisolation_helper.VALUE = 'changed'\n"
        "sys.path.insert(0, '/nonexistent-evaldemo')"
    ),
}

#: What the victim prints: the state that the poisons change, as a fresh interpreter has it.
PROBE = """\
import builtins, json, os, random, signal, stat, sys, threading
import numpy as np
import torch
import isolation_helper

print("dropout", torch.nn.Dropout.forward.__qualname__)
print("relu", torch.nn.functional.relu.__name__)
print("hooks", len(torch.nn.modules.module._global_forward_hooks))
print("threads", threading.active_count())
print("json", json.dumps({"a": 1}))
print("alarm", signal.alarm(0))
print("stdin", stat.S_ISCHR(os.fstat(0).st_mode))
print("environment", os.environ.get("EVALDEMO_POISON"))
print("deterministic", torch.are_deterministic_algorithms_enabled())
print("anomaly", torch.is_anomaly_enabled())
print("matmul", torch.get_float32_matmul_precision())
print("cudnn", torch.backends.cudnn.benchmark)
print("device", torch.empty(1).device, torch.get_default_dtype(), torch.is_grad_enabled())
print("numpy", np.geterr())
print("recursion", sys.getrecursionlimit())
print("builtins", hasattr(builtins, "evaldemo_poison"))
mask = os.umask(0o022)
os.umask(mask)
print("umask", oct(mask))
print("sigusr1", signal.getsignal(signal.SIGUSR1))
print("helper", isolation_helper.VALUE, "/nonexistent-evaldemo" in sys.path)
print("rng", torch.rand(2).tolist(), random.random(), float(np.random.rand()))
"""

#: The victim: the probe as setup, then a model whose output each poison would change.
VICTIM = PROBE + """
import torch.nn as nn

net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5))
"""

SLOW = {"signal-alarm": "import time\ntime.sleep(1.5)  # past the poison's alarm\n"}


def _example(code: str, options: str = "") -> str:
    return f"```{{evaldemo}}\n{options}{code.rstrip()}\n```\n"


def _victim(name: str) -> str:
    return _example(SLOW.get(name, "") + VICTIM, ":input: torch.randn(3, 4)\n")


def write_pages(srcdir: Path) -> None:
    same = ["# Same page\n"]
    for name, code in POISONS.items():
        same += [f"## poison {name}\n", _example(code), f"## victim {name}\n", _victim(name)]
    (srcdir / "same.md").write_text("\n".join(same), encoding="utf-8")
    poisons = ["# Across pages: poisons\n"] + [
        f"## poison {name}\n\n{_example(code)}" for name, code in POISONS.items()
    ]
    victims = ["# Across pages: victims\n"] + [f"## victim {name}\n\n{_victim(name)}" for name in POISONS]
    (srcdir / "across1.md").write_text("\n".join(poisons), encoding="utf-8")
    (srcdir / "across2.md").write_text("\n".join(victims), encoding="utf-8")


def build(base: Path, name: str, parallel: int, workers: int) -> SphinxTestApp:
    srcdir = base / name
    shutil.copytree(ROOTS / "test-isolation", srcdir)
    write_pages(srcdir)
    app = SphinxTestApp("text", srcdir=srcdir, parallel=parallel,
                        confoverrides={"evaldemo_workers": workers})
    try:
        app.build()
    finally:
        app.cleanup()
    return app


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SphinxTestApp]:
    base = tmp_path_factory.mktemp("isolation")
    return {"serial": build(base, "serial", 0, 1), "parallel": build(base, "parallel", 2, 2)}


@pytest.fixture(scope="module")
def fresh() -> str:
    """What the probe prints in a fresh interpreter, seeded as each example is."""
    prelude = "import random, numpy, torch\ntorch.manual_seed(0)\nrandom.seed(0)\nnumpy.random.seed(0)\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + PROBE], cwd=ROOTS / "test-isolation", stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def direct() -> dict[str, str]:
    """The victim's model called directly: seed, the probe's draw, model, input, reseed."""
    seed_all(0)
    torch.rand(2)
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5))
    x = torch.randn(3, 4)
    seed_all(0)
    train = repr(net.train()(x))
    seed_all(0)
    return {"model.train()": train, "model.eval()": repr(net.eval()(x))}


def setup_printed(body: str) -> str:
    """The literal block under "Printed by the setup:" (the probe's lines)."""
    after = body.split("Printed by the setup:\n\n", 1)[1]
    block = []
    for line in after.splitlines():
        if not line.startswith("   "):
            break
        block.append(line[3:])
    return "\n".join(block)


def _victims(app: SphinxTestApp) -> dict[str, str]:
    found = {}
    for page in ("same", "across2"):
        text = (Path(app.outdir) / f"{page}.txt").read_text(encoding="utf-8")
        for heading, body in sections(text).items():
            if heading.startswith("victim "):
                found[f"{page}: {heading.removeprefix('victim ')}"] = body
    return found


@pytest.mark.parametrize("kind", ["serial", "parallel"])
def test_builds_are_clean(builds: dict[str, SphinxTestApp], kind: str) -> None:
    assert warnings(builds[kind].warning.getvalue()) == []
    count = 4 * len(POISONS)
    assert f"evaldemo: {count} examples ran, 0 came from the cache, 0 failed" in builds[kind].status.getvalue()


@pytest.mark.parametrize("kind", ["serial", "parallel"])
def test_every_victim_sees_a_fresh_interpreter(builds: dict[str, SphinxTestApp], kind: str, fresh: str) -> None:
    victims = _victims(builds[kind])
    assert len(victims) == 2 * len(POISONS)
    for where, body in victims.items():
        assert setup_printed(body) == fresh.rstrip("\n"), where


@pytest.mark.parametrize("kind", ["serial", "parallel"])
def test_every_victim_shows_its_models_real_output(
    builds: dict[str, SphinxTestApp], kind: str, direct: dict[str, str]
) -> None:
    for where, body in _victims(builds[kind]).items():
        for title, expected in direct.items():
            assert outputs(body, title) == [expected], (where, title)


def test_poisons_ran_and_printed_nothing_of_their_thread(builds: dict[str, SphinxTestApp]) -> None:
    text = (Path(builds["serial"].outdir) / "same.txt").read_text(encoding="utf-8")
    assert not re.search(r"^ *LEAKED$", text, re.MULTILINE)
    assert "poison dropout-forward" in text


def test_serial_and_parallel_pages_are_byte_identical(builds: dict[str, SphinxTestApp]) -> None:
    for page in ("index", "same", "across1", "across2"):
        serial = (Path(builds["serial"].outdir) / f"{page}.txt").read_bytes()
        parallel = (Path(builds["parallel"].outdir) / f"{page}.txt").read_bytes()
        assert serial == parallel, page


def test_the_probe_is_not_trivially_fresh() -> None:
    """Each poison does change what the probe prints, run in one process after it."""
    code = textwrap.dedent("""\
        import os, sys
        os.chdir(sys.argv[1])
        sys.path.insert(0, sys.argv[1])
        poisons, probe = eval(sys.argv[2]), sys.argv[3]
        for name, poison in poisons.items():
            exec(poison, {})
        exec(probe, {})
    """)
    skipped = {"json-dumps", "signal-alarm", "close-stdin"}  # would break this very check
    poisons = {k: v.replace("print('LEAKED')", "pass") for k, v in POISONS.items() if k not in skipped}
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOTS / "test-isolation"), repr(poisons), PROBE],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )
    poisoned = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    clean = subprocess.run(
        [sys.executable, "-c", f"import os, sys\nos.chdir({str(ROOTS / 'test-isolation')!r})\nsys.path.insert(0, '.')\n" + PROBE],
        capture_output=True, text=True, timeout=120, check=True, stdin=subprocess.DEVNULL,
    ).stdout
    fresh = dict(line.split(" ", 1) for line in clean.splitlines())
    changed = {key for key in fresh if key != "rng" and poisoned.get(key) != fresh[key]}
    assert changed >= set(fresh) - {"rng", "json", "alarm", "stdin"}, (poisoned, fresh)
