"""Runs: ``evaluate`` one config (resumable, sharded or not, here or on a cluster) and ``compare``
several on the same problems and seeds.

``evaluate`` writes to ``out_dir``: ``meta.json`` (the run's identity), ``samples.jsonl`` (one
record per sample) and ``summary.json``; rerunning with the same ``out_dir`` skips every problem
that has all n records. It hands its pending batches to a :class:`~.batches.ChunkRunner`:
:class:`~.batches.LocalRunner` (one model in this process, the default) or
:class:`~.ray.RayBackend` (a pool of Ray workers, one model each); ``summary.json`` keeps the
run's shape (runner, workers, devices) in its ``run`` field, apart from the records, and
``runs.jsonl`` gets one line per session that generated. ``shard=`` runs one share of the
batches (:mod:`.shards`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..chat import check_template_kwargs
from .answers import DEFAULT_THINK_END, NUMBER_FALLBACK_DATASETS, model_end_marker
from .batches import ChunkRunner, EvalJob, LocalRunner, plan_chunks
from .config_spec import ConfigSpec, parse_config_spec, resolve_config
from .problems import Dataset, Problem, select_problems
from .prompts import INSTRUCTION, uses_chat_template
from .run_dir import (
    COMPARE_FILE,
    META_FILE,
    RUNS_FILE,
    SAMPLES_FILE,
    SUMMARY_FILE,
    append_records,
    check_out_dir,
    load_records,
    run_identity,
    write_json_atomic,
)
from .shards import Shard, apply_shard
from .summary import EvalSummary, summarize


def model_name_of(model: Any) -> str:
    """The model's identity in a run: the basename of its path (or its type's name)."""
    for attr in ("path", "model_path"):
        value = getattr(model, attr, None)
        if value:
            return os.path.basename(str(value))
    return type(model).__name__


@dataclass(frozen=True)
class RunPlan:
    """What a run asks for: its config, identity and batches (a shard's share of them)."""

    label: str
    config: Any  # a SamplingConfig or LEDConfig
    problems: list[Problem]  # the problems this run (or shard) generates
    chunks: list[list[Problem]]
    identity: dict
    shard_meta: dict  # what meta.json records about the shard ({} when unsharded)
    chat_template_kwargs: dict


def plan_run(
    dataset: Dataset,
    config: str | ConfigSpec | Any,
    *,
    model_name: str,
    n: int,
    limit: int | None,
    seed: int,
    max_tokens: int,
    think_end: str | None = None,
    chat_template_kwargs: dict | None = None,
    shard: Shard | str | None = None,
) -> RunPlan:
    """The run ``evaluate`` would make, without a model: raises ValueError (or
    FileNotFoundError) for a bad n, dataset, limit, config, template variables or shard."""
    if n < 1:
        raise ValueError("n must be at least 1")
    all_problems, problems = select_problems(dataset, limit)
    label, cfg = resolve_config(config)
    chat_template_kwargs = check_template_kwargs(chat_template_kwargs)
    identity = run_identity(
        model=model_name,
        problems=all_problems,
        config=cfg,
        n=n,
        seed=seed,
        max_tokens=max_tokens,
        # the run's identity: "</think>" stands for the default
        think_end=think_end or getattr(cfg, "think_end", None) or DEFAULT_THINK_END,
        chat_template_kwargs=chat_template_kwargs,
    )
    chunks = plan_chunks(problems, n, cfg)
    shard_meta: dict = {}
    if shard is not None:
        chunks, identity, shard_meta = apply_shard(shard, chunks, identity)
        problems = [p for chunk in chunks for p in chunk]
    return RunPlan(label, cfg, problems, chunks, identity, shard_meta, chat_template_kwargs)


def check_run(out_dir: str | os.PathLike, dataset: Dataset, config: str | ConfigSpec | Any, **plan: Any) -> RunPlan:
    """What ``evaluate`` checks before it generates, for use before a model is loaded:
    :func:`plan_run` (same keyword arguments), then RunMismatchError if ``out_dir`` holds
    another run."""
    planned = plan_run(dataset, config, **plan)
    check_out_dir(out_dir, planned.identity)
    return planned


def evaluate(
    model: Any,
    dataset: Dataset,
    config: str | ConfigSpec | Any = "led",
    *,
    n: int = 16,
    limit: int | None = None,
    max_tokens: int = 2048,
    seed: int = 0,
    out_dir: str | os.PathLike,
    progress: bool = True,
    think_end: str | None = None,
    model_name: str | None = None,
    verify_timeout: float = 5.0,
    n_parallel: int | None = None,
    chat_template_kwargs: dict | None = None,
    shard: Shard | str | None = None,
) -> EvalSummary:
    """Run (or resume) one config on the first ``limit`` problems of ``dataset``,
    ``n`` samples each; see the package docstring for the protocol and the files.

    ``model``: a ``led_cpp.Model`` (or anything with its ``generate_batch``), or a
    :class:`~.batches.ChunkRunner` such as :class:`~.ray.RayBackend`.  ``shard``: a
    :class:`~.shards.Shard` or its text ``"K/N"``: run only the K-th of N
    shares of the batches (merge the shards' out_dirs with ``merge_runs``).

    ``config``: a spec text (``"led:d=4"``), a :class:`~.config_spec.ConfigSpec` or a
    ``led_cpp.SamplingConfig`` / ``led_cpp.LEDConfig``.  ``think_end``: the
    marker that starts the answer region (default: the config's ``think_end``,
    else the model's end marker, else ``</think>``).  ``model_name``: the model's identity in the run
    (default: the basename of ``model.path``).  ``chat_template_kwargs``: the
    chat template's variables (e.g. ``{"enable_thinking": False}``) for every prompt.
    """
    model_name = model_name or model_name_of(model)
    plan = plan_run(
        dataset,
        config,
        model_name=model_name,
        n=n,
        limit=limit,
        seed=seed,
        max_tokens=max_tokens,
        think_end=think_end,
        chat_template_kwargs=chat_template_kwargs,
        shard=shard,
    )
    explicit = think_end or getattr(plan.config, "think_end", None)
    # The answer region follows the marker generation followed: the explicit one, else the model's.
    answer_marker = explicit or model_end_marker(model) or DEFAULT_THINK_END
    chat = uses_chat_template(model)
    prompt_format = "chat" if chat else "plain"
    if plan.chat_template_kwargs and not chat:
        raise ValueError("chat_template_kwargs need a chat template, and this model has none")
    problems = plan.problems

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not check_out_dir(out, plan.identity):
        write_json_atomic(
            out / META_FILE,
            {
                "identity": plan.identity,
                "config_label": plan.label,
                "prompt_format": prompt_format,
                "instruction": INSTRUCTION,
                "think_end": answer_marker,
                "model_path": str(getattr(model, "path", "") or ""),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **plan.shard_meta,
            },
        )
    samples_path = out / SAMPLES_FILE
    records = load_records(samples_path, n)
    pending = [[p for p in chunk if p.index not in records] for chunk in plan.chunks]
    pending = [chunk for chunk in pending if chunk]
    job = EvalJob(
        n=n,
        config=plan.config,
        max_tokens=max_tokens,
        seed=seed,
        chat=chat,
        think_end=answer_marker,
        number_fallback=problems[0].dataset in NUMBER_FALLBACK_DATASETS,
        verify_timeout=verify_timeout,
        n_parallel=n_parallel,
        chat_template_kwargs=plan.chat_template_kwargs,
    )
    runner = model if isinstance(model, ChunkRunner) else LocalRunner(model)

    done_samples = (len(problems) - sum(map(len, pending))) * n
    bar = _progress_bar(progress, total=len(problems) * n, initial=done_samples, desc=plan.label)
    n_correct = sum(r["correct"] for p in problems if p.index in records for r in records[p.index])
    try:
        for new in runner.run_chunks(pending, job):
            append_records(samples_path, new)  # one write per batch: a problem's n lines together
            finished: dict[int, list[dict]] = {}
            for rec in new:
                finished.setdefault(rec["problem_index"], []).append(rec)
            records.update(finished)
            if bar is not None:
                n_correct += sum(r["correct"] for r in new)
                bar.update(len(new))
                bar.set_postfix(pass1=f"{n_correct / bar.n:.3f}")
    finally:
        if bar is not None:
            bar.close()

    summary = summarize(
        problems,
        records,
        n=n,
        label=plan.label,
        config_params=plan.identity["config"],
        model=model_name,
        limit=limit,
        seed=seed,
        max_tokens=max_tokens,
        prompt_format=prompt_format,
        out_dir=str(out),
    )
    summary.run = {**runner.shape(), **({"shard": plan.identity["shard"]} if plan.shard_meta else {})}
    if pending:  # what this session did, for the record: one line per session
        session = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "batches": len(pending), **runner.report()}
        append_records(out / RUNS_FILE, [session])
    write_json_atomic(out / SUMMARY_FILE, summary.to_dict())
    return summary


def _progress_bar(enabled: bool, **kw: Any) -> tqdm | None:
    return tqdm(unit="sample", dynamic_ncols=True, **kw) if enabled else None


def compare(
    model: Any,
    dataset: Dataset,
    configs: Sequence[str | ConfigSpec],
    *,
    n: int = 16,
    limit: int | None = None,
    max_tokens: int = 2048,
    seed: int = 0,
    out_dir: str | os.PathLike,
    progress: bool = True,
    temperature: float | None = None,
    model_name: str | None = None,
    verify_timeout: float = 5.0,
    n_parallel: int | None = None,
    chat_template_kwargs: dict | None = None,
    shard: Shard | str | None = None,
) -> list[EvalSummary]:
    """Run each config on the same problems with the same per-problem seeds, each
    in ``out_dir/<config dirname>`` (resumable like :func:`evaluate`); writes
    ``out_dir/compare.json``.  ``temperature`` is the default of specs that set none."""
    specs = [c if isinstance(c, ConfigSpec) else parse_config_spec(c, temperature=temperature) for c in configs]
    if not specs:
        raise ValueError("no configs to compare")
    if len({s.dirname for s in specs}) != len(specs):
        raise ValueError("the same config is listed twice: " + ", ".join(s.label for s in specs))
    for s in specs:  # fail before any generation if a config is invalid
        s.build()
    summaries = [
        evaluate(
            model,
            dataset,
            s,
            n=n,
            limit=limit,
            max_tokens=max_tokens,
            seed=seed,
            out_dir=Path(out_dir) / s.dirname,
            progress=progress,
            model_name=model_name,
            verify_timeout=verify_timeout,
            n_parallel=n_parallel,
            chat_template_kwargs=chat_template_kwargs,
            shard=shard,
        )
        for s in specs
    ]
    write_json_atomic(Path(out_dir) / COMPARE_FILE, [s.to_dict() for s in summaries])
    return summaries
