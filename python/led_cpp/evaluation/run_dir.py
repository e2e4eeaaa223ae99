"""A run's output directory: its identity (meta.json), its records (samples.jsonl) and atomic writes.

A problem's n records are appended in one write (flush, fsync) once all n samples are done;
:func:`load_records` keeps only complete problems and cuts a torn last line, so a rerun
regenerates a partially written problem whole. An out_dir holding another run (model, dataset,
config, n, seed, max_tokens, ...) is refused with :class:`RunMismatchError`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .config_spec import config_dict
from .problems import Problem

META_FILE = "meta.json"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
RUNS_FILE = "runs.jsonl"  # one line per session that generated: where it ran, how fast
COMPARE_FILE = "compare.json"  # a compare run's summaries, one per config
RUN_FORMAT = 2  # 2: records and summaries hold strict and flexible scores


class RunMismatchError(ValueError):
    """``out_dir`` already holds a run that differs from the one asked for."""


def _dataset_digest(problems: Sequence[Problem]) -> str:
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.question, p.answer]).encode())
    return h.hexdigest()[:16]


def run_identity(
    *,
    model: str,
    problems: Sequence[Problem],
    config: Any,
    n: int,
    seed: int,
    max_tokens: int,
    think_end: str,
    chat_template_kwargs: dict | None = None,
) -> dict:
    """What must match for a run in an out_dir to be resumed (as JSON values, so it
    compares equal to the copy saved in meta.json)."""
    identity = {
        "format": RUN_FORMAT,
        "model": model,
        "dataset": problems[0].dataset,
        "dataset_digest": _dataset_digest(problems),
        "config": config_dict(config),
        "n": int(n),
        "seed": int(seed),
        "max_tokens": int(max_tokens),
        "think_end": think_end,
    }
    if chat_template_kwargs:  # absent when unused, so runs from before the option still resume
        identity["chat_template_kwargs"] = chat_template_kwargs
    return json.loads(json.dumps(identity, default=str))


def check_out_dir(out_dir: str | os.PathLike, identity: dict) -> bool:
    """True if ``out_dir`` holds a run with this identity, False if it holds none;
    raises RunMismatchError if it holds a different run."""
    out = Path(out_dir)
    meta_path = out / META_FILE
    if not meta_path.exists():
        if (out / SAMPLES_FILE).exists():
            raise RunMismatchError(f"{out} holds {SAMPLES_FILE} but no {META_FILE}; use another --out")
        return False
    with open(meta_path, encoding="utf-8") as f:
        saved = json.load(f).get("identity", {})
    diffs = [
        f"{k}: saved {saved.get(k)!r}, asked {identity.get(k)!r}"
        for k in list(identity) + [k for k in saved if k not in identity]
        if saved.get(k) != identity.get(k)
    ]
    if diffs:
        raise RunMismatchError(
            f"{out} holds a different run; refusing to mix results (use another --out):\n  " + "\n  ".join(diffs)
        )
    return True


def write_json_atomic(path: Path, obj: Any) -> None:
    """Writes ``obj`` as JSON to ``path`` through a temporary file, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_records(path: Path, records: Sequence[dict]) -> None:
    """Replaces ``path`` by ``records`` (one JSON line each) through a temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_records(path: Path, records: Iterable[dict]) -> None:
    """Appends ``records`` (one JSON line each) in one write, flushed to disk."""
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def load_records(path: str | os.PathLike, n: int) -> dict[int, list[dict]]:
    """Complete problems in a samples file: problem index -> its n records in
    sample order (the last line of a (problem, sample) wins).  A torn last line
    (a crash mid-write) is cut off the file."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            f.truncate(len(data))
    latest: dict[tuple[int, int], dict] = {}
    for line in data.splitlines():
        try:
            rec = json.loads(line)
            latest[(int(rec["problem_index"]), int(rec["sample"]))] = rec
        except (ValueError, KeyError, TypeError):
            continue
    by_problem: dict[int, list[dict]] = {}
    for (p, _), rec in latest.items():
        by_problem.setdefault(p, []).append(rec)
    return {
        p: sorted(recs, key=lambda r: r["sample"])
        for p, recs in by_problem.items()
        if {r["sample"] for r in recs} == set(range(n))
    }
