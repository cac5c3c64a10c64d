"""One corpus, several renderings: plain fences, evaldemo, MyST-NB, rST, sphinx-gallery, the floor script."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .corpus import Example, Page

SPHINX_CONF = '''\
project = "evaldemo-bench"
extensions = {extensions!r}
exclude_patterns = ["_build"]
html_theme = "alabaster"
{extra}'''


def myst_page(page: Page, block: Callable[[Example], str]) -> str:
    parts = [f"# {page.title}\n\n{page.intro}\n"]
    for example in page.examples:
        parts.append(f"## {example.title}\n\n{example.prose()}\n\n{block(example)}")
    return "\n".join(parts)


def myst_index(pages: list[Page], header: str = "") -> str:
    entries = "\n".join(page.name for page in pages)
    return f"{header}# Benchmark corpus\n\n```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n"


def plain_block(example: Example) -> str:
    return f"```python\n{example.code()}```\n\nRun on `{example.input()}` in both modes.\n"


def evaldemo_block(example: Example) -> str:
    return (
        f"```{{evaldemo}}\n:input: {example.input()}\n\n{example.code()}```\n\n"
        f"Run on `{example.input()}` in both modes.\n"
    )


def mystnb_block(example: Example) -> str:
    return f"```{{code-cell}} ipython3\n{example.script()}```\n"


MYSTNB_HEADER = (
    "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n"
)


def rst_page(page: Page) -> str:
    parts = [f"{page.title}\n{'=' * len(page.title)}\n\n{page.intro}\n"]
    for example in page.examples:
        body = textwrap.indent(example.script(), "   ")
        parts.append(
            f"{example.title}\n{'-' * len(example.title)}\n\n{example.prose()}\n\n"
            f".. jupyter-execute::\n\n{body}"
        )
    return "\n".join(parts)


def rst_index(pages: list[Page]) -> str:
    entries = "".join(f"   {page.name}\n" for page in pages)
    return f"Benchmark corpus\n================\n\n.. toctree::\n   :maxdepth: 1\n\n{entries}"


def gallery_page(page: Page) -> str:
    """One sphinx-gallery script per page: a docstring, then a text cell and code per example."""
    parts = [f'"""\n{page.title}\n{"=" * len(page.title)}\n\n{page.intro}\n"""\n']
    for example in page.examples:
        prose = textwrap.fill(example.prose(), 86)
        text = "\n".join(f"# {line}" for line in prose.splitlines())
        parts.append(
            f"# %%\n# {example.title}\n# {'-' * len(example.title)}\n#\n{text}\n\n"
            f"{example.script()}"
        )
    return "\n".join(parts)


@dataclass
class Rendering:
    """A source tree (path -> text) and how one page of it is written after an edit."""

    files: dict[str, str]
    page_file: Callable[[Page], tuple[str, str]]


#: rendering -> (path in the source tree, text) of one page
PAGE_FILES: dict[str, Callable[[Page], tuple[str, str]]] = {
    "plain": lambda p: (f"{p.name}.md", myst_page(p, plain_block)),
    "evaldemo": lambda p: (f"{p.name}.md", myst_page(p, evaldemo_block)),
    "myst-nb": lambda p: (f"{p.name}.md", MYSTNB_HEADER + myst_page(p, mystnb_block)),
    "jupyter-sphinx": lambda p: (f"{p.name}.rst", rst_page(p)),
    "sphinx-gallery": lambda p: (f"examples/{p.name}.py", gallery_page(p)),
}


def rendering(kind: str, pages: list[Page]) -> Rendering:
    if kind == "plain":
        conf = SPHINX_CONF.format(extensions=["myst_parser"], extra="")
        index = {"index.md": myst_index(pages)}
    elif kind == "evaldemo":
        conf = SPHINX_CONF.format(extensions=["sphinx_evaldemo"], extra="")
        index = {"index.md": myst_index(pages)}
    elif kind == "myst-nb":
        extra = 'nb_execution_mode = "cache"\nnb_execution_timeout = 300\n'
        conf = SPHINX_CONF.format(extensions=["myst_nb"], extra=extra)
        index = {"index.md": myst_index(pages)}
    elif kind == "jupyter-sphinx":
        extra = 'jupyter_execute_default_kernel = "python3"\n'
        conf = SPHINX_CONF.format(extensions=["jupyter_sphinx"], extra=extra)
        index = {"index.rst": rst_index(pages)}
    elif kind == "sphinx-gallery":
        extra = textwrap.dedent("""\
            sphinx_gallery_conf = {
                "examples_dirs": "examples",
                "gallery_dirs": "auto_examples",
                "filename_pattern": "/",
                "plot_gallery": "True",
                "image_scrapers": (),
                "download_all_examples": False,
                "show_memory": False,
                "remove_config_comments": True,
            }
            exclude_patterns = ["_build", "examples"]
            """)
        conf = SPHINX_CONF.format(extensions=["sphinx_gallery.gen_gallery"], extra=extra)
        index = {
            "index.rst": "Benchmark corpus\n================\n\n.. toctree::\n\n   auto_examples/index\n",
            "examples/README.rst": "Examples\n========\n",
        }
    else:
        raise ValueError(kind)
    page_file = PAGE_FILES[kind]
    files = {"conf.py": conf, **index}
    files.update(page_file(page) for page in pages)
    return Rendering(files, page_file)


def floor_script(examples: list[Example]) -> str:
    """All examples in one process, each in its own function (a fresh namespace)."""
    functions = "\n\n".join(
        f"def example_{e.number:03d}():\n{textwrap.indent(e.script(), '    ')}" for e in examples
    )
    names = ", ".join(f"example_{e.number:03d}" for e in examples)
    return (
        "import json\nimport sys\nimport time\n\n"
        "started = time.perf_counter()\nimport torch\nimport torch.nn as nn\n"
        "imported = time.perf_counter()\n\n\n"
        f"{functions}\n\n"
        f"for example in ({names},):\n    example()\n"
        "done = time.perf_counter()\n"
        'print("floor-timing", json.dumps({"import": imported - started, '
        '"examples": done - imported}), file=sys.stderr)\n'
    )


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


