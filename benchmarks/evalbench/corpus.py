"""The generated corpus: small Dropout/BatchNorm examples, five to a page, and its edits."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from . import common
from .common import IMPORTS


@dataclass(frozen=True)
class Example:
    """One small model: what varies from example to example."""

    number: int  # 1-based, over the whole corpus
    conv: bool
    width_in: int
    hidden: tuple[int, ...]
    classes: int
    p: float
    batch: int
    dropout_first: bool  # Dropout before BatchNorm (an order people do write)

    @property
    def title(self) -> str:
        kind = "convolutional" if self.conv else "fully connected"
        return f"Example {self.number}: a {kind} net, dropout {self.p:g}"

    def code(self) -> str:
        """The example's setup: it builds ``net`` (the extension calls it on the input)."""
        layers: list[str] = []
        width = 3 if self.conv else self.width_in
        for size in self.hidden:
            if self.conv:
                block = [
                    f"nn.Conv2d({width}, {size}, kernel_size=3, padding=1)",
                    f"nn.BatchNorm2d({size})",
                    "nn.ReLU()",
                    f"nn.Dropout2d(p={self.p:g})",
                ]
            else:
                block = [f"nn.Linear({width}, {size})", f"nn.BatchNorm1d({size})", "nn.ReLU()"]
                dropout = f"nn.Dropout(p={self.p:g})"
                block.insert(1 if self.dropout_first else 3, dropout)
            layers += block
            width = size
        if self.conv:
            layers += ["nn.AdaptiveAvgPool2d(1)", "nn.Flatten()"]
        layers.append(f"nn.Linear({width}, {self.classes})")
        body = "".join(f"    {layer},\n" for layer in layers)
        return f"{IMPORTS}\nnet = nn.Sequential(\n{body})\n"

    def input(self) -> str:
        if self.conv:
            return f"torch.randn({self.batch}, 3, {self.width_in}, {self.width_in})"
        return f"torch.randn({self.batch}, {self.width_in})"

    def script(self) -> str:
        """Setup, then one forward pass per mode, seeded: what a plain script would do."""
        setup = self.code().removeprefix(IMPORTS)
        return (
            f"{IMPORTS}torch.manual_seed(0)\n{setup}"
            + f"x = {self.input()}\n"
            + "net.train()\nprint(net(x))\nnet.eval()\nprint(net(x))\n"
        )

    def prose(self) -> str:
        layers = len(self.hidden)
        return (
            f"{layers} hidden block{'s' if layers > 1 else ''} of widths "
            f"{', '.join(map(str, self.hidden))}, a batch of {self.batch}. In train mode the "
            f"dropout layers zero about {self.p:.0%} of their inputs and BatchNorm uses the "
            "batch's statistics; in eval mode both step aside."
        )


def make_examples(count: int, seed: int = 4) -> list[Example]:
    """``count`` different examples; the first ``n`` are the same for every ``count``."""
    examples = []
    for number in range(1, count + 1):
        rng = random.Random(seed * 100_003 + number)
        conv = number % 3 == 0
        if conv:
            hidden = tuple(rng.choice((8, 12, 16, 24)) for _ in range(rng.randint(1, 2)))
            width_in, batch = rng.choice((12, 16, 20)), rng.choice((4, 8, 16))
        else:
            hidden = tuple(rng.choice((64, 96, 128, 192, 256)) for _ in range(rng.randint(1, 3)))
            width_in, batch = rng.choice((16, 32, 48, 64, 96)), rng.choice((8, 16, 32, 64))
        examples.append(
            Example(
                number=number,
                conv=conv,
                width_in=width_in,
                hidden=hidden,
                classes=rng.randint(2, 10),
                p=rng.choice((0.1, 0.2, 0.25, 0.3, 0.4, 0.5)),
                batch=batch,
                dropout_first=rng.random() < 0.3,
            )
        )
    return examples


@dataclass(frozen=True)
class Page:
    number: int
    intro: str
    examples: tuple[Example, ...]

    @property
    def name(self) -> str:
        return f"page_{self.number:02d}"

    @property
    def title(self) -> str:
        return f"Page {self.number}: modes at work"


def make_pages(count: int, per_page: int | None = None) -> list[Page]:
    examples = make_examples(count)
    pages = []
    per_page = per_page or common.PER_PAGE
    for start in range(0, count, per_page):
        number = start // per_page + 1
        intro = (
            f"This page shows {len(examples[start:start + per_page])} small models. Each one "
            "mixes layers that behave differently in training and in evaluation, so the "
            "same input gives different outputs in the two modes."
        )
        pages.append(Page(number, intro, tuple(examples[start : start + per_page])))
    return pages


def prose_edited(page: Page, edit: int) -> Page:
    return replace(page, intro=page.intro + f" (Revised wording, edit {edit}.)")


def code_edited(page: Page) -> Page:
    """The page with its first example's dropout rate changed: that one example must re-run."""
    first = page.examples[0]
    changed = replace(first, p=0.45 if first.p != 0.45 else 0.35)
    return replace(page, examples=(changed, *page.examples[1:]))


