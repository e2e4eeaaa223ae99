"""What a generation returns: thin frozen wrappers over the native results (``_core.SampleResult``,
``_core.TraceStep``, ``_core.Timings``, ``_core.RunStats``), built from their typed attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _core


@dataclass(frozen=True)
class Timings:
    """Token counts and wall-clock seconds of one sample.

    Attributes:
        prompt_tokens: tokens in the prompt.
        prompt_seconds: seconds spent prefilling the prompt (shared by the prompt's samples).
        decode_tokens: tokens generated.
        decode_seconds: seconds from the sample's first decode step to its end.
    """

    prompt_tokens: int
    prompt_seconds: float
    decode_tokens: int
    decode_seconds: float

    @property
    def prompt_tokens_per_second(self) -> float:
        """Prompt tokens per second of prefill (0 when no time was measured)."""
        return self.prompt_tokens / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        """Generated tokens per second of decoding (0 when no time was measured)."""
        return self.decode_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0

    @classmethod
    def from_native(cls, native: _core.Timings) -> Timings:
        """The Timings of a native ``_core.Timings``."""
        return cls(
            prompt_tokens=native.prompt_tokens,
            prompt_seconds=native.prompt_seconds,
            decode_tokens=native.decode_tokens,
            decode_seconds=native.decode_seconds,
        )


@dataclass(frozen=True)
class TraceStep:
    """One decided step under trace=True: each generated token, then (finish_reason "eos") the
    step that chose the end of generation, which is not in ``tokens``.

    Attributes:
        explored: whether LED explored (chose from an earlier depth's posterior).
        depth: the depth whose posterior chose the token (0: the final layer).
        entropies: the d entropies H_j; empty when the depths were not evaluated.
        top1_probability: the final layer's q[0].
        candidates: the k candidate ids, by descending probability.
        layer_entropies: with layer_analysis > 0 (standard sampling), per layer, the final layer
            first: the normalised entropy, final norm applied, T = 1.
        layer_top_normalised: per layer, the top ids by logit, final norm applied.
        layer_top_raw: per layer, the top ids by logit, without the final norm.
        token: the token this step chose.
    """

    explored: bool
    depth: int
    entropies: tuple[float, ...]
    top1_probability: float
    candidates: tuple[int, ...]
    layer_entropies: tuple[float, ...] = ()
    layer_top_normalised: tuple[tuple[int, ...], ...] = ()
    layer_top_raw: tuple[tuple[int, ...], ...] = ()
    token: int = -1

    @classmethod
    def from_native(cls, native: _core.TraceStep) -> TraceStep:
        """The TraceStep of a native ``_core.TraceStep`` (its flat per-layer ids cut into rows)."""
        entropies = tuple(native.layer_entropies)
        n_layer = len(entropies)
        normalised, raw = native.layer_top_normalised, native.layer_top_raw
        width = len(normalised) // max(n_layer, 1)

        def rows(values: list[int]) -> tuple[tuple[int, ...], ...]:
            return tuple(tuple(values[i * width : (i + 1) * width]) for i in range(n_layer))

        return cls(
            explored=native.explored,
            depth=native.depth,
            entropies=tuple(native.entropies),
            top1_probability=native.top1_probability,
            candidates=tuple(native.candidates),
            layer_entropies=entropies,
            layer_top_normalised=rows(normalised),
            layer_top_raw=rows(raw),
            token=native.token,
        )


@dataclass(frozen=True)
class GenerationResult:
    """One finished sample.

    Attributes:
        tokens: the generated token ids.
        text: their text (whole UTF-8 characters; stop strings and the end token excluded).
        finish_reason: "length", "eos" or "stop" ("cancelled" for a request the server cancelled).
        logprobs: the final layer's log-probability of each token at the sampling temperature.
        timings: the sample's ``Timings``.
        trace: a ``TraceStep`` per decided step with trace=True, else None.
        explored_steps: decided steps on which LED explored.
        reasoning_tokens: tokens generated inside the reasoning segment, the end marker included
            (any config).
        seed: the run's seed.
        extra: free for callers' annotations; not filled by led_cpp.
        sampling_logprobs: each token's log-probability under the distribution it was drawn from:
            the exploit path's renormalised top-k, LED's posterior at the chosen depth, or
            SamplingConfig's kept candidates after temperature, top-k, top-p and min-p (0 for
            greedy steps). Beside ``logprobs`` they are an RL trainer's importance weights.
        reasoning: the reasoning segment's text, markers and surrounding whitespace removed.
        answer: what follows the segment (the whole text when there was none; "" while the
            segment is unfinished).
        reasoning_markers: the (start, end) markers followed; None: the model has none, so LED
            explored on every step.
        starts_in_reasoning: the prompt left the segment open at the first generated token.
    """

    tokens: list[int]
    text: str
    finish_reason: str
    logprobs: list[float]
    timings: Timings
    trace: list[TraceStep] | None = None
    explored_steps: int = 0
    reasoning_tokens: int = 0
    seed: int = 0
    extra: dict = field(default_factory=dict, repr=False)
    sampling_logprobs: list[float] = field(default_factory=list)
    reasoning: str = ""
    answer: str = ""
    reasoning_markers: tuple[str, str] | None = None
    starts_in_reasoning: bool = False

    @property
    def decided_steps(self) -> int:
        """Generated tokens plus the step that chose the end of generation, if one did."""
        return len(self.tokens) + (self.finish_reason == "eos")

    @property
    def explore_rate(self) -> float:
        """Explored steps per decided step (an explored step that chose the end counts)."""
        return self.explored_steps / self.decided_steps if self.decided_steps else 0.0

    @classmethod
    def from_native(
        cls, native: _core.SampleResult, trace: bool, markers: tuple[str, str] | None = None
    ) -> GenerationResult:
        """The GenerationResult of a native ``_core.SampleResult``; ``trace`` keeps its steps,
        ``markers`` are the reasoning markers the run followed."""
        return cls(
            tokens=list(native.tokens),
            text=native.text,
            finish_reason=native.finish_reason,
            logprobs=list(native.logprobs),
            timings=Timings.from_native(native.timings),
            trace=[TraceStep.from_native(step) for step in native.trace] if trace else None,
            explored_steps=native.explored_steps,
            reasoning_tokens=native.reasoning_tokens,
            seed=native.seed,
            sampling_logprobs=list(native.sampling_logprobs),
            reasoning=native.reasoning.strip(),
            # after a segment, the whitespace a template writes behind the end marker is not answer
            answer=native.answer.lstrip() if native.starts_in_reasoning else native.answer,
            reasoning_markers=markers,
            starts_in_reasoning=native.starts_in_reasoning,
        )


def run_stats(native: _core.RunStats) -> dict[str, Any]:
    """The counts of a native ``_core.RunStats`` as the dict ``Generation.stats`` and
    ``BatchStream.stats`` give: every field by name (prompt_tokens_evaluated, decided_steps, ...)."""
    kind = type(native)
    return {name: getattr(native, name) for name, member in vars(kind).items() if isinstance(member, property)}
