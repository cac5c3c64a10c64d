"""The machine-readable reports: every example's row as JSON and as JUnit XML, for CI.

The rows are the execution report's (:func:`.report.entry`: the same status, source and
times), with the claims' verdicts, the warnings and the drift added; the author command
prints the same rows (``--json``). The JSON's shape is ``evaldemo-report.schema.json``
beside this module, and its ``version`` moves when a field changes meaning or goes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from . import claims, report
from .diagnose import diagnose
from .model import MODES
from .records import ExampleRecord

if TYPE_CHECKING:
    from .execution import Execution as Runner

#: The report's layout: a reader checks it before reading anything else.
VERSION = 1
#: The JSON Schema of ``evaldemo-report.json`` (shipped with the package).
SCHEMA = Path(__file__).with_name("evaldemo-report.schema.json")
#: ``evaldemo_report_files`` value -> the file written into the output folder
FILES = {"json": "evaldemo-report.json", "junit": "evaldemo-junit.xml"}


def row(runner: Runner, record: ExampleRecord, file: str) -> dict[str, Any]:
    """One example as the reports hold it; ``file`` is its page's source, relative to
    the source folder (``guide/intro.md``)."""
    found = report.entry(runner, record)
    result = found.result
    problems = [] if result is None else diagnose(record, result)
    verdicts = claims.check(record.expect, result) if result is not None and result.ok else []
    listed = [{"line": line, "message": message, "kind": kind} for message, line, kind in problems]
    if record.problem:
        listed.append({"line": record.lineno, "message": record.problem, "kind": "option"})
    outcome = "failed" if listed else ("passed" if result is not None else "skipped")
    modes = {}
    for mode in MODES:
        run = next((r for r in result.runs if r.mode == mode), None) if result else None
        if run is not None:
            modes[mode] = {"seconds": run.seconds, "peak_memory": run.peak_memory or None}
    device = result.extra.get("device") if result is not None else None
    if result is not None and device is None and record.request and record.request.device == "cpu":
        device = "cpu"  # the worker names the device only where the page asked for another
    return {
        "page": file,
        "docname": record.docname,
        "line": record.lineno,
        "id": record.anchor,
        "caption": record.caption,
        "name": record.name,
        "status": found.status,
        "outcome": outcome,
        "failed": outcome == "failed",
        "source": found.source or None,
        "seconds": result.seconds if result is not None else None,
        "modes": modes,
        "requested_device": record.request.device if record.request else None,
        "device": device if isinstance(device, str) else None,
        "raises": record.raises,
        "raised": result.failure.exc_type or result.failure.kind
        if result is not None and result.failure is not None else None,
        "claims": [{"claim": v.claim, "held": v.held, "fact": v.fact} for v in verdicts],
        "problems": listed,
        "key": record.key,
        "drift": None,  # reserved: what changed since the result this one replaced
    }


def rows(
    runner: Runner, recorded: Mapping[str, Sequence[ExampleRecord]], file_of: Callable[[str], str],
) -> list[dict[str, Any]]:
    """Every example of the project, in page order (pages by name, then line)."""
    return [
        row(runner, record, file_of(docname))
        for docname in sorted(recorded)
        for record in sorted(recorded[docname], key=lambda r: r.lineno)
    ]


def totals(found: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    verdicts = [claim for r in found for claim in r["claims"]]
    return {
        "examples": len(found),
        "passed": sum(r["outcome"] == "passed" for r in found),
        "failed": sum(r["outcome"] == "failed" for r in found),
        "skipped": sum(r["outcome"] == "skipped" for r in found),
        "ran": sum(r["source"] == "run" for r in found),
        "cached": sum(r["source"] == "cache" for r in found),
        "claims": len(verdicts),
        "contradicted": sum(not claim["held"] for claim in verdicts),
        "drifted": sum(r["drift"] is not None for r in found),
        "seconds": sum(r["seconds"] or 0.0 for r in found),
    }


def document(
    found: Sequence[Mapping[str, Any]], *, project: str, builder: str, complete: bool,
) -> dict[str, Any]:
    """The JSON report: what built it, whether the build got to its end, totals, rows."""
    from .. import __version__

    return {
        "version": VERSION,
        "generator": f"sphinx-evaldemo {__version__}",
        "project": project,
        "builder": builder,
        "complete": complete,
        "totals": totals(found),
        "examples": list(found),
    }


def junit(found: Sequence[Mapping[str, Any]], *, project: str) -> ElementTree.ElementTree[ElementTree.Element]:
    """One test case per example: a failed example (a contradicted claim among them)
    is a failure, an expected error passes, an example with no result is skipped."""
    counts = totals(found)
    attributes = {
        "tests": str(counts["examples"]), "failures": str(counts["failed"]), "errors": "0",
        "skipped": str(counts["skipped"]), "time": f"{counts['seconds']:.3f}",
    }
    suites = ElementTree.Element("testsuites", {"name": project, **attributes})
    suite = ElementTree.SubElement(suites, "testsuite", {"name": f"{project}: evaldemo examples", **attributes})
    for r in found:
        case = ElementTree.SubElement(suite, "testcase", {
            "classname": r["docname"], "name": r["caption"] or r["name"] or f"line {r['line']}",
            "file": r["page"], "line": str(r["line"]), "time": f"{r['seconds'] or 0.0:.3f}",
        })
        if r["outcome"] == "failed":
            first = r["problems"][0]
            failure = ElementTree.SubElement(case, "failure", {"message": first["message"], "type": first["kind"]})
            failure.text = "\n".join(f"{r['page']}:{p['line']}: {p['message']} [evaldemo.{p['kind']}]"
                                     for p in r["problems"])
        elif r["outcome"] == "skipped":
            ElementTree.SubElement(case, "skipped", {"message": r["status"]})
    ElementTree.indent(suites)
    return ElementTree.ElementTree(suites)


def write(
    outdir: str | os.PathLike[str], kinds: Iterable[str], found: Sequence[Mapping[str, Any]],
    *, project: str, builder: str, complete: bool,
) -> list[str]:
    """Write the files ``kinds`` names into ``outdir``; what could not be written, in words.

    Each file is written beside its final name and renamed, so a reader never finds
    half a report.
    """
    problems = []
    for kind in dict.fromkeys(kinds):
        path = Path(outdir, FILES[kind])
        if kind == "json":
            data = json.dumps(document(found, project=project, builder=builder, complete=complete),
                              indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        else:
            data = ElementTree.tostring(junit(found, project=project).getroot(),
                                        encoding="utf-8", xml_declaration=True) + b"\n"
        try:
            _write_atomically(path, data)
        except OSError as error:
            problems.append(
                f"cannot write {path} ({error.strerror or error}); check that the output folder is writable"
            )
    return problems


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide the file from a web server
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
