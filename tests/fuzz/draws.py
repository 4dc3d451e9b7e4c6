"""Drawing one of several options evenly, whatever hypothesis favours."""

from __future__ import annotations

from hypothesis import strategies as st


def pick(draw, options):
    """One of ``options``, about evenly. Hypothesis draws small integers (0 above all) far more often than
    others, so ``st.sampled_from`` and a plain index favour the first options (in 300 specs: add 124 times,
    conv2d twice); a multiplicative hash of the drawn integer spreads those over all of them."""
    options = list(options)
    return options[(draw(st.integers(0, 2**32 - 1)) * 2654435761 + 40503) % 2**32 * len(options) >> 32]


def likely(draw, chance: int = 3) -> bool:
    """True with probability chance/(chance+1)."""
    return draw(st.integers(0, chance)) > 0
