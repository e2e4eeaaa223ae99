"""What a generation returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple


@dataclass(frozen=True)
class Timings:
    prompt_tokens: int
    prompt_seconds: float
    decode_tokens: int
    decode_seconds: float

    @property
    def prompt_tokens_per_second(self) -> float:
        return self.prompt_tokens / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        return self.decode_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0


@dataclass(frozen=True)
class TraceStep:
    """One decided step under trace=True: each generated token, then (finish_reason "eos") the
    step that chose the end of generation, which is not in `tokens`."""

    explored: bool
    depth: int                      # depth whose posterior chose the token (0 = final layer)
    entropies: Tuple[float, ...]    # the d entropies H_j; empty when the depths were not evaluated
    top1_probability: float         # final layer's q[0]
    candidates: Tuple[int, ...]     # the k candidate ids, descending probability
    # With layer_analysis > 0 (standard sampling): per layer, the final layer first
    layer_entropies: Tuple[float, ...] = ()         # normalised entropy, final norm applied, T = 1
    layer_top_normalised: Tuple[Tuple[int, ...], ...] = ()  # top ids per layer by logit, final norm applied
    layer_top_raw: Tuple[Tuple[int, ...], ...] = ()         # top ids per layer, without the final norm
    token: int = -1                 # the token this step chose


def _layer_fields(item: dict) -> dict:
    if "layer_entropies" not in item:
        return {}
    entropies = tuple(item["layer_entropies"])
    n_layer = len(entropies)
    width = len(item["layer_top_normalised"]) // max(n_layer, 1)

    def rows(values: list) -> Tuple[Tuple[int, ...], ...]:
        return tuple(tuple(values[i * width:(i + 1) * width]) for i in range(n_layer))

    return {"layer_entropies": entropies, "layer_top_normalised": rows(item["layer_top_normalised"]),
            "layer_top_raw": rows(item["layer_top_raw"])}


@dataclass(frozen=True)
class GenerationResult:
    tokens: List[int]
    text: str
    finish_reason: str              # "length", "eos" or "stop"
    logprobs: List[float]           # final layer's log-probability of each token at the sampling temperature
    timings: Timings
    trace: Optional[List[TraceStep]] = None
    explored_steps: int = 0
    reasoning_tokens: int = 0       # tokens generated inside the reasoning segment (any config)
    seed: int = 0
    extra: dict = field(default_factory=dict, repr=False)
    # log-probability of each token under the distribution it was drawn from: the exploit path's
    # renormalised top-k, LED's posterior at the chosen depth, or SamplingConfig's kept candidates
    # after temperature, top-k, top-p and min-p (0 for greedy steps)
    sampling_logprobs: List[float] = field(default_factory=list)
    reasoning: str = ""             # the reasoning segment's text, markers removed
    answer: str = ""                # what follows the segment (the whole text when there is none)
    # the (start, end) markers followed; None: the model has none, so LED explored on every step
    reasoning_markers: Optional[Tuple[str, str]] = None
    starts_in_reasoning: bool = False  # the prompt left the segment open at the first token

    @property
    def decided_steps(self) -> int:
        """Generated tokens plus the step that chose the end of generation, if one did."""
        return len(self.tokens) + (self.finish_reason == "eos")

    @property
    def explore_rate(self) -> float:
        """Explored steps per decided step (an explored step that chose the end counts)."""
        return self.explored_steps / self.decided_steps if self.decided_steps else 0.0

    @classmethod
    def from_native(cls, native: dict, trace: bool,
                    markers: Optional[Tuple[str, str]] = None) -> "GenerationResult":
        steps = None
        if trace:
            steps = [
                TraceStep(
                    explored=item["explored"],
                    depth=item["depth"],
                    entropies=tuple(item["entropies"]),
                    top1_probability=item["top1_probability"],
                    candidates=tuple(item["candidates"]),
                    token=item["token"],
                    **_layer_fields(item),
                )
                for item in native["trace"]
            ]
        return cls(
            tokens=list(native["tokens"]),
            text=native["text"],
            finish_reason=native["finish_reason"],
            logprobs=list(native["logprobs"]),
            timings=Timings(**native["timings"]),
            trace=steps,
            explored_steps=native["explored_steps"],
            reasoning_tokens=native["reasoning_tokens"],
            seed=native["seed"],
            sampling_logprobs=list(native["sampling_logprobs"]),
            reasoning=native["reasoning"].strip(),
            # after a segment, the whitespace a template writes behind the end marker is not answer
            answer=native["answer"].lstrip() if native["starts_in_reasoning"] else native["answer"],
            reasoning_markers=markers,
            starts_in_reasoning=native["starts_in_reasoning"],
        )
