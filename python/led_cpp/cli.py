"""The ``led-cpp`` command: generate, chat, eval, compare, analyze."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from .config import LED_PROJECTION_HELP, LED_PROJECTIONS, LEDConfig, SamplingConfig


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="GGUF file (default: the bundled Gemma 3 270M of the demo extra)")
    parser.add_argument("--n-ctx", type=int, default=4096, help="context size (4096)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (all cores)")
    parser.add_argument("--n-gpu-layers", type=int, default=-1, help="layers to offload to a GPU build (-1 = all)")
    parser.add_argument("--verbose", action="store_true", help="show llama.cpp's log")
    parser.add_argument("--led-projection", choices=LED_PROJECTIONS, default="auto", help=LED_PROJECTION_HELP)


def add_chat_template_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chat-template-kwargs", metavar="JSON",
                        help="variables for the chat template as a JSON object, e.g. "
                        "'{\"enable_thinking\": false}' or '{\"reasoning_effort\": \"high\"}'")
    parser.add_argument("--no-think", action="store_true",
                        help="shorthand for --chat-template-kwargs '{\"enable_thinking\": false}'")


def chat_template_kwargs_from(args: argparse.Namespace) -> dict:
    """--chat-template-kwargs (and --no-think) as a checked dict; ValueError names what is wrong."""
    from .chat import check_template_kwargs

    kwargs = {}
    if args.chat_template_kwargs is not None:
        try:
            kwargs = json.loads(args.chat_template_kwargs)
        except json.JSONDecodeError as error:
            raise ValueError(f"--chat-template-kwargs is not valid JSON ({error}); give an object such as "
                             "'{\"enable_thinking\": false}'") from None
        if not isinstance(kwargs, dict):
            raise ValueError(f"--chat-template-kwargs must be a JSON object such as '{{\"enable_thinking\": false}}', "
                             f"not a JSON {type(kwargs).__name__}")
    if args.no_think:
        if kwargs.get("enable_thinking", False) is not False:
            raise ValueError("--no-think contradicts enable_thinking in --chat-template-kwargs; give one of them")
        kwargs["enable_thinking"] = False
    return check_template_kwargs(kwargs, "--chat-template-kwargs")


def load_model(args: argparse.Namespace):
    from .default_model import default_model_path
    from .model import Model

    path = args.model if args.model else default_model_path()
    return Model(path, n_ctx=args.n_ctx, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers, verbose=args.verbose,
                 led_projection=args.led_projection)


def _generate(args: argparse.Namespace) -> int:
    template_kwargs = chat_template_kwargs_from(args)
    model = load_model(args)
    if args.led:
        config = LEDConfig(temperature=args.temperature, d=args.d, k=args.k, exploit=not args.no_exploit)
    else:
        config = SamplingConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p)
    use_chat = model.chat_template is not None and not args.raw
    if template_kwargs and not use_chat:
        raise ValueError("--chat-template-kwargs/--no-think need the model's chat template, but "
                         + ("--raw was given" if args.raw else f"{model.path.name} has none"))
    prompt = [{"role": "user", "content": args.prompt}] if use_chat else args.prompt
    generation = model.generate(prompt, config=config, max_tokens=args.max_tokens, seed=args.seed,
                                stop=args.stop or (), chat_template_kwargs=template_kwargs if use_chat else None)
    with generation:
        for piece in generation:
            sys.stdout.write(piece)
            sys.stdout.flush()
        result = generation.result
    sys.stdout.write("\n")
    timings = result.timings
    line = (f"[{model.path.name}: {timings.prompt_tokens} prompt tokens at {timings.prompt_tokens_per_second:.1f} tok/s, "
            f"{timings.decode_tokens} generated at {timings.decode_tokens_per_second:.1f} tok/s, "
            f"finish: {result.finish_reason}")
    if args.led:
        line += f", explored {result.explored_steps}/{len(result.tokens)} steps"
    print(line + "]", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="led-cpp", description="Latent Exploration Decoding for GGUF models.")
    subparsers = parser.add_subparsers(dest="command", required=True)

    generate = subparsers.add_parser("generate", help="generate text from a prompt (text to stdout, speed to stderr)")
    generate.add_argument("prompt")
    _add_model_arguments(generate)
    generate.add_argument("--max-tokens", type=int, default=256)
    generate.add_argument("--temperature", type=float, default=0.6, help="0 = greedy (0.6)")
    generate.add_argument("--top-k", type=int, default=20)
    generate.add_argument("--top-p", type=float, default=0.95)
    generate.add_argument("--min-p", type=float, default=0.0)
    generate.add_argument("--seed", type=int, default=None)
    generate.add_argument("--stop", action="append", help="stop string (repeatable)")
    generate.add_argument("--raw", action="store_true", help="do not apply the model's chat template")
    add_chat_template_arguments(generate)
    generate.add_argument("--led", action="store_true", help="decode with LED (authors' defaults)")
    generate.add_argument("--d", type=int, default=8, help="LED depths (8)")
    generate.add_argument("--k", type=int, default=8, help="LED candidates (8)")
    generate.add_argument("--no-exploit", action="store_true", help="LED without the confidence gate")
    generate.set_defaults(func=_generate)

    from .cli_chat import register_chat_command

    register_chat_command(subparsers)
    try:
        from .cli_eval import register_eval_commands
    except ImportError:  # pragma: no cover - the evaluation extra's modules ship with the package
        register_eval_commands = None
    if register_eval_commands is not None:
        register_eval_commands(subparsers)
    try:
        from .server.cli import register_serve_command
    except ImportError:
        register_serve_command = None
    if register_serve_command is not None:
        register_serve_command(subparsers, _add_model_arguments)
    try:
        from .cli_analyze import register_analyze_command
    except ImportError:
        register_analyze_command = None
    if register_analyze_command is not None:
        register_analyze_command(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError, TypeError) as error:
        print(f"led-cpp: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
