"""detect: which modules read the mode, checked against lists taken from torch's documentation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F  # noqa: N812  # the usual alias
from torch import nn

from sphinx_evaldemo.examples.detect import access_path, broken, describe, mode_dependent
from sphinx_evaldemo.examples.model import ModeModule

# The oracle: torch's documentation says each of these behaves differently in training
# and evaluation (Dropout*: "during training"; BatchNorm/SyncBatchNorm: running
# estimates in eval; InstanceNorm with track_running_stats; RReLU: random slope in
# training, fixed in eval; RNN/LSTM/GRU: dropout between layers; MultiheadAttention and
# the Transformer layers: dropout, and the fast path in eval; spectral_norm: the power
# iteration runs in training only). The module itself must be found.
BEHAVES_BY_MODE: dict[str, Callable[[], nn.Module]] = {
    "Dropout": lambda: nn.Dropout(0.5),
    "Dropout1d": lambda: nn.Dropout1d(0.2),
    "Dropout2d": lambda: nn.Dropout2d(0.2),
    "Dropout3d": lambda: nn.Dropout3d(0.2),
    "AlphaDropout": lambda: nn.AlphaDropout(0.2),
    "FeatureAlphaDropout": lambda: nn.FeatureAlphaDropout(0.2),
    "BatchNorm1d": lambda: nn.BatchNorm1d(3),
    "BatchNorm2d": lambda: nn.BatchNorm2d(3),
    "BatchNorm3d": lambda: nn.BatchNorm3d(3),
    "SyncBatchNorm": lambda: nn.SyncBatchNorm(3),
    "InstanceNorm1d-running": lambda: nn.InstanceNorm1d(3, track_running_stats=True),
    "InstanceNorm2d-running": lambda: nn.InstanceNorm2d(3, track_running_stats=True),
    "InstanceNorm3d-running": lambda: nn.InstanceNorm3d(3, track_running_stats=True),
    "RReLU": lambda: nn.RReLU(0.1, 0.3),
    "RNN-dropout": lambda: nn.RNN(2, 3, num_layers=2, dropout=0.2),
    "LSTM-dropout": lambda: nn.LSTM(2, 3, num_layers=2, dropout=0.2),
    "GRU-dropout": lambda: nn.GRU(2, 3, num_layers=2, dropout=0.2),
    "MultiheadAttention": lambda: nn.MultiheadAttention(4, 2, dropout=0.1),
    "TransformerEncoderLayer": lambda: nn.TransformerEncoderLayer(4, 2, 8),
    "TransformerEncoder": lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 2, enable_nested_tensor=False),
}

# Containers whose mode-dependence lives in their submodules, as torch documents it.
CONTAINS_MODE: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "TransformerDecoderLayer": (lambda: nn.TransformerDecoderLayer(4, 2, 8), "m.dropout1"),
    "Transformer": (
        lambda: nn.Transformer(4, 2, 1, 1, 8, batch_first=True), "m.encoder.layers[0]"),
    "spectral_norm": (
        lambda: nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3)),
        "m.parametrizations.weight[0]",
    ),
}

# Documented as computing the same function in both modes.
MODE_FREE: dict[str, Callable[[], nn.Module]] = {
    "Linear": lambda: nn.Linear(4, 3),
    "Bilinear": lambda: nn.Bilinear(2, 2, 3),
    "Conv1d": lambda: nn.Conv1d(1, 2, 3),
    "Conv2d": lambda: nn.Conv2d(1, 2, 3),
    "ConvTranspose2d": lambda: nn.ConvTranspose2d(1, 2, 3),
    "ReLU": lambda: nn.ReLU(),
    "GELU": lambda: nn.GELU(),
    "LeakyReLU": lambda: nn.LeakyReLU(0.1),
    "Softmax": lambda: nn.Softmax(dim=-1),
    "LayerNorm": lambda: nn.LayerNorm(3),
    "GroupNorm": lambda: nn.GroupNorm(1, 3),
    "RMSNorm": lambda: nn.RMSNorm(3),
    "LocalResponseNorm": lambda: nn.LocalResponseNorm(2),
    "Embedding": lambda: nn.Embedding(5, 3),
    "EmbeddingBag": lambda: nn.EmbeddingBag(5, 3),
    "MaxPool2d": lambda: nn.MaxPool2d(2),
    "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d(1),
    "Flatten": lambda: nn.Flatten(),
    "Identity": lambda: nn.Identity(),
    "Upsample": lambda: nn.Upsample(scale_factor=2),
    "PixelShuffle": lambda: nn.PixelShuffle(2),
    "Sequential-of-mode-free": lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.LayerNorm(3)),
}


def _names(model: nn.Module) -> list[str]:
    return [found.name for found in mode_dependent(model, "m")]


@pytest.mark.parametrize("name", BEHAVES_BY_MODE)
def test_modules_documented_as_mode_dependent_are_found(name: str) -> None:
    model = BEHAVES_BY_MODE[name]()
    (itself,) = [found for found in mode_dependent(model, "m") if found.name == "m"]
    assert itself.type == type(model).__name__
    assert itself.no_effect == ""


@pytest.mark.parametrize("name", CONTAINS_MODE)
def test_containers_of_mode_dependent_modules_name_them(name: str) -> None:
    make, inner = CONTAINS_MODE[name]
    assert inner in _names(make())


@pytest.mark.parametrize("name", MODE_FREE)
def test_modules_documented_as_mode_free_are_not_flagged(name: str) -> None:
    assert _names(MODE_FREE[name]()) == []


# Read the mode, but with these settings cannot change the result: listed, with the reason.
NO_EFFECT: list[tuple[str, nn.Module, str]] = [
    ("dropout-p0", nn.Dropout(0.0), "p=0"),
    ("dropout2d-p0", nn.Dropout2d(0.0), "p=0"),
    ("instancenorm-plain", nn.InstanceNorm1d(3), "without running statistics"),
    ("batchnorm-no-running-stats", nn.BatchNorm1d(3, track_running_stats=False), "batch statistics"),
    ("lstm-no-dropout", nn.LSTM(2, 3, num_layers=2), "dropout > 0"),
    ("gru-one-layer", nn.GRU(2, 3, dropout=0.0), "dropout > 0"),
    ("attention-no-dropout", nn.MultiheadAttention(4, 2), "dropout=0"),
]


@pytest.mark.parametrize(("case", "model", "reason"), NO_EFFECT, ids=[c[0] for c in NO_EFFECT])
def test_modules_that_read_the_mode_without_effect_say_so(case: str, model: nn.Module, reason: str) -> None:
    (found,) = mode_dependent(model, "m")
    assert found.name == "m"
    assert found.no_effect.startswith("reads the mode, but")
    assert reason in found.no_effect


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.dropout = nn.Dropout(0.1)


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 4)
        self.block = Block()


class ReadsTraining(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if self.training else x


class FunctionalDropout(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, 0.5, self.training)


class ForgetsTheMode(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, 0.5)  # the pitfall: training defaults to True


class ReadsTrainingInHelper(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def scale(value: torch.Tensor) -> torch.Tensor:
            return value * (2 if self.training else 1)

        return scale(x)


class ReadsTrainingInMethod(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._noise(x)

    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x) if self.training else x


class CallsParent(ReadsTrainingInMethod):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 3


def _noisy(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x + 1 if module.training else x


class UsesModuleHelper(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _noisy(self, x)


class OverridesTrain(nn.Module):
    def train(self, mode: bool = True) -> OverridesTrain:
        super().train(mode)
        return self


class OverridesEval(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.temperature = 1.0

    def eval(self) -> OverridesEval:
        self.temperature = 0.5
        return super().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.temperature


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class MyDropout(nn.Dropout):
    pass


USER: list[tuple[str, nn.Module, list[str]]] = [
    ("sequential-index", nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5)), ["m[2]"]),
    ("nested", nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))), ["m[0][1]"]),
    ("attribute", Outer(), ["m.block.dropout"]),
    ("module-list", nn.ModuleList([nn.Linear(2, 2), nn.Dropout()]), ["m[1]"]),
    ("module-dict", nn.ModuleDict({"drop": nn.Dropout(), "lin": nn.Linear(2, 2)}), ["m.drop"]),
    ("subclass-of-dropout", nn.Sequential(MyDropout(0.3)), ["m[0]"]),
    ("reads-training", nn.Sequential(nn.Linear(2, 2), ReadsTraining()), ["m[1]"]),
    ("functional-dropout", FunctionalDropout(), ["m"]),
    ("functional-dropout-without-training", ForgetsTheMode(), []),
    ("training-in-nested-function", ReadsTrainingInHelper(), ["m"]),
    ("training-in-a-method", ReadsTrainingInMethod(), ["m"]),
    ("training-in-the-parent-forward", CallsParent(), ["m"]),
    ("training-in-a-module-level-helper", UsesModuleHelper(), ["m"]),
    ("overrides-train", OverridesTrain(), ["m"]),
    ("overrides-eval", nn.Sequential(nn.Linear(2, 2), OverridesEval()), ["m[1]"]),
    ("plain-user-module", Plain(), []),
    ("old-hook-spectral-norm", nn.utils.spectral_norm(nn.Linear(4, 3)), ["m"]),
]


@pytest.mark.parametrize(("case", "model", "names"), USER, ids=[c[0] for c in USER])
def test_user_models(case: str, model: nn.Module, names: list[str]) -> None:
    assert _names(model) == names


def test_entries_carry_type_short_settings_and_full_repr() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, momentum=0.2), nn.Dropout(0.25))
    assert mode_dependent(model, "net") == (
        ModeModule("net[1]", "BatchNorm1d", "3, momentum=0.2", repr(model[1])),
        ModeModule("net[2]", "Dropout", "p=0.25", repr(model[2])),
    )
    assert mode_dependent(model, "net")[1].label == "Dropout, p=0.25"


@pytest.mark.parametrize(
    ("module", "settings"),
    [
        (nn.Dropout(0.5), "p=0.5"),
        (nn.Dropout(0.25, inplace=True), "p=0.25, inplace=True"),
        (nn.Sequential(nn.Linear(2, 2)), ""),
        (nn.Linear(2, 3), "in_features=2, out_features=3"),
        (nn.Linear(2, 3, bias=False), "in_features=2, out_features=3, bias=False"),
        (nn.LayerNorm(8), "(8,)"),
        (nn.LSTM(4, 3, num_layers=2, dropout=0.5), "4, 3, num_layers=2, dropout=0.5"),
    ],
)
def test_describe_gives_type_and_settings_not_at_their_defaults(module: nn.Module, settings: str) -> None:
    kind, short, full = describe(module)
    assert (kind, short, full) == (type(module).__name__, settings, repr(module))


class BadRepr(nn.Module):
    def extra_repr(self) -> str:
        raise RuntimeError("no")


def test_describe_survives_a_failing_repr() -> None:
    assert describe(BadRepr()) == ("BadRepr", "", "BadRepr(<repr failed: RuntimeError>)")


def test_access_paths_are_how_code_reaches_the_module() -> None:
    odd = nn.Module()
    odd.add_module("a b", nn.Linear(1, 1))
    model = nn.Sequential(Outer(), nn.ModuleDict({"x": odd}))
    paths = [access_path("net", name, model) for name, _ in model.named_modules()]
    assert paths == [
        "net", "net[0]", "net[0].embed", "net[0].block", "net[0].block.linear",
        "net[0].block.dropout", "net[1]", "net[1].x", "net[1].x._modules['a b']",
    ]


# --- what runs: mixins, TorchScript, broken modules --------------------------------


class HalfInEval:
    """A mixin that is not a module: its forward reads the mode of the module it is mixed into."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.training else x / 2  # type: ignore[attr-defined]


class Halving(HalfInEval, nn.Module):
    pass


class NoiseMixin:
    def noise(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x) if self.training else x  # type: ignore[attr-defined]


class HelperFromALaterMixin(nn.Module, NoiseMixin):
    """The mixin comes after nn.Module in the MRO; its helper is still what forward calls."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.noise(x)


class ShapeMixin:
    def flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1)


class PlainWithMixin(ShapeMixin, nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flat(x)


class FreezeMixin:
    def train(self, mode: bool = True) -> FreezeMixin:
        nn.Module.train(self, mode)  # type: ignore[arg-type]
        return self


class FrozenLinear(FreezeMixin, nn.Linear):
    pass


class LaterForward(nn.Module, HalfInEval):
    """nn.Module's forward comes first in this MRO, so the mixin's is not what runs."""


MIXINS: list[tuple[str, nn.Module, list[str]]] = [
    ("mixin-forward", Halving(), ["m"]),
    ("mixin-forward-in-a-sequential", nn.Sequential(nn.Linear(2, 2), Halving()), ["m[1]"]),
    ("mixin-helper-after-module", HelperFromALaterMixin(), ["m"]),
    ("mixin-without-the-mode", PlainWithMixin(), []),
    ("mixin-overrides-train", FrozenLinear(2, 2), ["m"]),
    ("mixin-forward-shadowed-by-module", LaterForward(), []),
]


@pytest.mark.parametrize(("case", "model", "names"), MIXINS, ids=[c[0] for c in MIXINS])
def test_forwards_from_mixins_are_read(case: str, model: nn.Module, names: list[str]) -> None:
    assert _names(model) == names


def test_a_mixin_forward_found_is_one_whose_outputs_differ() -> None:
    model, x = Halving(), torch.ones(2)
    assert not torch.equal(model.train()(x), model.eval()(x))


def _script(model: nn.Module) -> nn.Module:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch deprecates TorchScript
        return torch.jit.script(model)  # type: ignore[no-any-return]


class ScriptableReadsTraining(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return x * 2
        return x


SCRIPTED: list[tuple[str, Callable[[], nn.Module], list[tuple[str, str, str, str]]]] = [
    ("sequential-dropout", lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout()),
     [("m._modules['1']", "Dropout", "p=0.5", "")]),
    ("batchnorm", lambda: nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)),
     # BatchNorm's extra_repr formats its own __dict__, which a scripted module lacks
     [("m._modules['1']", "BatchNorm1d", "", "")]),
    ("dropout-p0", lambda: nn.Dropout(0.0),
     [("m", "Dropout", "p=0.0", "reads the mode, but with p=0 it changes nothing")]),
    ("user-class", ScriptableReadsTraining, [("m", "ScriptableReadsTraining", "", "")]),
    ("mode-free", lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.LayerNorm(4)), []),
]


@pytest.mark.parametrize(("case", "make", "expected"), SCRIPTED, ids=[c[0] for c in SCRIPTED])
def test_torchscript_modules_are_read_through_their_compiled_code(
    case: str, make: Callable[[], nn.Module], expected: list[tuple[str, str, str, str]]
) -> None:
    model = _script(make())
    assert [(f.name, f.type, f.settings, f.no_effect) for f in mode_dependent(model, "m")] == expected


@pytest.mark.parametrize("case", [c[0] for c in SCRIPTED])
def test_scripted_modules_found_are_those_whose_outputs_differ(case: str) -> None:
    """The oracle: a scripted module listed with no reason to change nothing does change the output."""
    make, expected = next((m, e) for c, m, e in SCRIPTED if c == case)
    model = _script(make())
    x = torch.randn(4, 3) * 3 + 1 if case == "batchnorm" else torch.randn(4, 4)
    torch.manual_seed(0)
    train = model.train()(x)
    torch.manual_seed(0)
    evaluated = model.eval()(x)
    assert (not torch.equal(train, evaluated)) == any(no_effect == "" for *_, no_effect in expected)


def test_a_traced_module_has_its_mode_baked_in_and_is_not_listed() -> None:
    import warnings

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the trace warns that dropout makes it nondeterministic
        traced = torch.jit.trace(model, torch.randn(2, 4), check_trace=False)
    assert _names(traced) == []
    x = torch.ones(2, 4)
    torch.manual_seed(0)
    first = traced.eval()(x)
    torch.manual_seed(0)
    assert torch.equal(first, traced.train()(x))  # eval() changes nothing in a traced graph


class Forgetful(nn.Module):
    def __init__(self) -> None:  # super().__init__() never called
        self.scale = 2.0


class HoldsForgetful(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(2, 2), Forgetful())


BROKEN: list[tuple[str, Callable[[], nn.Module], str]] = [
    ("the-model", Forgetful, "`net` (Forgetful) was never set up as a torch.nn.Module: "
     "Forgetful.__init__ does not call super().__init__(); call super().__init__() first in "
     "Forgetful.__init__, before assigning anything to self"),
    ("a-submodule", HoldsForgetful, "`net.inner[1]` (Forgetful) was never set up"),
    ("in-a-sequential", lambda: nn.Sequential(nn.Dropout(), Forgetful()), "`net[1]` (Forgetful)"),
    ("sound", lambda: nn.Sequential(nn.Linear(2, 2), Halving()), ""),
]


@pytest.mark.parametrize(("case", "make", "message"), BROKEN, ids=[c[0] for c in BROKEN])
def test_a_module_without_super_init_is_named(case: str, make: Callable[[], nn.Module], message: str) -> None:
    found = broken(make(), "net")
    assert found.startswith(message) and bool(found) == bool(message)
    if message:
        with pytest.raises(AttributeError):  # what torch itself says: not the real cause
            list(make().modules())
