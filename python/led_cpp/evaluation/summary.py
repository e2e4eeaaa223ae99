"""A run's summary: strict and flexible pass@k, token counts and speed, from its records; and
the table that prints summaries side by side."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from .passk import mean_pass_at_k
from .problems import Problem


@dataclass
class EvalSummary:
    config: str
    config_params: dict
    model: str
    dataset: str
    n: int
    limit: int | None
    seed: int
    max_tokens: int
    num_problems: int
    num_samples: int
    pass_at_1: float  # strict: the last box only (the headline)
    pass_at_k: dict[int, float]  # k = 1..n, strict
    flexible_pass_at_1: float  # flexible: GSM8K's last-number fallback where there is no box
    flexible_pass_at_k: dict[int, float]
    mean_tokens: float
    mean_reasoning_tokens: float
    finished_rate: float
    tokens_per_second: float  # generated tokens / wall seconds of the generate calls
    mean_explore_rate: float
    generation_seconds: float
    prompt_format: str  # "chat" or "plain"
    out_dir: str = ""
    correct_counts: list[int] = field(default_factory=list, repr=False)
    flexible_correct_counts: list[int] = field(default_factory=list, repr=False)
    run: dict = field(default_factory=dict, repr=False)  # where it ran: runner, workers, devices

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("pass_at_1", "pass_at_k", "flexible_pass_at_1", "flexible_pass_at_k"):
            d.pop(key)
        return {
            "pass@1": self.pass_at_1,
            "pass@k": {str(k): v for k, v in self.pass_at_k.items()},
            "flexible_pass@1": self.flexible_pass_at_1,
            "flexible_pass@k": {str(k): v for k, v in self.flexible_pass_at_k.items()},
            **d,
        }


def summarize(
    problems: Sequence[Problem],
    records: dict[int, list[dict]],
    *,
    n: int,
    label: str,
    config_params: dict,
    model: str,
    limit: int | None,
    seed: int,
    max_tokens: int,
    prompt_format: str,
    out_dir: str = "",
) -> EvalSummary:
    """Summary of ``problems`` from their records (every problem must be complete)."""
    recs = [r for p in problems for r in records[p.index]]
    counts = [sum(r["correct"] for r in records[p.index]) for p in problems]
    flexible = [sum(r["flexible_correct"] for r in records[p.index]) for p in problems]
    wall = sum(r["wall_seconds"] for r in recs)
    tokens = sum(r["generated_tokens"] for r in recs)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in recs) / len(recs)

    pass_k = {k: mean_pass_at_k(counts, n, k) for k in range(1, n + 1)}
    flexible_k = {k: mean_pass_at_k(flexible, n, k) for k in range(1, n + 1)}
    return EvalSummary(
        config=label,
        config_params=config_params,
        model=model,
        dataset=problems[0].dataset,
        n=n,
        limit=limit,
        seed=seed,
        max_tokens=max_tokens,
        num_problems=len(problems),
        num_samples=len(recs),
        pass_at_1=pass_k[1],
        pass_at_k=pass_k,
        flexible_pass_at_1=flexible_k[1],
        flexible_pass_at_k=flexible_k,
        mean_tokens=mean("generated_tokens"),
        mean_reasoning_tokens=mean("reasoning_tokens"),
        finished_rate=mean("finished"),
        tokens_per_second=tokens / wall if wall > 0 else 0.0,
        mean_explore_rate=mean("explore_rate"),
        generation_seconds=wall,
        prompt_format=prompt_format,
        out_dir=out_dir,
        correct_counts=counts,
        flexible_correct_counts=flexible,
    )


def format_table(summaries: Sequence[EvalSummary]) -> str:
    """One row per summary: config, problems, strict pass@1 and pass@n, flexible
    pass@1 and pass@n, mean tokens, tok/s, explore rate (accuracies in percent)."""
    ns = {s.n for s in summaries}
    pk = f"pass@{ns.pop()}" if len(ns) == 1 else "pass@n"
    header = ["config", "problems", "n", "pass@1 %", f"{pk} %", "flex pass@1 %", f"flex {pk} %"]
    header += ["mean tok", "tok/s", "explore"]
    rows = [
        [
            s.config,
            str(s.num_problems),
            str(s.n),
            f"{100 * s.pass_at_1:.2f}",
            f"{100 * s.pass_at_k[s.n]:.2f}",
            f"{100 * s.flexible_pass_at_1:.2f}",
            f"{100 * s.flexible_pass_at_k[s.n]:.2f}",
            f"{s.mean_tokens:.1f}",
            f"{s.tokens_per_second:.1f}",
            f"{s.mean_explore_rate:.4f}",
        ]
        for s in summaries
    ]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
