"""``led-cpp generate``: one completion of a prompt, the text to stdout and the speed to stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli_decoding import (
    add_chat_template_arguments,
    add_decoding_arguments,
    chat_template_kwargs_from,
    decoding_config,
)
from .cli_model import add_model_arguments, load_model


def register_generate_command(subparsers: Any) -> None:
    generate = subparsers.add_parser("generate", help="generate text from a prompt (text to stdout, speed to stderr)")
    generate.add_argument("prompt")
    add_model_arguments(generate)
    add_decoding_arguments(generate)
    generate.add_argument("--max-tokens", type=int, default=256, help="new tokens (256)")
    generate.add_argument("--seed", type=int, default=None)
    generate.add_argument("--stop", action="append", help="stop string (repeatable)")
    generate.add_argument("--raw", action="store_true", help="do not apply the model's chat template")
    add_chat_template_arguments(generate)
    generate.set_defaults(func=run_generate_command)


def run_generate_command(args: argparse.Namespace) -> int:
    template_kwargs = chat_template_kwargs_from(args)
    config = decoding_config(args)
    model = load_model(args)
    use_chat = model.chat_template is not None and not args.raw
    if template_kwargs and not use_chat:
        raise ValueError(
            "--chat-template-kwargs/--no-think need the model's chat template, but "
            + ("--raw was given" if args.raw else f"{model.path.name} has none")
        )
    prompt = [{"role": "user", "content": args.prompt}] if use_chat else args.prompt
    generation = model.generate(
        prompt,
        config=config,
        max_tokens=args.max_tokens,
        seed=args.seed,
        stop=args.stop or (),
        chat_template_kwargs=template_kwargs if use_chat else None,
    )
    with generation:
        for piece in generation:
            sys.stdout.write(piece)
            sys.stdout.flush()
        result = generation.result
    sys.stdout.write("\n")
    timings = result.timings
    line = (
        f"[{model.path.name}: {timings.prompt_tokens} prompt tokens at "
        f"{timings.prompt_tokens_per_second:.1f} tok/s, {timings.decode_tokens} generated at "
        f"{timings.decode_tokens_per_second:.1f} tok/s, finish: {result.finish_reason}"
    )
    if args.led:
        line += f", explored {result.explored_steps}/{len(result.tokens)} steps"
    print(line + "]", file=sys.stderr)
    return 0
