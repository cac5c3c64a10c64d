"""Pure data that crosses the process and disk boundaries: requests and results.

Every one of these crosses as JSON through one codec (:mod:`.schema`): :func:`dumps`
and :func:`loads` here, or :func:`encode` and :func:`decode` where the JSON object is
part of a larger message. A field added to a dataclass travels, and is checked, with
no other line to write.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .schema import decode, encode

__all__ = ["decode", "dumps", "encode", "loads"]

T = TypeVar("T")

#: Bumped whenever the shape or meaning of a result changes, so old cache files miss.
SCHEMA = 2

Mode = Literal["train", "eval"]

#: How a comparison that is not a plain yes or no came out: "" as ``equal`` says,
#: "rounding" (equal, within a few units in the last place), "incomparable" (no verdict).
Nuance = Literal["", "rounding", "incomparable"]


def outcome(equal: bool, nuance: str) -> str:
    """A verdict in words: "equal", "rounding" (equal up to rounding), "differ" or "incomparable"."""
    if equal:
        return "rounding" if nuance == "rounding" else "equal"
    return "incomparable" if nuance == "incomparable" else "differ"
MODES: tuple[Mode, ...] = ("train", "eval")

#: Where the model and input are placed (``auto``: a GPU when the machine has one).
Device = Literal["cpu", "cuda", "auto"]
DEVICES: tuple[Device, ...] = ("cpu", "cuda", "auto")

#: What went wrong, from the reader's point of view.
FailureKind = Literal[
    "exception",  # the code (or a forward pass) raised
    "syntax",  # the code does not compile
    "model",  # no model, an unknown name, several candidates, not an nn.Module
    "input",  # the :input: expression failed
    "exit",  # the example called sys.exit()
    "timeout",  # the example ran past its limit
    "memory",  # the example ran past evaldemo_memory_limit
    "crash",  # the example's process died (segfault, os._exit, killed)
    "worker",  # the harness failed (could not start, its protocol broke): never cached
    "device",  # :device: cuda, and no GPU could run it (never cached)
    "cluster",  # the Dask cluster lost the task: the scheduler went away (never cached)
    "not-run",  # execute="cache" and the cache had no result
]


@dataclass(frozen=True, slots=True)
class ExampleRequest:
    """Everything that determines an example's output, and nothing else.

    The page and line travel beside it, so moving an example does not re-run it;
    presentation options (caption, hidden code) are not here either.
    """

    code: str
    model: str | None = None
    input: str | None = None
    modes: tuple[Mode, ...] = MODES
    repeat: int = 1
    no_grad: bool = False
    seed: int = 0
    timeout: float = 60.0
    max_output: int = 20000
    memory_limit: int | None = None  # megabytes an example may add to the worker
    #: ``(path, sha256)`` of each ``:depends:`` file: a change to one re-runs the example
    depends: tuple[tuple[str, str], ...] = ()
    device: Device = "cpu"

    @property
    def compared(self) -> bool:
        return self.input is not None

    def key(self, fingerprint: str) -> str:
        payload = json.dumps({"v": SCHEMA, "env": fingerprint, **encode(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an example has no (complete) output."""

    kind: FailureKind
    message: str
    traceback: str = ""
    exc_type: str = ""
    #: the exception's class and its bases, for matching ``:raises:``
    exc_mro: tuple[str, ...] = ()
    #: 1-based line inside the example's code, when known
    lineno: int | None = None


#: Failures of the harness or of where a run happened, not of what the example does:
#: never stored (a later build, or a GPU machine sharing the cache, must still run it).
UNSTORED = frozenset({"worker", "device", "cluster"})


@dataclass(frozen=True, slots=True)
class TensorView:
    """A numeric tensor in a mode's first output: its numbers, for marks, charts, summaries."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    #: every element, flattened, when the tensor is small enough to show one by one
    values: tuple[float, ...] | None
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    zeros: float  # share of elements that are exactly zero

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


@dataclass(frozen=True, slots=True)
class ModeRun:
    """One mode's passes over the same model state, input and seed."""

    mode: Mode
    outputs: tuple[str, ...]
    printed: str = ""
    requires_grad: bool | None = None
    deterministic: bool | None = None
    buffers_changed: tuple[str, ...] = ()
    seconds: float = 0.0
    peak_memory: int = 0
    truncated: bool = False  # an output or the printed text was cut at max_output
    tensors: tuple[TensorView, ...] = ()
    #: modules whose output changed on the second pass while their inputs were equal
    varied: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeafDiff:
    """How one leaf of the output (``[0]``, ``["logits"]``) differs between modes."""

    path: str
    equal: bool
    max_abs_diff: float | None = None
    differing: int | None = None
    total: int | None = None
    note: str = ""
    verdict: Nuance = ""
    #: flat indices of the elements that differ, for a tensor small enough to mark
    differs_at: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Facts about the two modes, drawn from the run."""

    modes: tuple[Mode, Mode]
    #: the first leaves (an output of many leaves is cut: see ``more``)
    leaves: tuple[LeafDiff, ...]
    more: int = 0  # leaves left out
    more_differing: int = 0  # of which differ

    @property
    def verdict(self) -> str:
        """The outputs' verdict: "differ", else "incomparable", else "rounding", else "equal"."""
        found = {outcome(leaf.equal, leaf.verdict) for leaf in self.leaves}
        if self.more_differing:
            found.add("differ")
        return next((k for k in ("differ", "incomparable", "rounding") if k in found), "equal")

    @property
    def differ(self) -> bool:
        return self.verdict == "differ"


@dataclass(frozen=True, slots=True)
class ModeModule:
    """A submodule whose own code reads the mode (``net[2]``, ``Dropout``, ``p=0.5``)."""

    name: str  # the model's own access path: ``net[2]``, ``net.encoder.dropout``
    type: str
    settings: str = ""  # short: the first setting and those not at their defaults
    full: str = ""  # the full ``repr``, for hover or a folded view
    #: why, with these settings, reading the mode cannot change the result ("" if it can)
    no_effect: str = ""

    @property
    def label(self) -> str:
        """``Dropout, p=0.5``: the type and the short settings."""
        return f"{self.type}, {self.settings}" if self.settings else self.type


@dataclass(frozen=True, slots=True)
class LayerDiff:
    """One traced module call: how its output differs between the two modes."""

    name: str  # access path, with `` (call 2)`` for a module called more than once
    type: str
    settings: str = ""
    inputs_equal: bool = True
    equal: bool = True
    max_abs_diff: float | None = None  # None: not measured (only a checksum was kept)
    differing: int | None = None
    total: int | None = None
    #: the first modules whose outputs differ while their inputs were equal
    parts: bool = False
    note: str = ""  # "called in one mode only", "not a tensor output", ...
    verdict: Nuance = ""


@dataclass(frozen=True, slots=True)
class Trace:
    """Where the two modes part, from forward hooks on the model's leaf modules."""

    modes: tuple[Mode, Mode]
    #: the calls shown, in call order (capped: see ``before`` and ``after``)
    layers: tuple[LayerDiff, ...] = ()
    #: names of the first partings, in call order (all of them, even past the cap)
    parting: tuple[str, ...] = ()
    calls: int = 0  # module calls traced in all
    differing_calls: int = 0  # of which the output differs
    before: int = 0  # calls left out before the first row shown
    after: int = 0  # calls left out after the last row shown
    differing_after: int = 0  # of which the output differs
    largest_after: float | None = None  # the largest difference among the calls left out after


@dataclass(frozen=True, slots=True)
class Segment:
    """Printed output of an as-written example, in the mode its models were in."""

    mode: str  # "train", "eval", "mixed" or "" (no model yet)
    text: str


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """What one run of an example produced; cached and rendered as is."""

    setup_output: str = ""
    runs: tuple[ModeRun, ...] = ()
    comparison: Comparison | None = None
    segments: tuple[Segment, ...] = ()
    mode_dependent: tuple[ModeModule, ...] = ()
    trace: Trace | None = None
    #: what the run found surprising, in plain words (eval not deterministic, ...)
    notes: tuple[str, ...] = ()
    failure: Failure | None = None
    seconds: float = 0.0
    #: the streams cut at ``max_output`` characters ("setup", "train output", ...)
    truncated: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None


def dumps(value: Any) -> str:
    """``value`` (a request, a result, any of their parts) as one line of JSON."""
    return json.dumps(encode(value), sort_keys=True)


def loads(cls: type[T], text: str | bytes) -> T:
    """A ``cls`` read back from :func:`dumps`; anything else (not JSON, foreign JSON, an
    old layout, a value its hint refuses) is a :class:`ValueError` that says where."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError as error:
        raise ValueError(f"{cls.__name__}: not UTF-8 ({error.reason})") from None
    except ValueError as error:
        raise ValueError(f"{cls.__name__}: not JSON ({error})") from None
    return decode(cls, data)


def harness_failure(result: ExampleResult) -> bool:
    """Whether the run failed for a reason outside the example (it is never cached).

    The harness broke (``worker``), the cluster lost the task (``cluster``), or no GPU
    could run it (``device``): another build, or another machine, can still run it.
    """
    return result.failure is not None and result.failure.kind in UNSTORED
