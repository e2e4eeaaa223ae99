"""``led-cpp chat``: an interactive terminal chat with history, streamed tokens and the
reasoning shown apart from the answer."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, TextIO

from .cli_decoding import (
    add_chat_template_arguments,
    add_decoding_arguments,
    chat_template_kwargs_from,
    decoding_config,
)
from .cli_model import add_model_arguments, load_model

HELP = "/reset clears the conversation, /exit or Ctrl-D leaves, Ctrl-C stops an answer"
DIM, RESET = "\033[2m", "\033[0m"


class ReasoningView:
    """Writes streamed pieces: the reasoning dimmed (or hidden) under a header, markers removed,
    then the answer."""

    def __init__(self, out: TextIO, markers, hide: bool, colour: bool) -> None:
        self.out, self.markers, self.hide, self.colour = out, markers, hide, colour
        self.in_reasoning = False
        self.answer_started = False

    def write(self, text: str, reasoning: bool) -> None:
        if reasoning:
            for marker in self.markers:
                text = text.replace(marker, "")
            if not self.in_reasoning:
                self.in_reasoning = True
                self.out.write("[hidden reasoning…]" if self.hide else "[reasoning]\n")
                text = text.lstrip()
            if not self.hide and text:
                self.out.write(f"{DIM}{text}{RESET}" if self.colour else text)
        else:
            if self.in_reasoning and not self.answer_started:
                self.out.write("\n[answer]\n")
                text = text.lstrip()
            self.answer_started = self.answer_started or bool(text)
            self.out.write(text)
        self.out.flush()


def _chat(args: argparse.Namespace) -> int:
    template_kwargs = chat_template_kwargs_from(args)
    config = decoding_config(args)
    model = load_model(args)
    if model.chat_template is None:
        raise ValueError(f"{model.path.name} has no chat template; led-cpp chat needs one (use led-cpp generate)")
    # A background job starts with SIGINT ignored; Ctrl-C must stop the answer.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = sys.stdout
    colour = out.isatty() and not args.no_colour
    system: list[dict] = [{"role": "system", "content": args.system}] if args.system else []
    history: list[dict] = list(system)
    print(f"led-cpp chat with {model.path.name} ({'LED' if args.led else 'standard sampling'}). {HELP}.", flush=True)
    seed = args.seed
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(flush=True)
            return 0
        except KeyboardInterrupt:
            print(f"\n({HELP})", flush=True)
            continue
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit", "/bye"):
            return 0
        if text == "/reset":
            history = list(system)
            print("(conversation cleared)", flush=True)
            continue
        if text.startswith("/"):
            print(f"(unknown command {text.split()[0]}; {HELP})", flush=True)
            continue
        messages = history + [{"role": "user", "content": text}]
        view = ReasoningView(
            out, [marker for marker in model._markers_for(config) if marker], args.hide_reasoning, colour
        )
        # Each turn starts from the KV of the conversation so far: only the new turn is evaluated.
        generation = model.generate(
            messages,
            config=config,
            max_tokens=args.max_tokens,
            seed=seed,
            chat_template_kwargs=template_kwargs,
            cache_prompt=True,
        )
        if seed is not None:
            seed += 1
        try:
            with generation:
                for piece, reasoning in generation.parts():
                    view.write(piece, reasoning)
                result = generation.result
        except KeyboardInterrupt:
            generation.close()
            print("\n(stopped)", flush=True)
            continue  # an interrupted answer does not enter the history
        print(flush=True)
        if args.stats:
            timings = result.timings
            print(
                f"[{timings.prompt_tokens} prompt tokens, {timings.decode_tokens} generated at "
                f"{timings.decode_tokens_per_second:.1f} tok/s, {result.reasoning_tokens} reasoning, "
                f"finish: {result.finish_reason}]",
                flush=True,
            )
        history = messages + [{"role": "assistant", "content": result.answer}]


def register_chat_command(subparsers: Any) -> None:
    chat = subparsers.add_parser("chat", help="interactive chat in the terminal (history, streaming, reasoning apart)")
    add_model_arguments(chat)
    add_decoding_arguments(chat)
    add_chat_template_arguments(chat)
    chat.add_argument("--system", default=None, help="system message")
    chat.add_argument("--max-tokens", type=int, default=2048, help="per answer (2048)")
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--hide-reasoning", action="store_true", help="do not show the reasoning segment")
    chat.add_argument("--no-colour", action="store_true", help="do not dim the reasoning")
    chat.add_argument("--stats", action="store_true", help="a line of token counts and speed after each answer")
    chat.set_defaults(func=_chat)
