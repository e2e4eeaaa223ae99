"""A run's batches: which problems share a ``generate_batch`` call, with which seed, and the
records each batch produces wherever it runs (:class:`LocalRunner` here, ``RayBackend`` on a
cluster).

A problem's n samples run together with the seed ``problem_seed(seed, problem.index)``, so a
problem gets the same seed whatever ``limit`` is, whichever config runs it, and whether or not
the run was resumed. Greedy configs (temperature 0) need no seed, so they batch up to
``GREEDY_BATCH // n`` problems per call, in fixed batches of the selected problems, so a batch
holds the same problems in every run, shard or worker.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .answers import extract_answer, result_answer_region
from .checker import AnswerChecker
from .config_spec import is_greedy
from .problems import Problem
from .prompts import build_prompt

#: Greedy configs batch up to this many samples (problems x n) per generate_batch call.
GREEDY_BATCH = 16


def problem_seed(base_seed: int, problem_index: int) -> int:
    """The seed of every sample of one problem: stable across runs, limits,
    configs and Python versions (31 bits)."""
    digest = hashlib.sha256(f"led_cpp-eval:{int(base_seed)}:{int(problem_index)}".encode())
    return int.from_bytes(digest.digest()[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class EvalJob:
    """What every batch of one run is generated and checked with (sent to workers)."""

    n: int
    config: Any  # a led_cpp.SamplingConfig or LEDConfig
    max_tokens: int
    seed: int
    chat: bool
    think_end: str
    number_fallback: bool
    verify_timeout: float = 5.0
    n_parallel: int | None = None
    chat_template_kwargs: dict | None = None


def plan_chunks(problems: Sequence[Problem], n: int, config: Any) -> list[list[Problem]]:
    """The run's batches, one ``generate_batch`` call each: one problem per batch, or
    for greedy configs ``GREEDY_BATCH // n`` consecutive problems, cut at fixed
    positions of ``problems`` so that a batch is the same whoever runs it."""
    per_call = max(1, GREEDY_BATCH // n) if is_greedy(config) else 1
    return [list(problems[i : i + per_call]) for i in range(0, len(problems), per_call)]


def make_record(
    problem: Problem,
    sample: int,
    result: Any,
    *,
    seed: int,
    wall_share: float,
    think_end: str,
    number_fallback: bool,
    checker: AnswerChecker,
) -> dict:
    """One sample's line of samples.jsonl: its answers (strict, flexible), whether they are
    correct, its token counts and exploration."""
    region = result_answer_region(result, think_end)
    answer = extract_answer(region, think_end="")
    correct, note = checker.check(answer, problem.answer)
    flexible_answer, flexible_correct, flexible_note = answer, correct, None
    if number_fallback and answer is None:
        flexible_answer = extract_answer(region, think_end="", number_fallback=True)
        flexible_correct, flexible_note = checker.check(flexible_answer, problem.answer)
    generated = len(result.tokens)
    decided = generated + (result.finish_reason == "eos")
    explored = int(getattr(result, "explored_steps", 0) or 0)
    timings = getattr(result, "timings", None)
    rec = {
        "problem_id": problem.id,
        "problem_index": problem.index,
        "sample": sample,
        "seed": seed,
        "answer": answer,
        "gold": problem.answer,
        "correct": bool(correct),
        "flexible_answer": flexible_answer,
        "flexible_correct": bool(flexible_correct),
        "finish_reason": result.finish_reason,
        "finished": result.finish_reason != "length",
        "generated_tokens": generated,
        "reasoning_tokens": int(getattr(result, "reasoning_tokens", 0) or 0),
        # per decided step, as GenerationResult.explore_rate: the step that chose EOS counts
        "explored_steps": explored,
        "explore_rate": explored / decided if decided else 0.0,
        "prompt_tokens": getattr(timings, "prompt_tokens", None),
        "wall_seconds": wall_share,
        "text": result.text,
    }
    if note:
        rec["verify_note"] = note
    if flexible_note:
        rec["flexible_verify_note"] = flexible_note
    return rec


def run_chunk(model: Any, chunk: Sequence[Problem], job: EvalJob, checker: AnswerChecker) -> list[dict]:
    """The records of one batch: its problems' n samples in one ``generate_batch``
    call with the seed of its first problem, each answer extracted and checked."""
    call_seed = problem_seed(job.seed, chunk[0].index)
    extra = {} if job.n_parallel is None else {"n_parallel": job.n_parallel}
    if job.chat_template_kwargs:
        extra["chat_template_kwargs"] = job.chat_template_kwargs
    t0 = time.perf_counter()
    results = model.generate_batch(
        [build_prompt(p.question, job.chat) for p in chunk],
        n=job.n,
        config=job.config,
        max_tokens=job.max_tokens,
        seed=call_seed,
        progress=False,
        **extra,
    )
    wall = time.perf_counter() - t0
    if len(results) != len(chunk) or any(len(r) != job.n for r in results):
        raise RuntimeError("generate_batch returned the wrong number of results")
    return [
        make_record(
            p,
            s,
            r,
            seed=call_seed,
            wall_share=wall / (len(chunk) * job.n),
            think_end=job.think_end,
            number_fallback=job.number_fallback,
            checker=checker,
        )
        for p, outs in zip(chunk, results)
        for s, r in enumerate(outs)
    ]


@runtime_checkable
class ChunkRunner(Protocol):
    """Runs batches of problems somewhere; ``evaluate`` accepts one in place of a model."""

    def run_chunks(self, chunks: Sequence[Sequence[Problem]], job: EvalJob) -> Iterator[list[dict]]:
        """Yields each batch's records (from :func:`run_chunk`) as the batch finishes,
        in any order."""
        ...

    def shape(self) -> dict:
        """Where problems run (runner, workers, devices): what summary.json keeps."""
        ...

    def report(self) -> dict:
        """The last run_chunks call: its shape plus workers' throughput and retries
        (one line of runs.jsonl)."""
        ...


class LocalRunner:
    """One model in this process, batches in order."""

    def __init__(self, model: Any):
        self.model = model
        self._tokens, self._seconds = 0, 0.0

    def run_chunks(self, chunks: Sequence[Sequence[Problem]], job: EvalJob) -> Iterator[list[dict]]:
        self._tokens, self._seconds = 0, 0.0
        with AnswerChecker(job.verify_timeout) as checker:
            for chunk in chunks:
                t0 = time.perf_counter()
                recs = run_chunk(self.model, chunk, job, checker)
                self._seconds += time.perf_counter() - t0
                self._tokens += sum(r["generated_tokens"] for r in recs)
                yield recs

    def shape(self) -> dict:
        return {"runner": "local", "workers": 1, "threads": getattr(self.model, "n_threads", None)}

    def report(self) -> dict:
        return {
            **self.shape(),
            "model_path": str(getattr(self.model, "path", "") or ""),
            "generated_tokens": self._tokens,
            "wall_seconds": self._seconds,
            "tokens_per_second": self._tokens / self._seconds if self._seconds else 0.0,
        }
