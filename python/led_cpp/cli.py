"""The ``led-cpp`` command: generate, chat, serve, eval, compare, eval-merge, analyze."""

from __future__ import annotations

import argparse
import sys

from .cli_analyze import register_analyze_command
from .cli_chat import register_chat_command
from .cli_eval import register_eval_commands
from .cli_generate import register_generate_command
from .server.cli import register_serve_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="led-cpp", description="Latent Exploration Decoding for GGUF models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register_generate_command(subparsers)
    register_chat_command(subparsers)
    register_eval_commands(subparsers)
    register_serve_command(subparsers)
    register_analyze_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
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
