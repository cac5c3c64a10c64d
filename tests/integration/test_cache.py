"""The result cache over a sequence of real builds of one copy of ``test-cache``.

Each step edits the copy (or the cache) and builds again; the closing line of the
build says how many examples ran, how many came from the cache and how many
workers started, and the pages and the cache folder show the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples.cache import fingerprint
from sphinx_evaldemo.examples.model import ExampleResult, loads
from sphinx_evaldemo.examples.records import examples
from tests.conftest import ROOTS, Build
from tests.helpers import flat, line_of, outputs, warnings

CLOSING = re.compile(
    r"evaldemo: (?P<ran>\d+) examples? ran, (?P<cached>\d+) came from the cache, "
    r"(?P<failed>\d+) failed(?:, (?P<workers>\d+) worker process(?:es)? started)? \(\d+\.\d s\)"
)
#: relative to the folder holding conf.py: both "kept" copies share it
KEPT = "../cache-kept"
#: the results' folder inside a cache: the namespace made from ``project`` in conf.py
NAMESPACE = "evaldemo-cache"


def default_cache(app: SphinxTestApp) -> Path:
    """Where results go by default: beside ``conf.py``, out of every output folder."""
    return Path(app.confdir) / ".evaldemo-cache" / NAMESPACE


@dataclass(frozen=True)
class Step:
    app: SphinxTestApp
    pages: dict[str, str]
    #: cache file name (key) -> its text, after the build
    files: dict[str, str]
    #: (docname, first line of the directive) -> cache key, for the examples of the build
    keys: dict[tuple[str, int], str]

    @property
    def closing(self) -> tuple[int, int, int, int]:
        """``(ran, cached, failed, workers started)`` from the build's closing line."""
        found = CLOSING.findall(self.app.status.getvalue())
        assert len(found) == 1, self.app.status.getvalue()
        ran, cached, failed, workers = found[0]
        return int(ran), int(cached), int(failed), int(workers or 0)  # none started: not said

    @property
    def warned(self) -> list[Any]:
        return warnings(self.app.warning.getvalue())


def _keys(app: SphinxTestApp) -> dict[tuple[str, int], str]:
    fp = fingerprint()
    recorded = examples(app.env)
    keys = {
        (docname, record.lineno): record.key
        for docname, records in recorded.items()
        for record in records
        if record.request is not None
    }
    for records in recorded.values():  # the key is the request's, computed once
        for record in records:
            if record.request is not None:
                assert record.key == record.request.key(fp)
    return keys  # type: ignore[return-value]


def _files(folder: Path) -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8", errors="replace") for path in folder.glob("??/*.json")}


def _edit(srcdir: Path, name: str, old: str, new: str) -> None:
    path = srcdir / name
    text = path.read_text(encoding="utf-8")
    assert old in text, (name, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


SOURCE = (ROOTS / "test-cache" / "index.md").read_text(encoding="utf-8")
DEP_SOURCE = (ROOTS / "test-cache" / "dep.md").read_text(encoding="utf-8")
FENCE = "```{evaldemo}"
FIRST = line_of(SOURCE, FENCE)
SECOND = line_of(SOURCE, FENCE, after="First caption")
SCRIPT = line_of(SOURCE, FENCE, after="second, version 1")
DEPENDS = line_of(DEP_SOURCE, FENCE)
INDEPENDENT = line_of(DEP_SOURCE, FENCE, after="scale is")


@pytest.fixture(scope="module")
def steps(sphinx_build: Build) -> dict[str, Step]:
    done: dict[str, Step] = {}

    def build(name: str, copy: str = "cache", cache: Callable[[SphinxTestApp], Path] | None = None,
              **kwargs: Any) -> Step:
        app = sphinx_build("cache", "text", copy=copy, **kwargs)
        folder = cache(app) if cache else default_cache(app)
        pages = {p.stem: p.read_text(encoding="utf-8") for p in Path(app.outdir).glob("*.txt")}
        done[name] = Step(app, pages, _files(folder), _keys(app))
        return done[name]

    first = build("first")
    srcdir = Path(first.app.srcdir)
    build("clean", freshenv=True)

    kept = {"evaldemo_cache_dir": KEPT}
    build("kept-1", copy="cache-kept-1", confoverrides=kept,
          cache=lambda app: Path(app.confdir, KEPT, NAMESPACE))
    build("kept-2", copy="cache-kept-2", confoverrides=kept,
          cache=lambda app: Path(app.confdir, KEPT, NAMESPACE))

    _edit(srcdir, "index.md", ":caption: First caption", ":caption: Second caption")
    build("caption")
    _edit(srcdir, "index.md", "Prose that the tests edit.", "Edited prose, nothing else.")
    build("prose")
    _edit(srcdir, "index.md", 'print("second, version 1")', 'print("second, version 2")')
    build("code")
    (srcdir / "scale.txt").write_text("4\n", encoding="utf-8")
    build("depends")

    # corrupt two stored results: one cut in half, one overwritten with garbage
    folder = default_cache(first.app)
    keys = done["depends"].keys
    cut = folder / keys["index", FIRST][:2] / f"{keys['index', FIRST]}.json"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    garbage = folder / keys["dep", INDEPENDENT][:2] / f"{keys['dep', INDEPENDENT]}.json"
    garbage.write_bytes(b"\x00\xffnot json at all {{{")
    build("corrupt", freshenv=True)

    build("force", freshenv=True, confoverrides={"evaldemo_execute": "force"})

    # valid JSON, but not a result (another tool's file, say)
    foreign = folder / keys["index", SECOND][:2] / f"{keys['index', SECOND]}.json"
    foreign.write_text('{"written by": "another tool"}', encoding="utf-8")
    build("foreign", freshenv=True)

    _edit(srcdir, "dep.md", "# Depends\n", '# Depends\n\n```{evaldemo}\nprint("never run before")\n```\n')
    build("cache-miss", confoverrides={"evaldemo_execute": "cache"})

    (srcdir / "dep.md").write_text(DEP_SOURCE, encoding="utf-8")
    _edit(srcdir, "index.md", f'{FENCE}\nprint("a script the tests delete")\n```\n', "")
    build("pruned", freshenv=True)
    return done


def test_first_build_runs_every_example_in_one_worker(steps: dict[str, Step]) -> None:
    first = steps["first"]
    assert first.closing == (5, 0, 0, 1)
    assert first.warned == []
    assert len(first.files) == 5
    assert set(first.files) == set(first.keys.values())


def test_clean_build_takes_every_result_from_the_cache_and_starts_no_worker(
    steps: dict[str, Step],
) -> None:
    clean = steps["clean"]
    assert "evaldemo: 0 examples ran, 5 came from the cache, 0 failed (" in (
        clean.app.status.getvalue()
    )
    assert clean.pages == steps["first"].pages
    assert clean.files == steps["first"].files


def test_kept_cache_dir_serves_a_new_checkout(steps: dict[str, Step]) -> None:
    one, two = steps["kept-1"], steps["kept-2"]
    assert Path(one.app.doctreedir) != Path(two.app.doctreedir)
    assert Path(one.app.outdir) != Path(two.app.outdir)
    assert one.closing == (5, 0, 0, 1)
    assert two.closing == (0, 5, 0, 0)
    assert two.pages == one.pages
    # the results went to the kept folder, not into the doctree folder
    assert len(one.files) == 5
    assert not default_cache(one.app).exists()


def test_two_clean_builds_with_cold_caches_give_identical_outputs(steps: dict[str, Step]) -> None:
    """``first`` and ``kept-1`` are separate checkouts, each starting with no cache."""
    for page in ("index", "dep"):
        assert steps["kept-1"].pages[page].encode() == steps["first"].pages[page].encode(), page
    # the stored results hold timings, which differ; the keys do not
    assert set(steps["kept-1"].files) == set(steps["first"].files)


def test_caption_edit_runs_nothing(steps: dict[str, Step]) -> None:
    caption = steps["caption"]
    assert caption.closing == (0, 3, 0, 0)
    assert "Second caption" in caption.pages["index"]
    assert "First caption" not in caption.pages["index"]
    assert outputs(caption.pages["index"], "model.eval()") == outputs(steps["first"].pages["index"], "model.eval()")


def test_prose_edit_runs_nothing_and_starts_no_worker(steps: dict[str, Step]) -> None:
    prose = steps["prose"]
    assert prose.closing == (0, 3, 0, 0)
    assert "Edited prose, nothing else." in prose.pages["index"]


def test_code_edit_runs_that_example_only(steps: dict[str, Step]) -> None:
    code = steps["code"]
    assert code.closing == (1, 2, 0, 1)
    page = code.pages["index"]
    assert "second, version 2" in page
    assert "second, version 1" not in page
    before = steps["prose"]
    # only the edited example got a new key; the others kept theirs
    changed = {place for place, key in code.keys.items() if before.keys.get(place) != key}
    assert changed == {("index", SECOND)}
    # the untouched example shows the very same outputs
    first_eval = outputs(steps["first"].pages["index"], "model.eval()")
    assert outputs(page, "model.eval()")[0] == first_eval[0]


def test_depends_edit_reruns_the_example_that_reads_the_file_only(steps: dict[str, Step]) -> None:
    depends = steps["depends"]
    assert depends.closing == (1, 1, 0, 1)
    assert "scale is 4" in depends.pages["dep"]
    assert "scale is 3" in steps["code"].pages["dep"]
    changed = {place for place, key in depends.keys.items() if steps["code"].keys.get(place) != key}
    assert changed == {("dep", DEPENDS)}


def test_corrupt_cache_files_are_recomputed(steps: dict[str, Step]) -> None:
    corrupt = steps["corrupt"]
    assert corrupt.warned == []
    assert corrupt.closing == (2, 3, 0, 1)
    assert corrupt.pages == steps["depends"].pages
    # both files hold whole results again
    for place in (("index", FIRST), ("dep", INDEPENDENT)):
        result = loads(ExampleResult, corrupt.files[corrupt.keys[place]])
        assert result.ok
        assert result.runs or result.segments


def test_cache_file_that_is_not_a_result_is_recomputed(steps: dict[str, Step]) -> None:
    """A JSON object that is no result must be a miss, not an empty result shown as is."""
    foreign = steps["foreign"]
    assert "second, version 2" in foreign.pages["index"]
    assert foreign.pages == steps["force"].pages
    assert foreign.closing == (1, 4, 0, 1)


def test_full_build_prunes_results_no_page_uses(steps: dict[str, Step]) -> None:
    """The edits left results behind (old code, old scale.txt); a clean build drops them."""
    depends, corrupt = steps["depends"], steps["corrupt"]
    stale = set(depends.files) - set(depends.keys.values())
    assert len(stale) == 2  # "second, version 1" and "scale is 3"
    assert set(corrupt.files) == set(corrupt.keys.values())


def test_force_runs_everything_again(steps: dict[str, Step]) -> None:
    force = steps["force"]
    assert force.closing == (5, 0, 0, 1)
    assert force.pages == steps["corrupt"].pages


def test_cache_mode_miss_warns_and_the_page_says_so(steps: dict[str, Step]) -> None:
    missed = steps["cache-miss"]
    (warning,) = missed.warned
    assert warning.file == "dep.md"
    assert warning.line == 3  # the new example's fence, right under the heading
    assert warning.type == "evaldemo.not-run"
    assert "no stored result for this example" in warning.message
    assert "evaldemo_execute is 'cache'" in warning.message
    page = flat(missed.pages["dep"])
    assert "never run before" in page  # the code is shown...
    assert "no stored result for this example" in page  # ...and why there is no output
    assert "scale is 4" in page  # the other examples still come from the cache
    ran, _, failed, workers = missed.closing
    assert (ran, failed, workers) == (0, 1, 0)


def test_cache_mode_miss_is_not_counted_as_from_the_cache(steps: dict[str, Step]) -> None:
    """A change of an "env" config value re-reads every page: the five stored results come
    from the cache; the miss has no result, so the closing line must not count it there."""
    assert steps["cache-miss"].closing == (0, 5, 1, 0)


def test_deleted_example_result_is_pruned(steps: dict[str, Step]) -> None:
    before, pruned = steps["cache-miss"], steps["pruned"]
    assert pruned.closing == (0, 4, 0, 0)
    deleted = before.keys["index", SCRIPT]
    assert deleted in before.files
    assert deleted not in pruned.files
    assert set(pruned.files) == set(pruned.keys.values())
    assert len(pruned.files) == 4
    assert "a script the tests delete" not in pruned.pages["index"]
