"""A failure inside a pass the harness made (the model's forward) keeps its traceback:
from the model's call to the line that raised, with the harness's own frames left out."""

from __future__ import annotations

import numpy as np
import pytest

from sphinx_evaldemo.examples.model import ExampleRequest
from sphinx_evaldemo.examples.worker.failures import FILENAME
from sphinx_evaldemo.examples.worker.run import run_example

CASES = [
    # (code, input, a frame the traceback must show)
    ("import torch\nimport torch.nn as nn\nnet = nn.Linear(4, 2)", "torch.randn(3, 5)", "linear.py"),
    ("import torch\nimport torch.nn as nn\nnet = nn.Sequential(nn.Linear(4, 2), nn.ReLU())", "torch.randn(3, 5)",
     "container.py"),
]


@pytest.mark.parametrize(("code", "given", "frame"), CASES)
def test_a_forward_pass_failure_shows_its_traceback(code: str, given: str, frame: str) -> None:
    result = run_example(ExampleRequest(code=code, input=given), dict(np.get_printoptions()))
    failure = result.failure
    assert failure is not None
    assert failure.message == "model.train() pass: RuntimeError: mat1 and mat2 shapes cannot be multiplied (3x5 and 4x2)"
    lines = failure.traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: mat1 and mat2 shapes cannot be multiplied (3x5 and 4x2)"
    assert any(frame in line for line in lines)
    assert "return F.linear(input, self.weight, self.bias)" in failure.traceback
    assert "sphinx_evaldemo" not in failure.traceback  # the harness's frames are left out


def test_an_example_frame_still_starts_the_traceback() -> None:
    code = "import torch.nn as nn\nnet = nn.Linear(4, 2)\nnet(__import__('torch').randn(3, 5))"
    failure = run_example(ExampleRequest(code=code), dict(np.get_printoptions())).failure
    assert failure is not None
    assert failure.traceback.splitlines()[1] == f'  File "{FILENAME}", line 3, in <module>'
    assert failure.lineno == 3
