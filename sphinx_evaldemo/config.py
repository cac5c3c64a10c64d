"""EvalDemoConfig: every ``evaldemo_*`` value, declared once (default, check, help,
whether it changes pages), validated once when the configuration is read."""

from __future__ import annotations

import os
import re
import types
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin, get_type_hints
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.config import Config

ExecuteMode = Literal["auto", "force", "cache", "never"]
EXECUTE_MODES: tuple[ExecuteMode, ...] = ("auto", "force", "cache", "never")
PrivateMode = Literal["unlisted", "exclude"]
PRIVATE_MODES: tuple[PrivateMode, ...] = ("unlisted", "exclude")
ExecutorName = Literal["local", "dask"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "dask")
FeedsMode = Literal["auto", True, False]
FEEDS_MODES: tuple[FeedsMode, ...] = ("auto", True, False)
#: What ``evaldemo_report_files`` may list.
REPORT_FILES = ("json", "junit")
#: The environment variable that names a Dask scheduler when conf.py does not.
SCHEDULER_ENV = "EVALDEMO_DASK_SCHEDULER"


def _setting(
    default: Any, check: Callable[[Any], bool], expected: str, help: str, rebuild: str = "env"
) -> Any:
    """One value. ``rebuild``: what Sphinx redoes when it changes: ``"env"`` re-reads every
    page (the value changes what a page records or shows), ``""`` nothing (it changes
    only how and where the examples run, never what they produce)."""
    return field(default=default, metadata={
        "check": check, "expected": expected, "help": help, "rebuild": rebuild,
    })


_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class EvalDemoConfig:
    """The extension's settings, as read from ``conf.py``."""

    execute: ExecuteMode = _setting(
        "auto",
        lambda v: v in EXECUTE_MODES,
        "one of " + ", ".join(map(repr, EXECUTE_MODES)),
        '``"auto"`` runs what the cache lacks; ``"force"`` runs every example; '
        '``"cache"`` only uses stored results (a miss is a warning); '
        '``"never"`` shows the code only and starts no worker.',
    )
    timeout: float = _setting(
        60, _positive, "a positive number of seconds",
        "Seconds an example may run (setup and passes, not the worker's start-up).",
    )
    seed: int = _setting(
        0, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a non-negative integer",
        "Default seed for torch, ``random`` and numpy; ``:seed:`` overrides it.",
    )
    max_output: int = _setting(
        20000, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 100,
        "an integer of at least 100",
        "Characters kept per output stream; the rest is cut in the middle, and the page says how much.",
    )
    workers: int | None = _setting(
        None, lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0),
        "None or a positive integer",
        "Examples that run at the same time, each in a fresh process forked from one warm "
        "parent; ``None`` means one per CPU (examples run while Sphinx reads, and after "
        "reading, when ``-j`` processes are idle).",
        rebuild="",
    )
    cache_dir: str | os.PathLike[str] | None = _setting(
        None, lambda v: v is None or isinstance(v, str | os.PathLike),
        "None, a path or an fsspec URL",
        "Where results are kept between builds, clean builds too: a folder or an fsspec URL "
        "(``s3://bucket/prefix``, ``gs://...``, ``file://...``) that several machines share. "
        "``None`` keeps them in ``.evaldemo-cache`` beside the doctree folder (in ``_build/`` "
        "with ``make``, where ``make clean`` leaves it). A relative path is taken from the "
        "folder holding ``conf.py``. Results no page uses any more are removed from this "
        "project's namespace at the end of a full build.",
    )
    cache_storage_options: dict[str, Any] | None = _setting(
        None, lambda v: v is None or (isinstance(v, dict) and all(isinstance(k, str) for k in v)),
        "None or a dict of fsspec options",
        "Options for the filesystem of an ``evaldemo_cache_dir`` URL, passed to fsspec as they "
        "are (for S3: ``endpoint_url``, ``key``, ``secret``, ``profile``...). ``None``: the "
        "library's own defaults and environment (``AWS_*`` variables, fsspec's config).",
    )
    cache_namespace: str | None = _setting(
        None, lambda v: v is None or (isinstance(v, str) and _NAMESPACE.fullmatch(v) is not None),
        "None or a name of letters, digits, '.', '_' and '-'",
        "The folder of this project's results inside the cache, so projects can share one "
        "cache without pruning each other's results. ``None``: made from ``project``.",
    )
    executor: ExecutorName = _setting(
        "local", lambda v: v in EXECUTORS, "one of " + ", ".join(map(repr, EXECUTORS)),
        '``"local"`` runs examples in processes on this machine; ``"dask"`` sends each '
        "example to a Dask cluster (``pip install 'sphinx-evaldemo[dask]'``), where it runs "
        "in a process of its own on a worker's machine.",
        rebuild="",
    )
    dask_scheduler: str | None = _setting(
        None, lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
        "None or a scheduler address",
        'With ``evaldemo_executor = "dask"``: the scheduler\'s address '
        '(``"tcp://host:8786"``), or ``"local"`` to start a ``LocalCluster`` on this machine '
        f"for the build. ``None``: the environment variable ``{SCHEDULER_ENV}``, else "
        '``"local"``.',
        rebuild="",
    )
    dask_unreachable: Literal["local", "error"] = _setting(
        "local", lambda v: v in ("local", "error"), "'local' or 'error'",
        'When the Dask scheduler cannot be reached: ``"local"`` warns once and runs the '
        'examples on this machine; ``"error"`` stops the build at once with the reason.',
        rebuild="",
    )

    memory_limit: int | None = _setting(
        4096, lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0),
        "None or a positive number of megabytes",
        "Megabytes of memory an example may allocate in its worker; past it the example "
        "fails with a warning instead of taking the machine down. ``None``: no limit.",
    )

    private: PrivateMode = _setting(
        "unlisted",
        lambda v: v in PRIVATE_MODES,
        "one of " + ", ".join(map(repr, PRIVATE_MODES)),
        'Articles with ``private: true``: ``"unlisted"`` builds them as pages marked private '
        "and ``noindex``, left out of listings, tag and author pages, feeds and the search "
        'index; ``"exclude"`` leaves them out of the build.',
    )
    details: Literal["compact", "full"] = _setting(
        "compact", lambda v: v in ("compact", "full"), "'compact' or 'full'",
        'What a compared example shows: ``"compact"``, the teaching figure (the sentence '
        'that says why the modes differ, the panels, what is surprising); ``"full"``, every '
        "fact of the run with the chart. ``:details:`` sets it for one example.",
    )

    report_files: tuple[str, ...] | list[str] = _setting(
        ("json",),
        lambda v: isinstance(v, tuple | list) and all(kind in REPORT_FILES for kind in v),
        "a tuple of " + " and ".join(map(repr, REPORT_FILES)) + " (or an empty one)",
        "Machine-readable reports written into the output folder at the end of a build, "
        'for CI: ``"json"`` writes ``evaldemo-report.json`` (every example, its status, '
        'times, claims; its fields are on the page "Report files for CI"), ``"junit"`` '
        "writes ``evaldemo-junit.xml`` (one test case per example). ``()`` writes none.",
        rebuild="",
    )

    feeds: FeedsMode = _setting(
        "auto",
        lambda v: v == "auto" or v is True or v is False,
        "'auto', True or False",
        "Atom feeds of the articles (``pip install 'sphinx-evaldemo[feeds]'``): "
        '``"auto"`` writes them when feedgen is installed and ``html_baseurl`` is set '
        "(feed readers need absolute links), and skips them silently otherwise; ``True`` "
        "wants them: a warning says what is missing when they cannot be written (without "
        "``html_baseurl`` their links are relative); ``False`` writes none.",
    )

    @classmethod
    def from_sphinx(cls, config: Config) -> tuple[EvalDemoConfig, list[str]]:
        """Read and check the values; a bad one falls back to its default, with a message."""
        values: dict[str, Any] = {}
        problems = []
        for spec in fields(cls):
            value = getattr(config, f"evaldemo_{spec.name}")
            if spec.default is None:  # Sphinx cannot convert -D values for these
                value = _from_command_line(value, spec.name)
            if spec.metadata["check"](value):
                values[spec.name] = value
            else:
                problems.append(
                    f"evaldemo_{spec.name} = {value!r} is not valid: expected "
                    f"{spec.metadata['expected']}; using {spec.default!r}"
                )
        return cls(**values), problems

    def scheduler(self) -> str:
        """The Dask scheduler to use: conf.py's, else the environment's, else a local cluster."""
        return self.dask_scheduler or os.environ.get(SCHEDULER_ENV, "").strip() or "local"


def accepted(name: str) -> tuple[type, ...]:
    """The types a value may have, from its field's hint (what Sphinx's own check accepts;
    ours, ``check``, is stricter and runs anyway)."""
    return _types(get_type_hints(EvalDemoConfig)[name])


def _types(hint: Any) -> tuple[type, ...]:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return tuple(dict.fromkeys(kind for arg in get_args(hint) for kind in _types(arg)))
    if origin is Literal:
        return tuple(dict.fromkeys(type(arg) for arg in get_args(hint)))
    if hint is float:
        return (int, float)
    return (origin or hint,)


def _from_command_line(value: Any, name: str) -> Any:
    """``-D evaldemo_workers=2`` arrives as a string where the default is None: read the number."""
    kinds = accepted(name)
    if not isinstance(value, str) or str in kinds:
        return value
    for kind in (int, float):
        if kind in kinds:
            try:
                return kind(value.strip())
            except ValueError:
                pass
    return value


#: the settings of each configuration, validated once (when it is read)
_KEPT: WeakKeyDictionary[Config, EvalDemoConfig] = WeakKeyDictionary()


def register(app: Sphinx) -> None:
    """Declare every field as a ``evaldemo_*`` config value, validated when it is read."""
    for spec in fields(EvalDemoConfig):
        assert spec.default is not MISSING
        app.add_config_value(
            f"evaldemo_{spec.name}", spec.default, spec.metadata["rebuild"],
            types=accepted(spec.name),
        )
    app.connect("config-inited", validate, priority=100)  # before anything reads them


def validate(app: Sphinx, config: Config) -> None:
    """Check the values once; each bad one is a warning and its default is used."""
    from sphinx.util import logging

    found, problems = EvalDemoConfig.from_sphinx(config)
    for problem in problems:
        logging.getLogger(__name__).warning(problem, type="evaldemo", subtype="config")
    _KEPT[config] = found


def settings(config: Config) -> EvalDemoConfig:
    """The build's settings, as validated when the configuration was read."""
    found = _KEPT.get(config)
    if found is None:  # a configuration read without the extension's events
        found, _ = EvalDemoConfig.from_sphinx(config)
        _KEPT[config] = found
    return found


def reference_rows() -> list[tuple[str, str, str]]:
    """``(name, default, meaning)`` for the docs' configuration table."""
    return [
        (f"evaldemo_{spec.name}", repr(spec.default), spec.metadata["help"])
        for spec in fields(EvalDemoConfig)
    ]
