"""Each compared example's downloadable script, run on its own, prints the page's panels.

The reproduce root is built once with the HTML builder; every section's example links
its script (``a.evaldemo-download``). Each script is run as a reader would run it
(``python script.py`` in the source folder, a fresh interpreter), and what it prints
under each ``model.<mode>() output`` line must be, character for character, the
printout the page shows in that mode's panel, pass by pass; what the setup printed
must be the page's "Printed by the setup" block.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

from tests.conftest import Build
from tests.helpers import soup, warnings_of

#: The sections whose script is run and compared (all the compared examples of the root).
COMPARED = ["dropout", "batchnorm", "rrelu", "structured", "repeat", "no-grad", "seed",
            "lazy", "plain-mode"]

_HEADER = re.compile(r"^model\.(?P<mode>train|eval)\(\) output(?:, pass (?P<number>\d+))?:$")

#: Runs a script as ``python script.py`` does, then says whether the package was imported.
_IMPORTS = """\
import runpy, sys
runpy.run_path(sys.argv[1], run_name="__main__")
print("imported:", sorted(m for m in sys.modules if m.split(".")[0] == "sphinx_evaldemo"))
"""


@pytest.fixture(scope="module")
def built(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("reproduce", "html")


@pytest.fixture(scope="module")
def page(built: SphinxTestApp) -> Any:
    return soup(built, "index.html")


def _section(page: Any, name: str) -> Any:
    section = page.find("section", id=name)
    assert section is not None, name
    return section


def _script(built: SphinxTestApp, section: Any) -> Path:
    links = section.select("a.evaldemo-download")
    assert len(links) == 1, section["id"]
    path = Path(built.outdir) / links[0]["href"]
    assert path.is_file(), path
    return path


def _run(script: Path, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _printed(stdout: str) -> tuple[str, dict[str, list[str]]]:
    """What the script printed before the first panel, and each mode's outputs in order."""
    setup: list[str] = []
    panels: dict[str, list[list[str]]] = {}
    current = setup
    for line in stdout.splitlines():
        match = _HEADER.match(line)
        if match:
            passes = panels.setdefault(match["mode"], [])
            assert int(match["number"] or 1) == len(passes) + 1
            passes.append([])
            current = passes[-1]
        else:
            current.append(line)
    return "\n".join(setup), {mode: ["\n".join(lines) for lines in passes] for mode, passes in panels.items()}


def _page_panels(section: Any) -> dict[str, list[str]]:
    """Each mode's printouts on the page, pass by pass (the folded printout included)."""
    found = {}
    for panel in section.select("section.evaldemo-panel"):
        mode = next(c.removeprefix("evaldemo-") for c in panel["class"] if c in ("evaldemo-train", "evaldemo-eval"))
        found[mode] = [pre.get_text().rstrip("\n") for pre in panel.select("div.evaldemo-output pre")]
    return found


@pytest.mark.parametrize("name", COMPARED)
def test_the_script_prints_the_pages_panels(built: SphinxTestApp, page: Any, name: str) -> None:
    section = _section(page, name)
    setup, printed = _printed(_run(_script(built, section), Path(built.srcdir)))
    shown = _page_panels(section)
    assert list(shown) == ["train", "eval"]
    assert printed == shown
    assert all(text.strip() for texts in shown.values() for text in texts)
    block = section.select_one("div.evaldemo-setup pre")
    assert setup == (block.get_text().rstrip("\n") if block else "")


def test_the_examples_show_what_each_script_must_reproduce(page: Any) -> None:
    """The root's examples are the cases named: each differs between the modes as it should."""
    shown = {name: _page_panels(_section(page, name)) for name in COMPARED}
    assert len(shown["repeat"]["train"]) == len(shown["repeat"]["eval"]) == 2
    assert shown["repeat"]["train"][0] != shown["repeat"]["train"][1]  # the passes continue
    assert "grad_fn" in shown["no-grad"]["train"][0]
    assert "grad_fn" not in shown["no-grad"]["eval"][0]  # :no-grad: on the eval pass only
    assert "'hidden': tensor(" in shown["structured"]["train"][0]
    assert "running mean before" in _section(page, "batchnorm").select_one("div.evaldemo-setup pre").get_text()
    for name in ("dropout", "batchnorm", "rrelu", "structured", "seed", "lazy"):
        assert shown[name]["train"] != shown[name]["eval"], name


def test_the_seed_is_the_examples_own(built: SphinxTestApp, page: Any) -> None:
    text = _script(built, _section(page, "seed")).read_text(encoding="utf-8")
    assert "torch.manual_seed(7)" in text
    assert "np.random.seed(7)" in text
    assert "torch.manual_seed(0)" not in text


def test_only_compared_examples_offer_a_script(built: SphinxTestApp, page: Any) -> None:
    assert warnings_of(built) == []
    assert len(page.select("a.evaldemo-download")) == len(COMPARED)  # one each, none for the rest
    assert not _section(page, "not-compared").select("a.evaldemo-download")


def test_the_script_stands_alone(built: SphinxTestApp, page: Any) -> None:
    """It imports torch, numpy and the standard library only, and never this package."""
    for name in COMPARED:
        text = _script(built, _section(page, name)).read_text(encoding="utf-8")
        tree = ast.parse(text)
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert imported <= {"torch", "numpy"} | set(sys.stdlib_module_names), (name, imported)
        assert "evaldemo" not in text.replace("evaldemo example", "")
    script = _script(built, _section(page, "structured"))
    done = subprocess.run([sys.executable, "-c", _IMPORTS, str(script)], cwd=built.srcdir,
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.splitlines()[-1] == "imported: []"


def test_other_builders_get_no_link(sphinx_build: Build, built: SphinxTestApp) -> None:
    text = sphinx_build("reproduce", "text", copy="reproduce-text")
    assert "Download this example" not in (Path(text.outdir) / "index.txt").read_text(encoding="utf-8")
    assert not (Path(text.outdir) / "_downloads").exists()


@pytest.mark.parametrize(("builder", "page_path"), [("html", "sub/page.html"), ("dirhtml", "sub/page/index.html")])
def test_the_link_works_from_a_page_in_a_folder(sphinx_build: Build, built: SphinxTestApp,
                                                builder: str, page_path: str) -> None:
    """The address is relative to the page as written; a hidden output offers no script."""
    app = built if builder == "html" else sphinx_build("reproduce", builder)  # the same cache
    links = soup(app, page_path).select("a.evaldemo-download")
    assert len(links) == 1
    script = (Path(app.outdir) / page_path).parent / links[0]["href"]
    assert script.resolve().parent == (Path(app.outdir) / "_downloads" / "evaldemo").resolve()
    _, printed = _printed(_run(script, Path(app.srcdir)))
    assert printed == _page_panels(soup(app, page_path))


def test_singlehtml_links_every_script(sphinx_build: Build, built: SphinxTestApp) -> None:
    app = sphinx_build("reproduce", "singlehtml")  # the same cache
    links = soup(app, "index.html").select("a.evaldemo-download")
    assert len(links) == len(COMPARED) + 1  # and the page in a folder
    assert all((Path(app.outdir) / link["href"]).is_file() for link in links)
