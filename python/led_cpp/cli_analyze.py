"""``led-cpp analyze entropy|coverage|temperature``: the paper's analyses (led_cpp.analysis)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from . import analysis as an
from . import evaluation as ev
from .cli_model import add_model_arguments, load_model, model_name

_HELP = {
    "entropy": "per-layer normalised entropy (Figure 2)",
    "coverage": "per-layer top-k coverage of the final layer's top-k (Figure 4)",
    "temperature": "pass@n against temperature and its slope (Figure 1)",
}
_DESCRIPTIONS = {
    "entropy": "Figure 2: per layer, the normalised entropy of the layer's full-vocabulary "
    "posterior (final norm applied, T = 1, / log n_vocab), averaged over the "
    "generated tokens of one sample per problem. Writes OUT/entropy.json and "
    "OUT/entropy.png.",
    "coverage": "Figure 4: for k in 1, 2, 4, 8, 16, the share of the final layer's top-k that "
    "is also in layer l's top-k, with and without the final norm, averaged over "
    "the generated tokens of one sample per problem. Writes OUT/coverage.json and "
    "OUT/coverage.png.",
    "temperature": "Figure 1: pass@n (n = 1, 2, 4, 8, 16) at T = 0.1, 0.3, 0.6 with standard "
    "sampling (top-k 20, top-p 0.95), one resumable eval run per temperature in "
    "OUT/temperature_runs/T<T>/, and the least-squares slope of pass@n against "
    "T (slope <= 0: exploration collapse). Writes OUT/temperature.json and "
    "OUT/temperature.png.",
}


def register_analyze_command(subparsers: Any) -> None:
    """Add ``analyze`` with the subcommands entropy, coverage and temperature; each sets
    ``func`` (a callable taking the parsed args and returning an exit status)."""
    p = subparsers.add_parser(
        "analyze",
        help="the paper's analyses: per-layer entropy, top-k coverage, accuracy-temperature slope",
        description="Reproduce the LED paper's analyses on a GGUF model. Prompts follow "
        "`led-cpp eval` (instruction + question through the chat template). Plots need "
        "matplotlib (pip install 'led_cpp[plot]'); without it only the JSON is written.",
    )
    sub = p.add_subparsers(dest="analysis", required=True, metavar="{entropy,coverage,temperature}")
    for name in an.ANALYSES:
        q = sub.add_parser(name, help=_HELP[name], description=_DESCRIPTIONS[name])
        _common(q, name)
        q.set_defaults(func=run_analyze_command)


def _common(p: argparse.ArgumentParser, name: str) -> None:
    add_model_arguments(p)
    p.add_argument("--dataset", required=True, help="gsm8k | math500 | aime2024 | aime2025 | FILE.json")
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--out", required=True, help="output directory")
    if name == "temperature":
        p.add_argument("--n", type=int, default=16, help="samples per problem (16)")
        p.add_argument(
            "--temperatures",
            default=",".join(f"{t:g}" for t in an.TEMPERATURES),
            help="comma-separated temperatures (0.1,0.3,0.6)",
        )
        p.add_argument(
            "--max-tokens", type=int, default=2048, help="new tokens per sample (2048; the authors used 32768)"
        )
        p.add_argument(
            "--verify-timeout", type=float, default=5.0, help="seconds per answer check before it counts as wrong (5)"
        )
    else:
        p.add_argument(
            "--max-tokens",
            type=int,
            default=an.DEFAULT_ANALYSIS_MAX_TOKENS,
            help=f"new tokens per problem ({an.DEFAULT_ANALYSIS_MAX_TOKENS})",
        )
        p.add_argument(
            "--temperature",
            type=float,
            default=0.6,
            help="sampling temperature of the analysed generations (0.6; top-k 20, top-p 0.95)",
        )
    p.add_argument("--seed", type=int, default=0, help="base seed (0)")
    p.add_argument("--n-parallel", type=int, help="sequences decoded together")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _parse_temperatures(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--temperatures: not a comma-separated list of numbers: {text!r}") from None


def _precheck(args: argparse.Namespace) -> None:
    """Refuse a bad dataset, limit, temperatures or (temperature) --out before loading the model."""
    if args.max_tokens < 1:
        raise ValueError("--max-tokens must be at least 1")
    problems, _ = ev.select_problems(args.dataset, args.limit)
    if args.analysis == "temperature":
        an.check_temperature_runs(
            args.out,
            problems,
            model_name=model_name(args),
            temperatures=_parse_temperatures(args.temperatures),
            n=args.n,
            limit=args.limit,
            seed=args.seed,
            max_tokens=args.max_tokens,
        )


def run_analyze_command(args: argparse.Namespace) -> int:
    _precheck(args)
    model = load_model(args)
    common = dict(
        out_dir=args.out,
        limit=args.limit,
        max_tokens=args.max_tokens,
        seed=args.seed,
        n_parallel=args.n_parallel,
        progress=not args.no_progress,
    )
    if args.analysis == "entropy":
        data = an.analyze_entropy(model, args.dataset, temperature=args.temperature, **common)
    elif args.analysis == "coverage":
        data = an.analyze_coverage(model, args.dataset, temperature=args.temperature, **common)
    else:
        data = an.analyze_temperature(
            model,
            args.dataset,
            n=args.n,
            temperatures=_parse_temperatures(args.temperatures),
            verify_timeout=args.verify_timeout,
            **common,
        )
    print(an.format_report(data))
    written = [os.path.join(args.out, f"{args.analysis}.json")]
    if data.get("png"):
        written.append(data["png"])
    print("wrote: " + ", ".join(written))
    return 0
