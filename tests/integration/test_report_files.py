"""The machine-readable reports: ``evaldemo-report.json`` checked against the schema the
package ships, ``evaldemo-junit.xml`` read back with the standard library's parser, from
real builds of a root with a good, a failing, a contradicted and an expected-error
example and a page with a ``:name:``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
from sphinx.errors import SphinxWarning
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import report_files
from sphinx_evaldemo.examples.author import run_page
from tests.conftest import ROOTS, Build
from tests.helpers import line_of, warnings

INDEX = (ROOTS / "test-report-files" / "index.md").read_text(encoding="utf-8")
GOOD = line_of(INDEX, "```{evaldemo}")
FAILING = line_of(INDEX, "```{evaldemo}", after="A failing example")
CONTRADICTED = line_of(INDEX, "```{evaldemo}", after="A contradicted claim")
EXPECTED = line_of(INDEX, "```{evaldemo}", after="An expected error")
SCHEMA = json.loads(report_files.SCHEMA.read_text(encoding="utf-8"))


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)


def read_json(app: SphinxTestApp) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((app.outdir / "evaldemo-report.json").read_text(encoding="utf-8"))
    validate(found)
    return found


def by_line(document: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(row["docname"], row["line"]): row for row in document["examples"]}


@pytest.fixture(scope="module")
def first(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("report-files", "html")


@pytest.fixture(scope="module")
def second(sphinx_build: Build, first: SphinxTestApp) -> SphinxTestApp:
    """The same project again, rebuilt from scratch: every result from the cache (its
    output folder is the first build's: tests of the first build come before)."""
    return sphinx_build("report-files", "html", freshenv=True)


def test_json_holds_every_example_with_its_verdict(first: SphinxTestApp) -> None:
    found = read_json(first)
    assert found["version"] == report_files.VERSION == 1
    assert (found["project"], found["builder"], found["complete"]) == ("evaldemo-report-files", "html", True)
    rows = by_line(found)
    assert list(rows) == [("guide/named", 3), ("index", GOOD), ("index", FAILING),
                          ("index", CONTRADICTED), ("index", EXPECTED)]  # page order
    good = rows["index", GOOD]
    assert (good["page"], good["caption"], good["status"], good["outcome"], good["source"]) == (
        "index.md", "Dropout in both modes", "ok", "passed", "run")
    assert good["claims"] == [
        {"claim": "differ", "held": True, "fact": good["claims"][0]["fact"]},
        {"claim": "eval-deterministic", "held": True, "fact": good["claims"][1]["fact"]},
    ]
    assert set(good["modes"]) == {"train", "eval"}
    assert all(mode["seconds"] > 0 and mode["peak_memory"] > 0 for mode in good["modes"].values())
    assert good["seconds"] >= sum(mode["seconds"] for mode in good["modes"].values())
    assert (good["requested_device"], good["device"], good["drift"]) == ("cpu", "cpu", None)
    assert good["id"] == f"evaldemo-index-{GOOD}"
    assert f'id="{good["id"]}"' in (first.outdir / "index.html").read_text(encoding="utf-8")

    failing = rows["index", FAILING]
    assert (failing["outcome"], failing["failed"], failing["raised"]) == ("failed", True, "RuntimeError")
    assert failing["status"] == "failed: exception"
    (problem,) = failing["problems"]
    assert problem["kind"] == "exception" and "broken on purpose" in problem["message"]
    # the warning's own line: the raise, in the page's source
    assert problem["line"] == line_of(INDEX, 'raise RuntimeError("broken on purpose")')

    contradicted = rows["index", CONTRADICTED]
    assert contradicted["outcome"] == "failed"
    (claim,) = contradicted["claims"]
    assert (claim["claim"], claim["held"]) == ("same", False) and "differ" in claim["fact"]
    assert [p["kind"] for p in contradicted["problems"]] == ["claim"]

    expected = rows["index", EXPECTED]
    assert (expected["outcome"], expected["raises"], expected["raised"]) == ("passed", "ValueError", "ValueError")
    assert expected["status"] == "ok (raised ValueError, as expected)" and expected["problems"] == []

    named = rows["guide/named", 3]
    assert (named["page"], named["name"], named["caption"], named["outcome"]) == (
        "guide/named.md", "named-batchnorm", "", "passed")

    assert found["totals"] == {
        "examples": 5, "passed": 3, "failed": 2, "skipped": 0, "ran": 5, "cached": 0,
        "claims": 3, "contradicted": 1, "drifted": 0,
        "seconds": pytest.approx(sum(row["seconds"] for row in rows.values())),
    }


def test_junit_has_one_case_per_example(first: SphinxTestApp) -> None:
    root = ElementTree.parse(first.outdir / "evaldemo-junit.xml").getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5", "failures": "2", "errors": "0", "skipped": "0"}
    cases = {(case.get("classname"), case.get("name")): case for case in suite.findall("testcase")}
    assert list(cases) == [
        ("guide/named", "named-batchnorm"), ("index", "Dropout in both modes"),
        ("index", f"line {FAILING}"), ("index", f"line {CONTRADICTED}"), ("index", f"line {EXPECTED}"),
    ]
    failed = {key for key, case in cases.items() if case.find("failure") is not None}
    assert failed == {("index", f"line {FAILING}"), ("index", f"line {CONTRADICTED}")}
    claim = cases["index", f"line {CONTRADICTED}"].find("failure")
    assert claim is not None and claim.get("type") == "claim"
    assert (claim.get("message") or "").startswith(":expect: same: the train and eval outputs differ")
    assert f"index.md:{CONTRADICTED}:" in (claim.text or "")
    raised = cases["index", f"line {FAILING}"].find("failure")
    assert raised is not None and "RuntimeError: broken on purpose" in (raised.get("message") or "")
    assert all(float(case.get("time") or -1) > 0 for case in cases.values())
    assert cases["index", f"line {EXPECTED}"].get("file") == "index.md"


def test_a_rebuild_reports_results_from_the_cache(second: SphinxTestApp) -> None:
    found = read_json(second)
    assert {row["source"] for row in found["examples"]} == {"cache"}
    assert (found["totals"]["ran"], found["totals"]["cached"], found["totals"]["failed"]) == (0, 5, 2)
    # a result from the cache is judged as on the build that ran it
    assert [row["outcome"] for row in found["examples"]] == ["passed", "passed", "failed", "failed", "passed"]


def test_no_result_is_skipped(sphinx_build: Build, second: SphinxTestApp) -> None:
    app = sphinx_build("report-files", "text", copy="report-files-never", freshenv=True,
                       confoverrides={"evaldemo_execute": "never"})
    found = read_json(app)
    assert [row["outcome"] for row in found["examples"]] == ["skipped"] * 5
    assert all(row["source"] is None and row["seconds"] is None for row in found["examples"])
    suite = ElementTree.parse(app.outdir / "evaldemo-junit.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("skipped"), suite.get("failures")) == ("5", "0")
    assert len(suite.findall("testcase/skipped")) == 5


def test_a_bad_value_is_a_warning_and_the_default_is_used(sphinx_build: Build, second: SphinxTestApp) -> None:
    app = sphinx_build("report-files", "text", confoverrides={"evaldemo_report_files": ("json", "xml")})
    (warned,) = [w for w in warnings(app.warning.getvalue()) if w.type == "evaldemo.config"]
    assert "evaldemo_report_files = ('json', 'xml') is not valid" in warned.message
    assert "using ('json',)" in warned.message
    assert (app.outdir / "evaldemo-report.json").is_file()
    assert not (app.outdir / "evaldemo-junit.xml").exists()


def test_an_empty_value_writes_none(sphinx_build: Build, second: SphinxTestApp) -> None:
    app = sphinx_build("report-files", "text", copy="report-files-none",
                       confoverrides={"evaldemo_report_files": ()})
    assert not list(Path(app.outdir).glob("evaldemo-*"))


def test_a_build_stopped_by_a_warning_still_writes_its_report(tmp_path: Path) -> None:
    srcdir = tmp_path / "src"
    shutil.copytree(ROOTS / "test-report-files", srcdir)
    # --exception-on-warning: the first warning stops the build (-W alone goes on to the end)
    app = SphinxTestApp("html", srcdir=srcdir, exception_on_warning=True)
    try:
        with pytest.raises(SphinxWarning):
            app.build()
    finally:
        app.cleanup()
    found = read_json(app)
    assert found["complete"] is False
    assert found["totals"]["examples"] == 5


def test_the_author_command_prints_the_same_rows(second: SphinxTestApp) -> None:
    outcome = run_page(Path(second.srcdir) / "index.md")
    properties = SCHEMA["$defs"]["example"]["properties"]
    built = by_line(read_json(second))
    one_row = jsonschema.Draft202012Validator(
        {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": "#/$defs/example"})
    for row in outcome.rows:
        one_row.validate(row)
        assert set(row) == set(properties)
        same = built["index", row["line"]]
        for field in ("page", "caption", "name", "status", "outcome", "raised"):
            assert row[field] == same[field], field
        assert [c["held"] for c in row["claims"]] == [c["held"] for c in same["claims"]]
    assert outcome.failed


def test_the_ci_summary_reads_the_report(second: SphinxTestApp) -> None:
    script = Path(__file__).parents[2] / ".ci" / "report-summary"
    ran = subprocess.run([sys.executable, str(script), str(second.outdir / "evaldemo-report.json")],
                         capture_output=True, text=True, check=False)
    assert ran.returncode == 1, ran.stderr  # two examples failed
    lines = ran.stdout.splitlines()
    assert lines[0].endswith(
        "html build): 5 examples, 0 ran, 5 from the cache, 2 failed, 0 skipped, 1 of 3 claims contradicted")
    assert [line.split(": ")[0].strip() for line in lines[1:]] == [
        f"index.md:{line_of(INDEX, 'raise RuntimeError')}", f"index.md:{CONTRADICTED}"]


def test_every_field_is_documented() -> None:
    page = (Path(__file__).parents[2] / "docs" / "report-files.md").read_text(encoding="utf-8")
    terms = {line for line in page.splitlines() if line and not line.startswith((" ", ":", "#", "`"))}
    documented = {term for term in terms if term.isidentifier()}
    top = set(SCHEMA["properties"])
    rows = set(SCHEMA["$defs"]["example"]["properties"])
    assert top | rows <= documented, (top | rows) - documented
    assert all(f"`{total}`" in page for total in SCHEMA["properties"]["totals"]["properties"])
    # the page's example of a report is one
    (example,) = re.findall(r"```json\n(.*?)```", page, re.DOTALL)
    validate(json.loads(example))


def test_pages_not_read_again_are_in_the_report(sphinx_build: Build, second: SphinxTestApp) -> None:
    """Every example of the project, not only those of the pages this build read; with
    ``-j 2`` too (the records come from the forked readers)."""
    cold = sphinx_build("report-files", "text", copy="report-files-again", parallel=2)
    assert (read_json(cold)["totals"]["ran"], read_json(cold)["totals"]["examples"]) == (5, 5)
    named = Path(second.srcdir).parent / "report-files-again" / "guide" / "named.md"
    named.write_text(named.read_text(encoding="utf-8") + "\nA new paragraph.\n", encoding="utf-8")
    app = sphinx_build("report-files", "text", copy="report-files-again", parallel=2)
    status = re.sub(r"\x1b\[[0-9;]*m", "", app.status.getvalue())
    assert "0 added, 1 changed, 0 removed" in status  # guide/named alone was read again
    found = read_json(app)
    assert [(row["docname"], row["source"], row["outcome"]) for row in found["examples"]] == [
        ("guide/named", "cache", "passed"), ("index", "cache", "passed"), ("index", "cache", "failed"),
        ("index", "cache", "failed"), ("index", "cache", "passed"),
    ]
