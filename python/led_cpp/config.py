"""Decoding configurations: the baseline sampler and Latent Exploration Decoding."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

DEPTH_RULES = ("max_entropy", "random", "fixed")
LAYER_COUNTINGS = ("paper", "reference")
# Model(led_projection=...): where LED projects the earlier depths through the output head.
LED_PROJECTIONS = ("auto", "every_step", "on_explore")
LED_PROJECTION_HELP = ("where LED projects the earlier depths: auto (every_step on a GPU, else on_explore), "
                       "every_step, on_explore")


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

    temperature 0 means greedy decoding. top_k 0 keeps the whole vocabulary. The defaults are
    the LED authors' chain-of-thought baseline (T 0.6, top-p 0.95, top-k 20, min-p 0).
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
        return self.temperature == 0

    def check_model(self, n_layer: int, n_vocab: int) -> None:
        if self.top_k > n_vocab:
            raise ValueError(f"top_k={self.top_k} exceeds the model's vocabulary of {n_vocab} tokens")

    def to_native(self) -> dict:
        return {"led": False, **asdict(self)}


@dataclass(frozen=True)
class LEDConfig:
    """Latent Exploration Decoding (LED_SPEC.md) with the authors' defaults.

    d depths are read (the final layer included), k candidates come from the final layer;
    ln applies the final norm to intermediate states; exploit gates exploration with
    probability 1 - p_top1; think_only explores only inside the reasoning segment, which ends
    at ``think_end`` (None: the model's own end marker, ``Model.reasoning_markers``). depth_rule
    "random" and "fixed" (with fixed_depth) answer the referee's ablation; layer_counting
    "reference" reproduces the authors' code's layer set.
    """

    temperature: float = 0.6
    d: int = 8
    k: int = 8
    ln: bool = False
    exploit: bool = True
    think_only: bool = True
    think_end: Optional[str] = None
    depth_rule: str = "max_entropy"
    fixed_depth: Optional[int] = None
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
                raise ValueError("think_end must not be empty; give the end-of-think marker, or None for the model's own")
        if self.depth_rule not in DEPTH_RULES:
            raise ValueError(f"depth_rule must be one of {DEPTH_RULES}, not {self.depth_rule!r}")
        if self.layer_counting not in LAYER_COUNTINGS:
            raise ValueError(f"layer_counting must be one of {LAYER_COUNTINGS}, not {self.layer_counting!r}")
        if self.depth_rule == "fixed":
            if self.fixed_depth is None:
                raise ValueError("fixed_depth is required when depth_rule is 'fixed'")
            if not 0 <= _integer("fixed_depth", self.fixed_depth) < self.d:
                raise ValueError(f"fixed_depth must lie in [0, d={self.d}), not {self.fixed_depth}")
        elif self.fixed_depth is not None:
            raise ValueError(f"fixed_depth is only used with depth_rule='fixed', not {self.depth_rule!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def check_model(self, n_layer: int, n_vocab: int) -> None:
        if self.d > n_layer:
            raise ValueError(f"d={self.d} exceeds the model's {n_layer} layers")
        if self.k > n_vocab:
            raise ValueError(f"k={self.k} exceeds the model's vocabulary of {n_vocab} tokens")

    def to_native(self) -> dict:
        values = asdict(self)
        values["fixed_depth"] = self.fixed_depth or 0
        return {"led": True, **values}


DecodingConfig = Union[SamplingConfig, LEDConfig]
