"""The README's evaluation and entropy tables, generated from the committed run artefacts under
results/ (never copied by hand).

    python tools/make_tables.py            # print both tables
    python tools/make_tables.py --write    # rewrite them in README.md between their markers
    python tools/make_tables.py --check    # exit 1 if README.md differs (tests/test_results_tables.py)

Layout (one directory per run, as `led-cpp eval` and `led-cpp analyze` write them):

    results/gsm8k-<limit>x8/<model>/<config>/ meta.json, summary.json, samples.jsonl
    results/entropy-gsm8k-<limit>/<model>/    entropy.json (+ entropy.png)

made by, with MODEL the GGUF file, <model> its name (SmolLM2-135M-Instruct-Q4_1,
gemma-3-270m-Q4_K_M), <config> standard or led and <limit> 50 (SmolLM2) or 20 (Gemma 3):

    led-cpp eval -m MODEL --dataset gsm8k --config standard --n 8 --limit <limit> --max-tokens 384 \\
        --threads 2 --out results/gsm8k-<limit>x8/<model>/standard
    led-cpp eval -m MODEL --dataset gsm8k --config led --n 8 --limit <limit> --max-tokens 384 \\
        --threads 2 --out results/gsm8k-<limit>x8/<model>/led
    led-cpp analyze entropy -m MODEL --dataset gsm8k --limit 20 --max-tokens 256 --threads 2 \\
        --out results/entropy-gsm8k-20/<model>

(Gemma 3's entropy run has --limit 10, in results/entropy-gsm8k-10/: its per-layer statistics
project all 18 layers through a 262k-token head at every token.)

An eval run stopped early resumes with the same command. A run directory without summary.json
(unfinished) gets a row that says how far it got. Commit samples.jsonl with its run while it is
small (under ~1 MB).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
README = ROOT / "README.md"
MARKERS = {
    "evaluation": ("<!-- results:evaluation:begin -->", "<!-- results:evaluation:end -->"),
    "entropy": ("<!-- results:entropy:begin -->", "<!-- results:entropy:end -->"),
}


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _config_label(name: str, params: dict) -> str:
    """The config as a reader needs it: standard sampling's three settings, LED's choices."""
    if params.get("type") == "SamplingConfig":
        return f"standard (T {params['temperature']:g}, top-k {params['top_k']}, top-p {params['top_p']:g})"
    if params.get("type") == "LEDConfig":
        gate = "gate on" if params.get("exploit", True) else "gate off"
        return f"LED (d {params['d']}, k {params['k']}, {gate}, T {params['temperature']:g})"
    return name


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def evaluation_rows(results: Path = RESULTS) -> list[list[str]]:
    rows = []
    for meta_path in sorted(results.glob("gsm8k-*/*/*/meta.json")):
        run = meta_path.parent
        meta = _read(meta_path)
        identity = meta["identity"]
        model = identity["model"].removesuffix(".gguf")
        config = _config_label(meta.get("config_label", ""), identity["config"])
        summary_path = run / "summary.json"
        if not summary_path.exists():
            samples = run / "samples.jsonl"
            done = len(samples.read_text(encoding="utf-8").splitlines()) if samples.exists() else 0
            rows.append([model, config, f"unfinished: {done} samples written"] + [""] * 5)
            continue
        s = _read(summary_path)
        n = s["n"]
        correct = sum(s["correct_counts"])
        flexible = sum(s["flexible_correct_counts"])
        rows.append(
            [
                model,
                config,
                f"{_percent(s['pass@1'])} / {_percent(s['pass@k'][str(n)])}",
                f"{_percent(s['flexible_pass@1'])} / {_percent(s['flexible_pass@k'][str(n)])}",
                f"{correct} / {flexible} of {s['num_samples']}",
                f"{s['num_problems']} × {n}",
                f"{s['mean_tokens']:.1f}",
                f"{s['mean_explore_rate']:.3f}",
            ]
        )
    return rows


def evaluation_table(results: Path = RESULTS) -> str:
    header = [
        "model",
        "config",
        "strict pass@1 / pass@n",
        "flexible pass@1 / pass@n",
        "correct samples strict / flexible",
        "problems × n",
        "mean tokens",
        "explore rate",
    ]
    return _markdown(header, evaluation_rows(results))


def entropy_rows(results: Path = RESULTS) -> list[list[str]]:
    rows = []
    for path in sorted(results.glob("entropy-*/*/entropy.json")):
        data = _read(path)
        means = data["mean_entropy"]
        top = data["max_entropy_layer"]
        low = min(range(len(means)), key=lambda il: means[il])
        rows.append(
            [
                data["model"].removesuffix(".gguf"),
                str(data["num_problems"]),
                str(data["num_tokens"]),
                f"{means[0]:.3f}",
                f"{means[top]:.3f} (layer {top})",
                f"{means[low]:.3f} (layer {low})",
                f"{data['final_layer_entropy']:.3f} (layer {len(means) - 1})",
                f"{data['top_layer_change']:+.3f}",
            ]
        )
    return rows


def entropy_table(results: Path = RESULTS) -> str:
    header = ["model", "problems", "tokens", "layer 0", "highest", "lowest", "final layer", "final − layer below"]
    return _markdown(header, entropy_rows(results))


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "(no runs under results/ yet)"
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def tables(results: Path = RESULTS) -> dict[str, str]:
    return {"evaluation": evaluation_table(results), "entropy": entropy_table(results)}


def render(readme: str, generated: dict[str, str]) -> str:
    """readme with every marked section replaced by its generated table."""
    for name, (begin, end) in MARKERS.items():
        start, stop = readme.find(begin), readme.find(end)
        if start < 0 or stop < start:
            raise ValueError(f"README.md lacks the markers {begin} ... {end}")
        readme = readme[: start + len(begin)] + "\n" + generated[name] + "\n" + readme[stop:]
    return readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the tables in README.md")
    group.add_argument("--check", action="store_true", help="exit 1 if README.md's tables are stale")
    args = parser.parse_args()
    generated = tables()
    readme = README.read_text(encoding="utf-8")
    wanted = render(readme, generated)
    if args.write:
        README.write_text(wanted, encoding="utf-8")
    elif args.check:
        if wanted != readme:
            print(
                "README.md's result tables differ from results/: run python tools/make_tables.py --write",
                file=sys.stderr,
            )
            return 1
    else:
        for name, table in generated.items():
            print(f"{name}:\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
