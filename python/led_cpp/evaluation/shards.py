"""Shards of an evaluation run, for batch schedulers (SLURM job arrays and the like).

``evaluate(..., shard="K/N")`` (``led-cpp eval --shard K/N``) runs the K-th of N
shares of the run's batches (:func:`led_cpp.evaluation.batches.plan_chunks`: batch j goes
to shard ``j % N + 1``, so every shard gets easy and hard problems alike) into its
own out_dir, resumable like any run.  A problem keeps its seed (from its index in
the whole dataset), so its records are those of an unsharded run.

:func:`merge_runs` (``led-cpp eval-merge DIR... --out DIR``) checks that the
directories are distinct shards of one run (same model, dataset, config, n, seed,
max_tokens and problem selection), that no problem is in two of them and that
none is missing, then writes ``OUT`` as the unsharded run would have: meta.json,
samples.jsonl (sorted by problem and sample) and summary.json.  :func:`merge`
also merges ``compare`` outputs (one subdirectory per config).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .problems import Problem
from .run_dir import (
    COMPARE_FILE,
    META_FILE,
    SAMPLES_FILE,
    SUMMARY_FILE,
    check_out_dir,
    load_records,
    write_json_atomic,
    write_records,
)
from .summary import EvalSummary, summarize


class ShardMergeError(ValueError):
    """The directories given to eval-merge are not the complete, distinct shards of one run."""


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (1-based) of ``count`` shares of a run."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for name in ("index", "count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"shard {name} must be an int, not {type(value).__name__}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count} is out of range: K/N needs 1 <= K <= N")

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"``, e.g. ``"2/8"``."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not m:
            raise ValueError(f"bad shard {text!r}: write K/N, e.g. 2/8 (the 2nd of 8 shares)")
        return cls(int(m.group(1)), int(m.group(2)))


def as_shard(shard: Shard | str) -> Shard:
    if isinstance(shard, Shard):
        return shard
    if isinstance(shard, str):
        return Shard.parse(shard)
    raise TypeError(f"shard must be a Shard or 'K/N', not {type(shard).__name__}")


def apply_shard(
    shard: Shard | str, chunks: Sequence[Sequence[Problem]], identity: dict
) -> tuple[list[list[Problem]], dict, dict]:
    """(this shard's batches, the shard run's identity, what meta.json records)."""
    shard = as_shard(shard)
    if shard.count > len(chunks):
        size = len(chunks[0]) if chunks else 0
        raise ValueError(
            f"shard {shard.label}: the run has only {len(chunks)} batches "
            f"({sum(map(len, chunks))} problems, {size} per generate call), so at most "
            f"{len(chunks)} shards; use fewer"
        )
    mine = [list(c) for c in chunks[shard.index - 1 :: shard.count]]
    selected = [p.index for c in chunks for p in c]
    # The problem count is part of the identity: a shard resumed with another --limit
    # would hold another share.
    identity = {**identity, "shard": {"index": shard.index, "count": shard.count, "problems": len(selected)}}
    meta = {
        "shard": {
            "index": shard.index,
            "count": shard.count,
            "problems": [p.index for c in mine for p in c],
            "selected": selected,
        }
    }
    return mine, identity, meta


# --------------------------------------------------------------------------- merging


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@dataclass
class _ShardDir:
    path: Path
    meta: dict
    shard: dict  # meta["shard"]: index, count, problems, selected
    base: dict  # identity without the shard

    @property
    def label(self) -> str:
        return f"{self.shard['index']}/{self.shard['count']}"


def _open_shard(path: Path) -> _ShardDir:
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise ShardMergeError(f"{path} is not an eval output directory (no {META_FILE})")
    meta = _read_json(meta_path)
    identity = dict(meta.get("identity", {}))
    shard = meta.get("shard")
    if "shard" not in identity or not isinstance(shard, dict):
        raise ShardMergeError(f"{path} is not a shard (it was not run with --shard K/N)")
    identity.pop("shard")
    return _ShardDir(path, meta, shard, identity)


def merge_runs(dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> EvalSummary:
    """Merge the shard out_dirs of one run into ``out_dir`` (see the module docstring).
    Raises :class:`ShardMergeError` for different runs, overlapping shards or missing
    problems, and RunMismatchError if ``out_dir`` holds another run."""
    if not dirs:
        raise ShardMergeError("no shard directories to merge")
    out = Path(out_dir)
    shards = [_open_shard(Path(d)) for d in dirs]
    if any(s.path.resolve() == out.resolve() for s in shards):
        raise ShardMergeError(f"--out {out} is one of the shards; give a new directory")
    first = shards[0]
    for s in shards[1:]:
        diffs = [
            f"{k}: {first.base.get(k)!r} in {first.path}, {s.base.get(k)!r} in {s.path}"
            for k in {**first.base, **s.base}
            if first.base.get(k) != s.base.get(k)
        ]
        if s.shard["selected"] != first.shard["selected"]:
            diffs.append(
                f"problems: {len(first.shard['selected'])} selected in {first.path}, "
                f"{len(s.shard['selected'])} in {s.path} (another --limit)"
            )
        if s.shard["count"] != first.shard["count"]:
            diffs.append(f"shard count: {first.label} in {first.path}, {s.label} in {s.path}")
        if diffs:
            raise ShardMergeError("these are shards of different runs; refusing to merge:\n  " + "\n  ".join(diffs))
    by_index: dict[int, _ShardDir] = {}
    for s in shards:
        if s.shard["index"] in by_index:
            raise ShardMergeError(
                f"overlapping shards: {by_index[s.shard['index']].path} and {s.path} are both shard {s.label}"
            )
        by_index[s.shard["index"]] = s

    n = int(first.base["n"])
    records: dict[int, list[dict]] = {}
    owner: dict[int, Path] = {}
    lacking: list[str] = []
    for s in shards:
        done = load_records(s.path / SAMPLES_FILE, n)
        planned = s.shard["problems"]
        for index in planned:
            if index in owner:
                raise ShardMergeError(f"problem {index} is in both {owner[index]} and {s.path}")
            owner[index] = s.path
            if index in done:
                records[index] = done[index]
        missing = [i for i in planned if i not in done]
        if missing:
            lacking.append(
                f"shard {s.label} ({s.path}) lacks {len(missing)} of its "
                f"{len(planned)} problems ({_indices(missing)}): rerun it, it resumes"
            )
    count = int(first.shard["count"])
    absent = [k for k in range(1, count + 1) if k not in by_index]
    if absent:
        lacking.insert(
            0,
            f"shard{'s' * (len(absent) > 1)} "
            f"{', '.join(f'{k}/{count}' for k in absent)} not given "
            f"({len(set(first.shard['selected']) - set(owner))} problems)",
        )
    if lacking:
        missing_total = len(first.shard["selected"]) - len(records)
        raise ShardMergeError(
            f"{missing_total} problems are missing; refusing to write a partial summary:\n  " + "\n  ".join(lacking)
        )

    dataset = first.base["dataset"]
    problems = [
        Problem(records[i][0]["problem_id"], i, "", records[i][0]["gold"], dataset) for i in first.shard["selected"]
    ]
    summaries = [_read_json(s.path / SUMMARY_FILE) if (s.path / SUMMARY_FILE).is_file() else {} for s in shards]
    limits = {json.dumps(sm.get("limit")) for sm in summaries if sm}
    limit = json.loads(limits.pop()) if len(limits) == 1 else None

    out.mkdir(parents=True, exist_ok=True)
    if check_out_dir(out, first.base) and "merged_from" not in _read_json(out / META_FILE):
        raise ShardMergeError(f"--out {out} holds a run that is not a merge; give a new directory")
    meta = {k: v for k, v in first.meta.items() if k not in ("identity", "shard")}
    meta.update(identity=first.base, merged_from=[str(s.path) for s in shards])
    write_json_atomic(out / META_FILE, meta)  # a merge rewrites out_dir whole
    write_records(out / SAMPLES_FILE, [r for p in problems for r in records[p.index]])
    summary = summarize(
        problems,
        records,
        n=n,
        label=first.meta.get("config_label", ""),
        config_params=first.base["config"],
        model=first.base["model"],
        limit=limit,
        seed=int(first.base["seed"]),
        max_tokens=int(first.base["max_tokens"]),
        prompt_format=first.meta.get("prompt_format", ""),
        out_dir=str(out),
    )
    summary.run = {
        "runner": "merge",
        "shards": [
            {"dir": str(s.path), **sm.get("run", {}), "shard": s.label}
            for s, sm in sorted(zip(shards, summaries), key=lambda x: x[0].shard["index"])
        ],
    }
    write_json_atomic(out / SUMMARY_FILE, summary.to_dict())
    return summary


def _indices(indices: Sequence[int], most: int = 8) -> str:
    shown = ", ".join(map(str, indices[:most]))
    return f"problem {shown}" + (f" and {len(indices) - most} more" if len(indices) > most else "")


def merge(dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> list[EvalSummary]:
    """Merge shards of an ``eval`` run (directories holding meta.json) or of a
    ``compare`` run (directories holding one subdirectory per config, merged config by
    config, plus ``OUT/compare.json``)."""
    paths = [Path(d) for d in dirs]
    for p in paths:
        if not p.is_dir():
            raise ShardMergeError(f"{p} is not a directory")
    if all((p / META_FILE).is_file() for p in paths):
        return [merge_runs(paths, out_dir)]
    configs = [sorted(c.name for c in p.iterdir() if (c / META_FILE).is_file()) for p in paths]
    if not configs[0] or any(c != configs[0] for c in configs):
        raise ShardMergeError(
            "give shard directories of one eval run (each with "
            f"{META_FILE}) or of one compare run (each with the same config "
            "subdirectories): " + "; ".join(f"{p}: {', '.join(c) or 'no runs'}" for p, c in zip(paths, configs))
        )
    order = configs[0]
    listed = paths[0] / COMPARE_FILE
    if listed.is_file():
        named = [Path(s.get("out_dir", "")).name for s in _read_json(listed)]
        order = [c for c in named if c in order] + [c for c in order if c not in named]
    summaries = [merge_runs([p / c for p in paths], Path(out_dir) / c) for c in order]
    write_json_atomic(Path(out_dir) / COMPARE_FILE, [s.to_dict() for s in summaries])
    return summaries
