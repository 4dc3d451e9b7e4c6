"""Weight initializers: torch.nn.init's, by the same names and arguments, as resolved ``Init`` distributions.

An initializer is resolved against the weight it fills, in the canonical (torch)
layout, once, when the graph is built: ``kaiming_normal`` on a conv2d weight
[64, 3, 7, 7] with ``mode: fan_out`` becomes ``Normal(std=√2/√(64·49))``. Sampling
stays in ``backends/weights.py`` (numpy, from the seed), so both targets start from
the same weights and an initializer is written once for both.

Fans are torch's ``_calculate_fan_in_and_fan_out`` on the shape as stored: dim 1
times the receptive field is fan_in, dim 0 times it fan_out. For conv_transpose2d's
weight [in, out/groups, kH, kW] that makes fan_in out/groups·kH·kW, as in torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from pydantic import model_validator

from .ops import Constant, Init, Normal, Orthogonal, TruncNormal, Uniform
from .types import Float, NonNegativeFloat, Params, PositiveFloat

Nonlinearity = Literal["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                       "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]
Shape = tuple[int, ...]


class NoArgs(Params):
    pass


class ConstantArgs(Params):
    value: Float


class NormalArgs(Params):
    mean: Float = 0.0
    std: NonNegativeFloat = 1.0


class UniformArgs(Params):
    """torch.nn.init.uniform_'s U(a, b)."""

    a: Float = 0.0
    b: Float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> UniformArgs:
        if self.a > self.b:
            raise ValueError(f"needs a <= b, got a={self.a}, b={self.b}")
        return self


class TruncNormalArgs(Params):
    """N(mean, std²) cut to [a, b]; a and b are values, not multiples of std (torch's, not Keras's)."""

    mean: Float = 0.0
    std: PositiveFloat = 1.0
    a: Float = -2.0
    b: Float = 2.0

    @model_validator(mode="after")
    def _mass(self) -> TruncNormalArgs:
        mass = _phi((self.b - self.mean) / self.std) - _phi((self.a - self.mean) / self.std)
        if not mass >= 0.01:  # redrawing until a value lands would take 100 draws per value or more
            raise ValueError(f"[a, b] = [{self.a}, {self.b}] holds {mass:.2g} of N({self.mean}, {self.std}²); "
                             "put a < mean < b")
        return self


class GainArgs(Params):
    gain: Float = 1.0


class KaimingArgs(Params):
    """``a``: leaky_relu's negative slope (used only with ``nonlinearity: leaky_relu``)."""

    a: Float = 0.0
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    nonlinearity: Nonlinearity = "leaky_relu"


@dataclass(frozen=True)
class InitializerDef:
    """An initializer: its arguments and ``resolve(args, shape) -> Init``; ``fans``: it needs 2+ dims."""

    params: type[Params]
    resolve: Callable[[Params, Shape], Init]
    doc: str
    fans: bool = False


def fan_in_and_fan_out(shape: Shape) -> tuple[int, int]:
    """torch.nn.init._calculate_fan_in_and_fan_out: (dim 1, dim 0), each times the product of dims 2+."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, slope: float) -> float:
    """torch.nn.init.calculate_gain."""
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + slope**2))
    return 0.75 if nonlinearity == "selu" else 1.0


def _kaiming_std(p: KaimingArgs, shape: Shape) -> float:
    fan_in, fan_out = fan_in_and_fan_out(shape)
    fan = fan_in if p.mode == "fan_in" else fan_out
    return calculate_gain(p.nonlinearity, p.a) / math.sqrt(fan) if fan else 0.0


def _xavier_std(p: GainArgs, shape: Shape) -> float:
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return p.gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


INITIALIZERS = MappingProxyType({
    "zeros": InitializerDef(NoArgs, lambda p, s: Constant(0.0), "0 everywhere"),
    "ones": InitializerDef(NoArgs, lambda p, s: Constant(1.0), "1 everywhere"),
    "constant": InitializerDef(ConstantArgs, lambda p, s: Constant(p.value), "value everywhere"),
    "normal": InitializerDef(NormalArgs, lambda p, s: Normal(p.std, p.mean), "N(mean, std²); mean 0, std 1"),
    "uniform": InitializerDef(UniformArgs, lambda p, s: Uniform(p.a, p.b), "U(a, b); a 0, b 1"),
    "trunc_normal": InitializerDef(TruncNormalArgs, lambda p, s: TruncNormal(p.mean, p.std, p.a, p.b),
                                   "N(mean, std²) redrawn outside [a, b]; 0, 1, -2, 2"),
    "xavier_uniform": InitializerDef(GainArgs, lambda p, s: Uniform.symmetric(math.sqrt(3) * _xavier_std(p, s)),
                                     "U(±gain·√(6/(fan_in+fan_out)))", fans=True),
    "xavier_normal": InitializerDef(GainArgs, lambda p, s: Normal(_xavier_std(p, s)),
                                    "N(0, gain²·2/(fan_in+fan_out))", fans=True),
    "kaiming_uniform": InitializerDef(KaimingArgs, lambda p, s: Uniform.symmetric(math.sqrt(3) * _kaiming_std(p, s)),
                                      "U(±gain·√(3/fan)); a 0, mode fan_in, nonlinearity leaky_relu", fans=True),
    "kaiming_normal": InitializerDef(KaimingArgs, lambda p, s: Normal(_kaiming_std(p, s)),
                                     "N(0, gain²/fan); a 0, mode fan_in, nonlinearity leaky_relu", fans=True),
    "orthogonal": InitializerDef(GainArgs, lambda p, s: Orthogonal(p.gain),
                                 "a (semi-)orthogonal matrix over dim 0 and the rest, times gain", fans=True),
})
"""Initializer name -> its definition; the names and arguments are torch.nn.init's (without the trailing _)."""


@dataclass(frozen=True)
class InitSpec:
    """An initializer as written: its name and validated arguments."""

    name: str
    params: Params

    def resolve(self, shape: Shape) -> Init:
        """The distribution for a weight of ``shape``; raises ``ValueError`` where torch would."""
        definition = INITIALIZERS[self.name]
        if definition.fans and len(shape) < 2:
            raise ValueError(f"{self.name} computes fan_in and fan_out, which need a weight of 2 or more dims "
                             f"(torch's rule); this one has shape {list(shape)}")
        return definition.resolve(self.params, shape)
