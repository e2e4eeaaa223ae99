"""``led-cpp eval``, ``compare`` and ``eval-merge``: accuracy runs (see led_cpp.evaluation),
in this process, on a Ray cluster (--ray) or in shards (--shard K/N, then eval-merge)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

from . import evaluation as ev
from .cli_decoding import (
    LED_FIELDS,
    add_chat_template_arguments,
    add_led_arguments,
    chat_template_kwargs_from,
    flag,
    given,
)
from .cli_model import add_model_arguments, load_model, model_kwargs, model_name, model_path
from .evaluation.ray import RayBackend
from .evaluation.shards import Shard, merge


def register_eval_commands(subparsers: Any) -> None:
    """Add the ``eval``, ``compare`` and ``eval-merge`` subcommands; each sets ``func`` (a callable
    taking the parsed args and returning an exit status)."""
    p = subparsers.add_parser(
        "eval",
        help="accuracy (pass@k) of one decoding config on a benchmark",
        description="Sample --n answers per problem, check them against the gold answers "
        "and write OUT/samples.jsonl (one record per sample), OUT/summary.json and a table. "
        "Rerunning with the same --out resumes; an --out holding a different run is refused.",
    )
    _common(p)
    p.add_argument(
        "--config",
        default="led",
        metavar="SPEC",
        help="led | standard | greedy, optionally with overrides "
        "name[:key=value]... (e.g. led:depth_rule=random); default led",
    )
    add_led_arguments(
        p.add_argument_group("LED options (with --config led; defaults: the authors')"),
        {
            "think_end": "the end-of-think marker (default: the model's own); also where the answer "
            "region starts, for every config"
        },
    )
    p.set_defaults(func=run_eval_command)

    c = subparsers.add_parser(
        "compare",
        help="several decoding configs on the same problems and seeds",
        description="Run every config of --configs like `eval` (each in OUT/<config>/, "
        "resumable) on the same problems with the same per-problem seeds, then print one "
        "table. A config is name[:key=value]... with name led, standard or greedy; "
        "`led:depth_rule=fixed:3` is short for `led:depth_rule=fixed:fixed_depth=3`.",
    )
    _common(c)
    c.add_argument(
        "--configs",
        required=True,
        metavar="SPEC,SPEC,...",
        help="comma-separated specs, e.g. standard,led,led:depth_rule=random,led:depth_rule=fixed:3",
    )
    c.set_defaults(func=run_compare_command)

    m = subparsers.add_parser(
        "eval-merge",
        help="merge the --shard K/N outputs of one eval or compare run",
        description="Check that DIRs are the distinct, complete shards of one run (same model, "
        "dataset, config, n, seed, max tokens and --limit) and write OUT as the unsharded run "
        "would have: samples.jsonl, summary.json and the table. Missing problems are listed "
        "and nothing is written. DIRs of `compare --shard` runs are merged config by config.",
    )
    m.add_argument("dirs", nargs="+", metavar="DIR", help="shard output directories")
    m.add_argument("--out", required=True, help="output directory of the merged run")
    m.set_defaults(func=run_merge_command)


def _common(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--dataset", required=True, help="gsm8k | math500 | aime2024 | aime2025 | FILE.json")
    p.add_argument("--out", required=True, help="output directory (resumed if it exists)")
    p.add_argument("--n", type=int, help="samples per problem (default 16; 1 for greedy)")
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--temperature", type=float, help="temperature of configs that set none (default 0.6)")
    p.add_argument(
        "--max-tokens", type=int, default=2048, help="new tokens per sample (default 2048; the authors used 32768)"
    )
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--n-parallel", type=int, help="sequences decoded together")
    p.add_argument(
        "--verify-timeout", type=float, default=5.0, help="seconds per answer check before it counts as wrong (5)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--shard",
        type=_shard,
        metavar="K/N",
        help="run only the K-th of N shares of the problems into --out (merge the shards with `led-cpp eval-merge`)",
    )
    r = p.add_argument_group('Ray (pip install "led_cpp[ray]")')
    r.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on a Ray cluster: no ADDRESS starts a local one, `auto` joins this "
        "node's cluster, HOST:PORT or ray://HOST:PORT a remote one",
    )
    r.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="models loaded, one per Ray worker (default: as many as the cluster's CPUs/GPUs fit)",
    )
    r.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs each worker holds (default 0)")
    r.add_argument(
        "--threads-per-worker",
        type=int,
        metavar="T",
        help="llama.cpp threads (and reserved CPUs) per worker (default: --threads, "
        "else the cluster's CPUs shared out; 1 with GPUs)",
    )
    add_chat_template_arguments(p)


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fail(message: str) -> int:
    print(f"led-cpp: error: {message}", file=sys.stderr)
    return 2


def _default_n(args: argparse.Namespace, specs: list) -> int:
    if args.n is not None:
        return args.n
    return 1 if all(s.name == "greedy" for s in specs) else 16


def _precheck(args: argparse.Namespace, specs: list, n: int, dirs: list) -> None:
    """Refuse bad configs, a bad dataset or a mismatching --out before the model is loaded."""
    if len(set(dirs)) != len(dirs):
        raise ValueError("the same config is listed twice")
    problems, _ = ev.select_problems(args.dataset, args.limit)
    for spec, out in zip(specs, dirs):
        ev.check_run(
            out,
            problems,
            spec,
            model_name=model_name(args),
            n=n,
            limit=args.limit,
            seed=args.seed,
            max_tokens=args.max_tokens,
            think_end=getattr(args, "think_end", None),
            chat_template_kwargs=args.template_kwargs,
            shard=args.shard,
        )
    if args.ray is None:
        ray_flags = [f for f in ("workers", "gpus_per_worker", "threads_per_worker") if getattr(args, f) is not None]
        if ray_flags:
            raise ValueError(", ".join("--" + f.replace("_", "-") for f in ray_flags) + " need --ray")


def _ray_backend(args: argparse.Namespace) -> RayBackend:
    return RayBackend(
        model_path(args),
        hf_repo=args.hf_repo,
        address=None if args.ray == "local" else args.ray,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker or 0.0,
        threads_per_worker=args.threads_per_worker or args.threads,
        model_kwargs=model_kwargs(args),
    )


def _print_workers(report: dict) -> None:
    """Each Ray worker's node, device and throughput, to stderr."""
    for i, w in enumerate(report.get("worker_stats", [])):
        print(
            f"worker {i}: {w['node']} pid {w['pid']}, {w['device']}, {w['model']}: "
            f"{w.get('samples', 0)} samples, {w.get('tokens_per_second', 0.0):.1f} tok/s",
            file=sys.stderr,
        )
    if report.get("retried_batches"):
        print(f"retried batches of dead workers: {report['retried_batches']}", file=sys.stderr)


def _run(args: argparse.Namespace, specs: list, dirs: list, call: Callable[[Any, int], list]) -> int:
    n = _default_n(args, specs)
    try:
        args.template_kwargs = chat_template_kwargs_from(args)
        _precheck(args, specs, n, dirs)
    except (ValueError, FileNotFoundError, TypeError) as e:  # bad spec, dataset or --out
        return _fail(str(e))
    try:
        if args.ray is not None:
            with _ray_backend(args) as backend:
                summaries = call(backend, n)
                _print_workers(backend.report())
        else:
            summaries = call(load_model(args), n)
    except (ev.RunMismatchError, ImportError, ConnectionError, TimeoutError) as e:
        return _fail(str(e))
    print(ev.format_table(summaries))
    print(f"results: {args.out}")
    return 0


def run_eval_command(args: argparse.Namespace) -> int:
    try:
        spec = ev.parse_config_spec(args.config, temperature=args.temperature)
        led = given(args, LED_FIELDS)
        if spec.name != "led":
            led.pop("think_end", None)  # the answer marker applies to every config
            if led:
                raise ValueError(f"{', '.join(flag(k) for k in led)}: LED options need --config led")
            led = {}
        clash = [k for k in led if k in dict(spec.params)]
        if clash:
            raise ValueError(f"{', '.join(clash)} set both in --config and as an option")
        spec = spec.with_params(**led)
        if (
            spec.name == "led"
            and dict(spec.params).get("depth_rule") == "fixed"
            and "fixed_depth" not in dict(spec.params)
        ):
            raise ValueError("--depth-rule fixed needs --fixed-depth")
    except ValueError as e:
        return _fail(str(e))

    def call(model: Any, n: int) -> list:
        return [
            ev.evaluate(
                model,
                args.dataset,
                spec,
                n=n,
                limit=args.limit,
                max_tokens=args.max_tokens,
                seed=args.seed,
                out_dir=args.out,
                progress=not args.no_progress,
                think_end=args.think_end,
                model_name=model_name(args),
                verify_timeout=args.verify_timeout,
                n_parallel=args.n_parallel,
                chat_template_kwargs=args.template_kwargs,
                shard=args.shard,
            )
        ]

    return _run(args, [spec], [args.out], call)


def run_compare_command(args: argparse.Namespace) -> int:
    try:
        specs = [ev.parse_config_spec(s, temperature=args.temperature) for s in args.configs.split(",") if s.strip()]
        if not specs:
            raise ValueError("--configs is empty")
    except ValueError as e:
        return _fail(str(e))

    def call(model: Any, n: int) -> list:
        return ev.compare(
            model,
            args.dataset,
            specs,
            n=n,
            limit=args.limit,
            max_tokens=args.max_tokens,
            seed=args.seed,
            out_dir=args.out,
            progress=not args.no_progress,
            model_name=model_name(args),
            verify_timeout=args.verify_timeout,
            n_parallel=args.n_parallel,
            chat_template_kwargs=args.template_kwargs,
            shard=args.shard,
        )

    return _run(args, specs, [os.path.join(args.out, s.dirname) for s in specs], call)


def run_merge_command(args: argparse.Namespace) -> int:
    try:
        summaries = merge(args.dirs, args.out)
    except ValueError as e:  # ShardMergeError, RunMismatchError
        return _fail(str(e))
    print(ev.format_table(summaries))
    print(f"results: {args.out}")
    return 0
