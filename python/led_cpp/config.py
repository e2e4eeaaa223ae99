"""Decoding configurations: the baseline sampler and Latent Exploration Decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

from . import _core

# The names each option takes, from the native enums (their one table: cpp/bind_choices.h).
DEPTH_RULES: tuple[str, ...] = tuple(_core.DepthRule.__members__)
LAYER_COUNTINGS: tuple[str, ...] = tuple(_core.LayerCounting.__members__)
# Model(led_projection=...): where LED projects the earlier depths through the output head.
LED_PROJECTIONS: tuple[str, ...] = tuple(_core.Projection.__members__)
LED_PROJECTION_HELP = (
    "where LED projects the earlier depths: auto (every_step on a GPU, else on_explore), every_step, on_explore"
)


def choice(option: str, value: Any, kind: type) -> Any:
    """The member of the native enum ``kind`` that ``value`` names. The enum's own constructor is
    the one parser of the name; an unknown name or a value that is not a str raises ValueError
    naming ``option`` and the allowed names (never a silent default)."""
    if not isinstance(value, str):
        raise ValueError(f"{option} must be one of {tuple(kind.__members__)}, not {value!r}")
    return kind(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value}")
    return float(value)


# Below this, 1/T overflows float32 on the way to the softmax; T = 0 is greedy.
MIN_TEMPERATURE = 1e-30


def _temperature(value: Any) -> float:
    temperature = _number("temperature", value)
    if temperature < 0 or 0 < temperature < MIN_TEMPERATURE:
        raise ValueError(f"temperature must be >= 0: 0 (greedy) or at least {MIN_TEMPERATURE:g}, not {value}")
    return temperature


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class SamplingConfig:
    """Standard sampling: temperature, then top-k, top-p and min-p over the top-k candidates.

    The defaults are the LED authors' chain-of-thought baseline (T 0.6, top-p 0.95, top-k 20,
    min-p 0). Every field is validated on construction (TypeError/ValueError naming the field).

    Attributes:
        temperature: >= 0; 0 is greedy decoding.
        top_k: candidates kept after the temperature; 0 keeps the whole vocabulary.
        top_p: nucleus mass kept, in (0, 1].
        min_p: candidates below min_p times the top probability are dropped, in [0, 1].
    """

    temperature: float = 0.6
    top_k: int = 20
    top_p: float = 0.95
    min_p: float = 0.0

    def __post_init__(self) -> None:
        _temperature(self.temperature)
        if _integer("top_k", self.top_k) < 0:
            raise ValueError(f"top_k must be >= 0 (0 = whole vocabulary), not {self.top_k}")
        if not 0 < _number("top_p", self.top_p) <= 1:
            raise ValueError(f"top_p must lie in (0, 1], not {self.top_p}")
        if not 0 <= _number("min_p", self.min_p) <= 1:
            raise ValueError(f"min_p must lie in [0, 1], not {self.min_p}")

    @property
    def greedy(self) -> bool:
        """Whether decoding is greedy (temperature 0)."""
        return self.temperature == 0

    def check_model(self, n_layer: int, n_vocab: int) -> None:
        """Raises ValueError when the config does not fit a model of this shape."""
        if self.top_k > n_vocab:
            raise ValueError(f"top_k={self.top_k} exceeds the model's vocabulary of {n_vocab} tokens")

    def to_native(self, think_start: str = "", think_end: str = "") -> _core.SamplingSpec:
        """The native spec the decode loop takes, with the reasoning markers given (resolved for a
        model by ``Model.native_config``)."""
        return _core.SamplingSpec(
            led=False,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            min_p=self.min_p,
            think_start=think_start,
            think_end=think_end,
        )


@dataclass(frozen=True)
class LEDConfig:
    """Latent Exploration Decoding (LED_SPEC.md) with the authors' defaults.

    Every field is validated on construction (TypeError/ValueError naming the field); ``d`` and
    ``k`` are also checked against the model when a generation starts.

    Attributes:
        temperature: >= 0; 0 is deterministic (greedy everywhere; see the README).
        d: depths read, the final layer included (1..n_layer).
        k: candidates taken from the final layer (1..n_vocab).
        ln: apply the final norm to the earlier depths' states.
        exploit: gate exploration with probability 1 - p_top1 (False: explore every step).
        think_only: explore only inside the reasoning segment.
        think_end: the segment's end marker; None follows the model's own
            (``Model.reasoning_markers``).
        depth_rule: how an explored step picks its depth: "max_entropy" (the paper's rule),
            "random" or "fixed" (with ``fixed_depth``), the referee's ablations.
        fixed_depth: the depth of depth_rule "fixed", in [0, d); None otherwise.
        layer_counting: "paper" (LED_SPEC) or "reference" (the layer set of the authors' code).
    """

    temperature: float = 0.6
    d: int = 8
    k: int = 8
    ln: bool = False
    exploit: bool = True
    think_only: bool = True
    think_end: str | None = None
    depth_rule: str = "max_entropy"
    fixed_depth: int | None = None
    layer_counting: str = "paper"

    def __post_init__(self) -> None:
        _temperature(self.temperature)
        if _integer("d", self.d) < 1:
            raise ValueError(f"d must be >= 1, not {self.d}")
        if _integer("k", self.k) < 1:
            raise ValueError(f"k must be >= 1, not {self.k}")
        _boolean("ln", self.ln)
        _boolean("exploit", self.exploit)
        _boolean("think_only", self.think_only)
        if self.think_end is not None:
            if not isinstance(self.think_end, str):
                raise TypeError(f"think_end must be a str or None, not {type(self.think_end).__name__}")
            if not self.think_end:
                raise ValueError(
                    "think_end must not be empty; give the end-of-think marker, or None for the model's own"
                )
        choice("depth_rule", self.depth_rule, _core.DepthRule)
        choice("layer_counting", self.layer_counting, _core.LayerCounting)
        if self.depth_rule == "fixed":
            if self.fixed_depth is None:
                raise ValueError("fixed_depth is required when depth_rule is 'fixed'")
            if not 0 <= _integer("fixed_depth", self.fixed_depth) < self.d:
                raise ValueError(f"fixed_depth must lie in [0, d={self.d}), not {self.fixed_depth}")
        elif self.fixed_depth is not None:
            raise ValueError(f"fixed_depth is only used with depth_rule='fixed', not {self.depth_rule!r}")

    @property
    def greedy(self) -> bool:
        """Whether decoding is deterministic (temperature 0)."""
        return self.temperature == 0

    def check_model(self, n_layer: int, n_vocab: int) -> None:
        """Raises ValueError when the config does not fit a model of this shape."""
        if self.d > n_layer:
            raise ValueError(f"d={self.d} exceeds the model's {n_layer} layers")
        if self.k > n_vocab:
            raise ValueError(f"k={self.k} exceeds the model's vocabulary of {n_vocab} tokens")

    def to_native(self, think_start: str = "", think_end: str = "") -> _core.SamplingSpec:
        """The native spec the decode loop takes, with the reasoning markers given (resolved for a
        model, ``think_end`` included, by ``Model.native_config``)."""
        return _core.SamplingSpec(
            led=True,
            temperature=self.temperature,
            d=self.d,
            k=self.k,
            ln=self.ln,
            exploit=self.exploit,
            think_only=self.think_only,
            depth_rule=choice("depth_rule", self.depth_rule, _core.DepthRule),
            fixed_depth=self.fixed_depth or 0,
            layer_counting=choice("layer_counting", self.layer_counting, _core.LayerCounting),
            think_start=think_start,
            think_end=think_end,
        )


DecodingConfig = Union[SamplingConfig, LEDConfig]
"""Either decoding config; ``Model.generate*`` take one (None: ``SamplingConfig()``)."""
