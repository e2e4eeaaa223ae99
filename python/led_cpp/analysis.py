"""The paper's analyses (LED_SPEC.md, "Analyses from the paper"), as plain data + files.

* :func:`analyze_entropy` (Figure 2): per layer, the normalised entropy of the layer's
  full-vocabulary posterior (final norm applied, T = 1, divided by log(n_vocab)),
  averaged over every generated token of every problem.  Exploration collapse shows as
  a cliff near the top layers.
* :func:`analyze_coverage` (Figure 4): for k in {1, 2, 4, 8, 16}, the share of the final
  layer's top-k tokens that is also in layer l's top-k, with and without the final norm
  for layer l, averaged over generated tokens.
* :func:`analyze_temperature` (Figure 1): pass@n for n in {1, 2, 4, 8, 16} at T in
  {0.1, 0.3, 0.6} (standard sampling, the baseline's top-k / top-p), each temperature an
  ordinary resumable :func:`led_cpp.evaluation.evaluate` run, and the least-squares slope
  of pass@n against T per n; a slope <= 0 marks exploration collapse.

Each ``analyze_*`` function returns a JSON-ready dict and writes ``OUT/<name>.json`` and,
when matplotlib is installed (``pip install 'led_cpp[plot]'``), ``OUT/<name>.png``.

The per-layer numbers come from the model's own graph: ``Model.generate_batch(...,
layer_analysis=K)`` fills each trace step (one per generated token, computed at the step
that chose it) with ``layer_entropies`` and the top-K ids per layer with
(``layer_top_normalised``) and without (``layer_top_raw``) the final norm.  Trace rows
are ordered final layer first, then layers n_layer-2 ... 0; here every per-layer list is
re-indexed by layer, 0 (input side) .. n_layer-1 (output side).  The top-K ids come in
descending logit order, so a top-k for k < K is a prefix of the list.

Conventions
-----------
* Prompts follow the evaluation protocol (:func:`led_cpp.evaluation.build_prompt`: the
  instruction and the question through the chat template, or the plain completion prompt
  for a model without one); one sample per problem, all problems in one
  ``generate_batch`` call with standard sampling (default: the baseline, T 0.6, top-k 20,
  top-p 0.95), so the analysed tokens are the model's ordinary output.
* A step that ends the generation (end-of-generation token) emits no token and has no
  trace step, so it is not counted.
* Coverage "without the final norm": the final layer itself is always the model's own
  posterior (final norm applied), as depth 0 is in LED with ``ln`` off, so its coverage
  is 1 in both curves; the final layer's own un-normed top-k coverage is reported
  separately as ``final_layer_without_norm``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import evaluation as ev
from .config import SamplingConfig

__all__ = [
    "ANALYSES",
    "COVERAGE_KS",
    "LAYER_ANALYSIS_K",
    "PASS_NS",
    "PLOT_NOTE",
    "TEMPERATURES",
    "analyze_coverage",
    "analyze_entropy",
    "analyze_temperature",
    "check_temperature_runs",
    "coverage_curves",
    "entropy_curve",
    "format_report",
    "generate_layer_traces",
    "layer_of_row",
    "least_squares_slope",
    "pass_at_n_table",
    "steps_by_layer",
    "temperature_run_dir",
    "temperature_slopes",
]

ANALYSES = ("entropy", "coverage", "temperature")
COVERAGE_KS = (1, 2, 4, 8, 16)
LAYER_ANALYSIS_K = 16
TEMPERATURES = (0.1, 0.3, 0.6)
PASS_NS = (1, 2, 4, 8, 16)
#: What the analyses print when matplotlib is missing (the JSON is still written).
PLOT_NOTE = "the plot needs matplotlib: pip install 'led_cpp[plot]'"
#: Default token budget of the per-layer analyses (every step projects every layer).
DEFAULT_ANALYSIS_MAX_TOKENS = 256


# --------------------------------------------------------------------------- helpers


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save_plot(draw, path: Path) -> str | None:
    """Draw with ``draw(plt)`` into ``path``; None (and a note on stderr) without
    matplotlib."""
    plt = _pyplot()
    if plt is None:
        print(f"led-cpp analyze: wrote the JSON only; {PLOT_NOTE}", file=sys.stderr)
        return None
    fig = draw(plt)
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return str(path)


def _integer_xticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _model_info(model: Any) -> dict:
    return {"model": ev.model_name_of(model), "n_layer": int(model.n_layer), "n_vocab": int(model.n_vocab)}


def _run_info(model: Any, problems: Sequence, limit: Any, max_tokens: int, seed: int, temperature: float) -> dict:
    """What the per-layer analyses record about their run (generate_layer_traces' sampling)."""
    return {
        **_model_info(model),
        "dataset": problems[0].dataset,
        "num_problems": len(problems),
        "limit": limit,
        "max_tokens": max_tokens,
        "seed": seed,
        "sampling": {"temperature": temperature, "top_k": 20, "top_p": 0.95, "min_p": 0.0},
        "prompt_format": "chat" if ev.uses_chat_template(model) else "plain",
    }


def layer_of_row(n_layer: int) -> list[int]:
    """Layer index of each trace row: row 0 is the final layer (n_layer-1), row i >= 1
    is layer n_layer-1-i."""
    return [n_layer - 1 - i for i in range(n_layer)]


def steps_by_layer(rows: Sequence) -> list:
    """A per-step tuple in trace order (final layer first, then n_layer-2 ... 0)
    re-indexed by layer (0 .. n_layer-1)."""
    return list(reversed(rows))


# --------------------------------------------------------------------------- generation


def generate_layer_traces(
    model: Any,
    problems: Sequence,
    *,
    max_tokens: int,
    seed: int,
    k: int = LAYER_ANALYSIS_K,
    temperature: float = 0.6,
    top_k: int = 20,
    top_p: float = 0.95,
    min_p: float = 0.0,
    n_parallel: int | None = None,
    progress: bool = False,
) -> list:
    """One sample per problem (evaluation prompts, standard sampling) with per-layer
    statistics (top-``k`` ids per layer) in every trace step; one result per problem."""
    config = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    chat = ev.uses_chat_template(model)
    prompts = [ev.build_prompt(p.question, chat) for p in problems]
    extra = {} if n_parallel is None else {"n_parallel": n_parallel}
    results = model.generate_batch(
        prompts, n=1, config=config, max_tokens=max_tokens, seed=seed, layer_analysis=k, progress=progress, **extra
    )
    return [outs[0] for outs in results]


def _traced_steps(result: Any) -> list:
    steps = result.trace or []
    for step in steps:
        if not step.layer_entropies:
            raise ValueError("the trace has no per-layer statistics; generate with layer_analysis=K")
    return steps


# --------------------------------------------------------------------------- entropy


def entropy_curve(results: Iterable[Any]) -> dict:
    """Per layer (0 .. n_layer-1), the normalised entropy averaged over every traced step
    of every result, plus the per-result means.  Results without steps are skipped."""
    total: list[float] | None = None
    count = 0
    per_result: list[list[float] | None] = []
    for result in results:
        steps = _traced_steps(result)
        if not steps:
            per_result.append(None)
            continue
        n_layer = len(steps[0].layer_entropies)
        sums = [0.0] * n_layer
        for step in steps:
            for il, value in enumerate(steps_by_layer(step.layer_entropies)):
                sums[il] += float(value)
        if total is None:
            total = [0.0] * n_layer
        elif len(total) != n_layer:
            raise ValueError("the results come from models with different layer counts")
        for il in range(n_layer):
            total[il] += sums[il]
        count += len(steps)
        per_result.append([s / len(steps) for s in sums])
    if not count:
        raise ValueError("no generated tokens to analyse (every sample ended at once)")
    return {
        "layers": list(range(len(total))),
        "mean_entropy": [s / count for s in total],
        "num_tokens": count,
        "per_problem": per_result,
    }


def _entropy_plot(data: dict):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        ax.plot(data["layers"], data["mean_entropy"], marker="o", markersize=3)
        ax.set_xlabel("layer (0 = input side)")
        ax.set_ylabel("normalised entropy H / log|V|")
        ax.set_title(
            f"{data['model']}: per-layer entropy ({data['num_tokens']} tokens, {data['num_problems']} problems)",
            fontsize=9,
        )
        ax.set_ylim(bottom=0)
        _integer_xticks(ax)
        ax.grid(alpha=0.3)
        return fig

    return draw


def analyze_entropy(
    model: Any,
    dataset: Any,
    *,
    out_dir: str | os.PathLike,
    limit: int | None = None,
    max_tokens: int = DEFAULT_ANALYSIS_MAX_TOKENS,
    seed: int = 0,
    temperature: float = 0.6,
    n_parallel: int | None = None,
    progress: bool = False,
) -> dict:
    """Figure 2: writes ``OUT/entropy.json`` (+ ``entropy.png``) and returns the data."""
    _, problems = ev.select_problems(dataset, limit)
    t0 = time.perf_counter()
    results = generate_layer_traces(
        model,
        problems,
        max_tokens=max_tokens,
        seed=seed,
        k=1,
        temperature=temperature,
        n_parallel=n_parallel,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    curve = entropy_curve(results)
    means = curve["mean_entropy"]
    n_layer = len(means)
    data = {
        "analysis": "entropy",
        **_run_info(model, problems, limit, max_tokens, seed, temperature),
        "definition": "per layer: entropy of softmax(head(final_norm(h_l))) at T=1 divided by "
        "log(n_vocab), averaged over all generated tokens",
        "layers": curve["layers"],
        "mean_entropy": means,
        "num_tokens": curve["num_tokens"],
        "final_layer_entropy": means[-1],
        "max_entropy_layer": max(range(n_layer), key=lambda il: means[il]),
        # final layer minus the layer below it: a collapse shows as a large negative step
        "top_layer_change": means[-1] - means[-2] if n_layer > 1 else 0.0,
        "generation_seconds": seconds,
        "samples": [
            {"problem_id": p.id, "finish_reason": r.finish_reason, "tokens": list(r.tokens), "mean_entropy": m}
            for p, r, m in zip(problems, results, curve["per_problem"])
        ],
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data["png"] = _save_plot(_entropy_plot(data), out / "entropy.png")
    ev.write_json_atomic(out / "entropy.json", data)
    return data


# --------------------------------------------------------------------------- coverage


def coverage_curves(results: Iterable[Any], ks: Sequence[int] = COVERAGE_KS) -> dict:
    """Per k and layer (0 .. n_layer-1): the share of the final layer's top-k (final norm
    applied) that is also in layer l's top-k, with (``with_norm``) and without
    (``without_norm``) the final norm for layer l, averaged over traced steps.  The
    final layer is the model's own posterior in both curves (so 1.0);
    ``final_layer_without_norm`` is the final layer's un-normed top-k coverage."""
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError("coverage needs k values >= 1")
    sums_norm: dict[int, list[float]] = {}
    sums_raw: dict[int, list[float]] = {}
    sums_final_raw = {k: 0.0 for k in ks}
    count = 0
    n_layer = None
    for result in results:
        for step in _traced_steps(result):
            norm_rows = steps_by_layer(step.layer_top_normalised)
            raw_rows = steps_by_layer(step.layer_top_raw)
            if n_layer is None:
                n_layer = len(norm_rows)
                width = len(norm_rows[0])
                if max(ks) > width:
                    raise ValueError(f"k={max(ks)} needs layer_analysis >= {max(ks)}, the trace has top-{width}")
                sums_norm = {k: [0.0] * n_layer for k in ks}
                sums_raw = {k: [0.0] * n_layer for k in ks}
            final = norm_rows[-1]
            for k in ks:
                target = set(final[:k])
                for il in range(n_layer):
                    sums_norm[k][il] += len(target.intersection(norm_rows[il][:k])) / k
                    if il < n_layer - 1:
                        sums_raw[k][il] += len(target.intersection(raw_rows[il][:k])) / k
                sums_raw[k][n_layer - 1] += 1.0
                sums_final_raw[k] += len(target.intersection(raw_rows[-1][:k])) / k
            count += 1
    if not count:
        raise ValueError("no generated tokens to analyse (every sample ended at once)")
    return {
        "ks": ks,
        "layers": list(range(n_layer)),
        "num_tokens": count,
        "with_norm": {str(k): [s / count for s in sums_norm[k]] for k in ks},
        "without_norm": {str(k): [s / count for s in sums_raw[k]] for k in ks},
        "final_layer_without_norm": {str(k): sums_final_raw[k] / count for k in ks},
    }


def _coverage_plot(data: dict):
    def draw(plt):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), sharey=True)
        for ax, key, title in (
            (axes[0], "with_norm", "with final norm"),
            (axes[1], "without_norm", "without final norm"),
        ):
            for k in data["ks"]:
                ax.plot(data["layers"], data[key][str(k)], marker="o", markersize=2.5, label=f"top-{k}")
            ax.set_title(title)
            ax.set_xlabel("layer (0 = input side)")
            ax.set_ylim(-0.02, 1.02)
            _integer_xticks(ax)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("coverage of the final layer's top-k")
        axes[1].legend(fontsize=8)
        fig.suptitle(
            f"{data['model']}: top-k coverage ({data['num_tokens']} tokens, {data['num_problems']} problems)",
            fontsize=9,
        )
        return fig

    return draw


def analyze_coverage(
    model: Any,
    dataset: Any,
    *,
    out_dir: str | os.PathLike,
    limit: int | None = None,
    max_tokens: int = DEFAULT_ANALYSIS_MAX_TOKENS,
    seed: int = 0,
    temperature: float = 0.6,
    ks: Sequence[int] = COVERAGE_KS,
    n_parallel: int | None = None,
    progress: bool = False,
) -> dict:
    """Figure 4: writes ``OUT/coverage.json`` (+ ``coverage.png``) and returns the data."""
    _, problems = ev.select_problems(dataset, limit)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError("coverage needs k values >= 1")
    t0 = time.perf_counter()
    results = generate_layer_traces(
        model,
        problems,
        max_tokens=max_tokens,
        seed=seed,
        k=max(ks),
        temperature=temperature,
        n_parallel=n_parallel,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    curves = coverage_curves(results, ks)
    data = {
        "analysis": "coverage",
        **_run_info(model, problems, limit, max_tokens, seed, temperature),
        "definition": "|top_k(final layer, final norm) & top_k(layer l)| / k, averaged over "
        "generated tokens; layer l with (with_norm) or without (without_norm) "
        "the final norm; the final layer is always the model's own posterior",
        **curves,
        "generation_seconds": seconds,
        "samples": [
            {"problem_id": p.id, "finish_reason": r.finish_reason, "tokens": list(r.tokens)}
            for p, r in zip(problems, results)
        ],
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data["png"] = _save_plot(_coverage_plot(data), out / "coverage.png")
    ev.write_json_atomic(out / "coverage.json", data)
    return data


# --------------------------------------------------------------------------- temperature


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Slope of the least-squares line through (xs, ys)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("a slope needs at least two points")
    mx = sum(xs) / len(xs)
    my = sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("a slope needs at least two different x values")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def pass_at_n_table(correct_counts: Sequence[int], n_samples: int, ns: Sequence[int] = PASS_NS) -> dict[str, float]:
    """pass@n (unbiased estimator, averaged over problems) for each n <= n_samples."""
    return {str(n): ev.mean_pass_at_k(correct_counts, n_samples, n) for n in ns if n <= n_samples}


def temperature_slopes(temperatures: Sequence[float], pass_at: dict[str, Sequence[float]]) -> dict[str, dict]:
    """Per n: the least-squares slope of pass@n against temperature, whether it marks
    exploration collapse (slope <= 0) and whether the values carry no signal at all
    (``saturated``: 0 at every temperature, or 1 at every temperature; the slope is then
    0 and "collapse" says nothing about exploration)."""
    out = {}
    for n, values in pass_at.items():
        values = [float(v) for v in values]
        slope = least_squares_slope(list(temperatures), values)
        saturated = all(v == 0.0 for v in values) or all(v == 1.0 for v in values)
        out[n] = {"slope": slope, "collapse": slope <= 0, "saturated": saturated}
    return out


def _temperature_plot(data: dict):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for n, values in data["pass_at"].items():
            slope = data["slopes"][n]["slope"]
            ax.plot(
                data["temperatures"],
                [100 * v for v in values],
                marker="o",
                label=f"pass@{n} (slope {100 * slope:+.1f} pp/T)",
            )
        ax.set_xlabel("temperature")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(-2, 102)
        ax.set_title(
            f"{data['model']} on {data['dataset']} ({data['num_problems']} problems, {data['n']} samples)", fontsize=9
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return fig

    return draw


def temperature_run_dir(out_dir: str | os.PathLike, temperature: float) -> Path:
    """Where the evaluation run at one temperature lives (resumable)."""
    return Path(out_dir) / "temperature_runs" / f"T{float(temperature):g}"


def check_temperature_runs(
    out_dir: str | os.PathLike,
    dataset: Any,
    *,
    model_name: str,
    temperatures: Sequence[float],
    n: int,
    limit: int | None,
    seed: int,
    max_tokens: int,
    top_k: int = 20,
    top_p: float = 0.95,
    min_p: float = 0.0,
) -> list:
    """The temperature analysis' config specs, one per temperature, after refusing (before any
    model is loaded) fewer than two different temperatures, one <= 0, or a run directory
    holding another run (RunMismatchError)."""
    temperatures = [float(t) for t in temperatures]
    if len(set(temperatures)) < 2:
        raise ValueError("the temperature analysis needs at least two different temperatures")
    if any(t <= 0 for t in temperatures):
        raise ValueError("temperatures must be > 0 (a sampled run, not greedy)")
    defaults = SamplingConfig()
    changed = {k: v for k, v in (("top_k", top_k), ("top_p", top_p), ("min_p", min_p)) if v != getattr(defaults, k)}
    specs = [ev.ConfigSpec("standard").with_params(temperature=t, **changed) for t in temperatures]
    for t, spec in zip(temperatures, specs):
        ev.check_run(
            temperature_run_dir(out_dir, t),
            dataset,
            spec,
            model_name=model_name,
            n=n,
            limit=limit,
            seed=seed,
            max_tokens=max_tokens,
        )
    return specs


def analyze_temperature(
    model: Any,
    dataset: Any,
    *,
    out_dir: str | os.PathLike,
    limit: int | None = None,
    n: int = 16,
    max_tokens: int = 2048,
    seed: int = 0,
    temperatures: Sequence[float] = TEMPERATURES,
    ns: Sequence[int] = PASS_NS,
    top_k: int = 20,
    top_p: float = 0.95,
    min_p: float = 0.0,
    n_parallel: int | None = None,
    verify_timeout: float = 5.0,
    progress: bool = False,
) -> dict:
    """Figure 1: one :func:`led_cpp.evaluation.evaluate` run (``n`` samples per problem,
    standard sampling) per temperature in ``OUT/temperature_runs/T<T>/`` (resumed when
    rerun), pass@n for each n in ``ns`` up to ``n`` and the slope of pass@n against T;
    writes ``OUT/temperature.json`` (+ ``temperature.png``) and returns the data."""
    temperatures = [float(t) for t in temperatures]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, not {n!r}")
    ns = sorted({int(k) for k in ns if int(k) <= n})
    if not ns:
        raise ValueError(f"no pass@n to report with n={n} samples")
    problems, _ = ev.select_problems(dataset, limit)  # the whole dataset: evaluate applies the limit
    model_name = ev.model_name_of(model)
    # Refuse bad temperatures or a mismatching run directory before generating anything.
    specs = check_temperature_runs(
        out_dir,
        problems,
        model_name=model_name,
        temperatures=temperatures,
        n=n,
        limit=limit,
        seed=seed,
        max_tokens=max_tokens,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
    )
    summaries = []
    for t, spec in zip(temperatures, specs):
        summaries.append(
            ev.evaluate(
                model,
                problems,
                spec,
                n=n,
                limit=limit,
                max_tokens=max_tokens,
                seed=seed,
                out_dir=temperature_run_dir(out_dir, t),
                progress=progress,
                model_name=model_name,
                verify_timeout=verify_timeout,
                n_parallel=n_parallel,
            )
        )
    pass_at = {str(k): [] for k in ns}
    for s in summaries:
        table = pass_at_n_table(s.correct_counts, n, ns)
        for k in ns:
            pass_at[str(k)].append(table[str(k)])
    slopes = temperature_slopes(temperatures, pass_at)
    data = {
        "analysis": "temperature",
        **_model_info(model),
        "dataset": problems[0].dataset,
        "num_problems": summaries[0].num_problems,
        "limit": limit,
        "n": n,
        "max_tokens": max_tokens,
        "seed": seed,
        "sampling": {"top_k": top_k, "top_p": top_p, "min_p": min_p},
        "prompt_format": summaries[0].prompt_format,
        "temperatures": temperatures,
        "ns": ns,
        "pass_at": pass_at,
        "slopes": slopes,
        "collapse": {k: v["collapse"] for k, v in slopes.items()},
        "definition": "pass@n: unbiased estimator 1 - C(N-c, n)/C(N, n) averaged over problems "
        "(N samples per problem); slope: least-squares slope of pass@n against T; "
        "slope <= 0 marks exploration collapse",
        "runs": {
            f"{t:g}": {
                "out_dir": str(temperature_run_dir(out_dir, t)),
                "pass@1": s.pass_at_1,
                "mean_tokens": s.mean_tokens,
                "finished_rate": s.finished_rate,
                "generation_seconds": s.generation_seconds,
            }
            for t, s in zip(temperatures, summaries)
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data["png"] = _save_plot(_temperature_plot(data), out / "temperature.png")
    ev.write_json_atomic(out / "temperature.json", data)
    return data


def format_report(data: dict) -> str:
    """A short text summary of one analysis' data."""
    kind = data.get("analysis")
    head = f"{data['model']} on {data['dataset']}: {data['num_problems']} problems"
    if kind == "entropy":
        values = " ".join(f"{v:.3f}" for v in data["mean_entropy"])
        return (
            f"{head}, {data['num_tokens']} tokens\n"
            f"normalised entropy by layer (0 -> {len(data['layers']) - 1}): {values}\n"
            f"final layer {data['final_layer_entropy']:.4f} ({data['top_layer_change']:+.4f} "
            f"from the layer below; a collapse is a large negative step), highest at layer "
            f"{data['max_entropy_layer']}"
        )
    if kind == "coverage":
        lines = [
            f"{head}, {data['num_tokens']} tokens",
            "coverage of the final top-k by layer (0 -> top), with / without final norm:",
        ]
        for k in data["ks"]:
            w = " ".join(f"{v:.2f}" for v in data["with_norm"][str(k)])
            r = " ".join(f"{v:.2f}" for v in data["without_norm"][str(k)])
            lines.append(f"  k={k:<2} norm: {w}")
            lines.append(f"       raw:  {r}")
        return "\n".join(lines)
    if kind == "temperature":
        temps = "  ".join(f"T={t:g}" for t in data["temperatures"])
        lines = [f"{head}, {data['n']} samples each", f"            {temps}   slope"]
        for k, values in data["pass_at"].items():
            cells = "  ".join(f"{100 * v:5.1f}" for v in values)
            slope = data["slopes"][k]
            mark = (
                "  (no signal: the same at every T)"
                if slope["saturated"]
                else "  collapse"
                if slope["collapse"]
                else ""
            )
            lines.append(f"  pass@{k:<3} {cells}   {100 * slope['slope']:+.2f} pp/T{mark}")
        return "\n".join(lines)
    return json.dumps(data)
