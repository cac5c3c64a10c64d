"""Two tensors of one dtype compared element by element (worker only): exactly, and up to
rounding (ULPs of the dtype), with the largest difference (NaN-aware, integers exact).

The one equality (:mod:`.equality`) calls these for every tensor leaf.
"""

from __future__ import annotations

import math

import torch

#: Floats this many units in the last place apart (or fewer) are equal up to rounding.
ULPS = 4

#: The integer dtype of each float width, to read a float's bits as an ordered integer.
_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def as_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _ordered(bits: torch.Tensor) -> torch.Tensor:
    """A float's bits as an integer that orders as the float does (``-0.0`` and ``0.0`` both 0)."""
    wide = bits.to(torch.int64)
    magnitude = wide & ((1 << (bits.element_size() * 8 - 1)) - 1)
    return torch.where(wide < 0, -magnitude, magnitude)


def _close(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Finite floats at most :data:`ULPS` units in the last place of their dtype apart."""
    bits = _BITS[x.element_size()]
    gap = _ordered(x.contiguous().view(bits)) - _ordered(y.contiguous().view(bits))
    # two finite int64 orders never wrap into [-ULPS, ULPS]: a wrapped gap is below -2**53
    return (gap <= ULPS) & (gap >= -ULPS) & x.isfinite() & y.isfinite()


def elements(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per element: exactly equal, and equal up to rounding (which includes exactly equal)."""
    if x.is_complex():
        parts = elements(torch.view_as_real(x.resolve_conj()), torch.view_as_real(y.resolve_conj()))
        exact, close = (part.all(dim=-1) for part in parts)
        return exact, close
    if not x.is_floating_point():
        exact = x == y
        return exact, exact
    exact = (x == y) | (x.isnan() & y.isnan())
    if bool(exact.all()):
        return exact, exact
    # only elements a few ULP apart can be close: one ULP is at most eps times the value
    # (at most the smallest normal number near zero), so this cheap bound keeps every
    # close pair, with room to spare, and the bit-exact count runs on those alone
    info = torch.finfo(x.dtype)
    gap = (x - y).abs()
    near = ~exact & ((gap <= x.abs().maximum(y.abs()) * (2 * ULPS * info.eps))
                     | (gap <= ULPS * info.smallest_normal))
    close = exact.clone()
    if bool(near.any()):
        close[near] = _close(x[near], y[near])
    return exact, close


def largest_difference(x: torch.Tensor, y: torch.Tensor, among: torch.Tensor | None = None) -> float:
    """The largest absolute difference of the elements ``among`` (all of them by default):
    NaN where one side is NaN, integers without widening or wrapping."""
    if not (x.is_floating_point() or x.is_complex()):
        if among is not None:
            x, y = x[among], y[among]
        if not x.numel():
            return 0.0
        if x.dtype == torch.uint64:  # no int64 holds every uint64: as Python ints
            return as_float(max(abs(int(a) - int(b)) for a, b in zip(x.tolist(), y.tolist(), strict=True)))
        high, low = x.to(torch.int64).maximum(y.to(torch.int64)), x.to(torch.int64).minimum(y.to(torch.int64))
        gap = high - low
        wrapped = gap < 0  # past 2**63: as Python ints
        if bool(wrapped.any()):
            return as_float(max(int(a) - int(b) for a, b in zip(high[wrapped].tolist(), low[wrapped].tolist(),
                                                              strict=True)))
        return float(gap.max())
    # float32 and float64 in their own dtype, as the model computes; narrower ones widened
    # (a float16 difference may overflow)
    own = (torch.float32, torch.float64, torch.complex64, torch.complex128)
    wide = x.dtype if x.dtype in own else (torch.complex128 if x.is_complex() else torch.float64)
    a, b = x.to(wide), y.to(wide)
    one_nan = a.isnan() ^ b.isnan()
    if among is not None:
        one_nan &= among
    if bool(one_nan.any()):
        return math.nan
    gap = (a - b).abs()
    if among is not None:
        gap = gap.masked_fill(~among, 0)  # an infinity equal in both gives NaN here: left out
    return float(gap.max()) if gap.numel() else 0.0
