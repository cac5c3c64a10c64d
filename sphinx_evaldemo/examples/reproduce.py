"""A compared example as a standalone Python script that prints both panels as the build computed them.

The script follows the worker's steps (:mod:`.worker.run`) in plain torch, for a
reader to take home: the seeds, the code, the input, a copy of the model per mode
entered with ``model.train()`` / ``model.eval()``, the passes. Only the steps that
can change what is printed are written out; the harness's own (capture, trace, the
determinism check, memory limits) are left out. No Sphinx, no torch: text in, text out.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import keyword
import re
import sys
from collections.abc import Iterable

from .model import ExampleRequest, ExampleResult

#: Modules the worker imports itself: an example that imports only these (and the
#: standard library) cannot bring a lazy module or a module from the source folder.
_KNOWN = frozenset({"torch", "numpy"})

#: What :mod:`.worker.state` writes in a note when it could not ``copy.deepcopy`` the
#: model or the input and fell back to resetting or cloning: a script's plain deep
#: copy would fail there, so such examples offer no script.
_FALLBACK = "could not be copied whole"

_ROOT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def offered(request: ExampleRequest | None, result: ExampleResult | None) -> bool:
    """Whether the example gets a script: compared, with at least one mode's panel to reproduce."""
    return (
        request is not None and request.compared and result is not None and bool(result.runs)
        and not any(_FALLBACK in note for note in result.notes)
    )


def model_name(request: ExampleRequest, result: ExampleResult) -> str | None:
    """The name the worker found the model under: ``:model:``, or the root of the access
    paths the result names (``net[2]`` -> ``net``); ``None`` when the result names none."""
    if request.model is not None:
        return request.model
    paths: Iterable[str] = [
        *(found.name for found in result.mode_dependent),
        *(path for run in result.runs for path in (*run.buffers_changed, *run.varied)),
        *(layer.name for layer in (result.trace.layers if result.trace else ())),
    ]
    for path in paths:
        match = _ROOT.match(path)
        if match and not keyword.iskeyword(match.group()):
            return match.group()
    return None


def file_name(text: str) -> str:
    """The script's file name, from a hash of its text (identical examples share one file)."""
    return f"evaldemo-{hashlib.sha256(text.encode()).hexdigest()[:16]}.py"


def _imported(code: str) -> set[str]:
    """The top-level packages the code imports (none if it does not parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):  # a relative import: the source folder's
            found.add(".")
    return found


def _unknown_imports(code: str) -> bool:
    """Whether the code imports something other than torch, numpy and the standard library."""
    return any(name not in _KNOWN and name not in sys.stdlib_module_names for name in _imported(code))


def _uses(name: str, *texts: str) -> bool:
    return any(re.search(rf"\b{name}\b", text) for text in texts)


_DEVICE = {
    "cpu": 'device = torch.device("cpu")  # the build gives the code this name',
    "cuda": 'device = torch.device("cuda")  # :device: cuda',
    "auto": 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # :device: auto',
}

_TO_DEVICE = '''
def to_device(value):
    """The input with every tensor in it (in tuples, lists, dicts) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        items = [to_device(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {key: to_device(item) for key, item in value.items()}
    return value
'''

_MATERIALISE = '''
def materialise(model):
    """Give lazy modules (nn.LazyLinear, ...) their shapes, as the build does before the
    modes: one pass under torch.no_grad() with the training flags off (set directly,
    so the model's own eval() does not run), then the flags as they were."""
    lazy = torch.nn.modules.lazy.LazyModuleMixin
    if not any(isinstance(m, lazy) and m.has_uninitialized_params() for m in model.modules()):
        return
    flags = [(m, m.training) for m in model.modules()]
    for m, _ in flags:
        m.training = False
    with torch.no_grad():
        forward(model, copy.deepcopy(example_input))
    for m, training in flags:
        m.training = training
'''

#: The names the script binds itself; one the example's code also uses gets a ``_``.
_OWN_NAMES = ("seed_all", "forward", "run_mode", "to_device", "materialise", "example_input", "found_model")


def _header(request: ExampleRequest, where: str, versions: str) -> str:
    modes = " and then ".join(f"model.{mode}()" for mode in request.modes)
    lines = [
        f'"""Reproduces the evaldemo example{" " + where + "," if where else ""} as the docs build ran it.',
        "",
        "It prints what the page shows: what the code prints, then the output of",
        f"{modes}. What the model itself prints appears where",
        "it prints it. Run it from the docs' source folder, where the build ran the code.",
    ]
    if versions:
        lines.append(f"The build used {versions}: other versions may print other numbers.")
    return "\n".join(lines) + '\n"""'


def versions(fingerprint: str) -> str:
    """``python 3.11.9, torch 2.13.0, numpy 2.3.1`` from the cache's fingerprint of the versions."""
    pairs = [item.split("=", 1) for item in fingerprint.split() if "=" in item]
    return ", ".join(f"{name} {version}" for name, version in pairs if name != "sphinx-evaldemo")


def _seed_all(seed: int) -> str:
    return "\n".join([
        "def seed_all():",
        f'    """Seed torch, random and numpy with the example\'s seed ({seed}), as the build',
        '    does before the code and again before each mode\'s passes."""',
        f"    torch.manual_seed({seed})",
        f"    random.seed({seed})",
        f"    np.random.seed({seed % 2**32})",
    ])


_FORWARD = '''def forward(model, x):
    """One pass; a tuple input is passed as separate arguments."""
    return model(*x) if isinstance(x, tuple) else model(x)'''


def _run_mode(request: ExampleRequest) -> str:
    """The function that makes one panel, with the request's passes and ``:no-grad:`` written in."""
    lines = [
        "def run_mode(model, mode):",
        '    """One panel: a copy of the model as the code left it, in ``mode``, re-seeded."""',
        "    model = copy.deepcopy(model)  # each mode starts from the same state...",
        '    if mode == "train":',
        "        model.train()",
        "    else:",
        "        model.eval()",
        "    seed_all()  # ...and from the same seed",
    ]
    body = "    "
    if request.repeat > 1:
        lines += [
            f"    for number in range(1, {request.repeat + 1}):  # :repeat: {request.repeat}: each pass goes on from the last",
            '        print(f"model.{mode}() output, pass {number}:")',
        ]
        body = "        "
    else:
        lines.append('    print(f"model.{mode}() output:")')
    call = "output = forward(model, copy.deepcopy(example_input))  # each pass gets its own copy of the input"
    if request.no_grad:
        lines += [
            f"{body}# :no-grad: the eval pass runs under torch.no_grad()",
            f'{body}with torch.no_grad() if mode == "eval" else contextlib.nullcontext():',
            f"{body}    {call}",
        ]
    else:
        lines.append(f"{body}{call}")
    lines.append(f"{body}print(repr(output))  # the page shows each output's repr()")
    return "\n".join(lines)


#: Where the model's name and the input expression go, kept out of the renaming of
#: :data:`_OWN_NAMES`: they are the code's own.
_MODEL, _INPUT = "\x00model\x00", "\x00input\x00"


def _renamed(code: str, expression: str) -> dict[str, str]:
    """The script's own names, each changed where the example uses it (``forward_``)."""
    taken = set(_ROOT.findall(f"{code}\n{expression}"))
    names = {}
    for name in _OWN_NAMES:
        own = name
        while own in taken:
            own += "_"
        names[name] = own
    return names


def script(request: ExampleRequest, model: str | None = None, *, where: str = "",
           versions: str = "") -> str:
    """The script for a compared example; ``model``: the name the model is bound to
    (see :func:`model_name`), ``None`` to look for it as the worker does."""
    code = request.code.strip("\n").rstrip()
    expression = request.input or ""
    moved = request.device != "cpu"
    local = _unknown_imports(code)
    lazy = "lazy" in code.lower() or local
    imports = ["import copy", "import random"]
    if request.no_grad:
        imports.insert(0, "import contextlib")
    if local:
        imports += ["import os", "import sys"]
    helpers = [_seed_all(request.seed), _FORWARD, _run_mode(request)]
    if moved:
        helpers.append(_TO_DEVICE.strip())
    if lazy:
        helpers.append(_MATERIALISE.strip())
    start = ["torch.set_num_threads(1)  # the build runs each example on one thread"]
    if local:
        start.append("sys.path.insert(0, os.getcwd())  # the code may import modules from the source folder")
    start.append("seed_all()")
    if moved or _uses("device", code, expression):
        start.append(_DEVICE[request.device])
    name = "found_model" if model is None else _MODEL  # the code's own name goes in last
    setup = [
        "# The input (:input:), evaluated once, after the code",
        f"example_input = {_INPUT}",
    ]
    if model is None:
        setup[:0] = [
            "# The model: the one torch.nn.Module the code binds at the top level",
            "found_model = next(value for name, value in list(globals().items())",
            '                   if isinstance(value, torch.nn.Module) and not name.startswith("_"))',
            "",
        ]
    if moved:
        setup += [f"{name}.to(device)", "example_input = to_device(example_input)"]
    if lazy:
        setup.append(f"materialise({name})")
    panels = ["# The panels, in the page's order", *(f'run_mode({name}, "{mode}")' for mode in request.modes)]
    names = _renamed(code, expression)
    owned = [*helpers, "\n".join(start), "\n".join(setup), "\n".join(panels)]
    for default, own in names.items():
        if own != default:
            owned = [re.sub(rf"\b{default}\b", own, block) for block in owned]
    *helpers, starting, setting, running = (
        block.replace(_MODEL, model or "").replace(_INPUT, expression) for block in owned)
    blocks = [
        _header(request, where, versions) + "\n\n" + "\n".join(imports) + "\n\nimport numpy as np\nimport torch",
        *helpers, starting, "# The example's code, as on the page\n" + code, setting, running,
    ]
    # two blank lines around the functions, one between the other steps
    out = blocks[0]
    for previous, block in itertools.pairwise(blocks):
        out += "\n\n\n" if block.startswith("def ") or previous.startswith("def ") else "\n\n"
        out += block
    return out + "\n"
