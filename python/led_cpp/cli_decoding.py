"""The decoding options of ``led-cpp``'s commands: standard sampling or LED, and the chat
template's variables.

The sampling and LED flags are derived from the fields of :class:`SamplingConfig` and
:class:`LEDConfig` (``top_k`` is ``--top-k``; a bool field that defaults to True is
``--no-NAME``), so a new field is a new flag. Every flag defaults to None: what is not given
keeps the dataclass's default, shown in the help.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from .chat import check_template_kwargs
from .config import DEPTH_RULES, LAYER_COUNTINGS, LEDConfig, SamplingConfig
from .evaluation.config_spec import field_types

#: What each field's flag does (a field missing here is still a flag, with a plain help).
FIELD_HELP = {
    "temperature": "0 = greedy",
    "top_k": "candidates kept before top-p and min-p; 0 keeps the whole vocabulary",
    "top_p": "nucleus: the smallest set of candidates with this much probability",
    "min_p": "drop candidates below this share of the top candidate's probability",
    "d": "LED: depths read, the final one included",
    "k": "LED: candidate tokens from the final layer",
    "ln": "LED: apply the final norm to intermediate depths",
    "exploit": "LED: always explore (no confidence gate)",
    "think_only": "LED: explore after the end-of-think marker too",
    "think_end": "LED: the end-of-think marker (default: the model's own)",
    "depth_rule": "LED: how the depth is chosen",
    "fixed_depth": "LED: the depth of --depth-rule fixed",
    "layer_counting": "LED: which layers count as depths: paper, or reference for the authors' code's set",
}
CHOICES = {"depth_rule": DEPTH_RULES, "layer_counting": LAYER_COUNTINGS}

SAMPLING_FIELDS = tuple(field_types(SamplingConfig))
#: LEDConfig's fields but temperature, which both configs share.
LED_FIELDS = tuple(name for name in field_types(LEDConfig) if name != "temperature")


def flag(name: str, config_class: type = LEDConfig) -> str:
    """The command-line flag of a config field: --top-k, --ln, --no-exploit."""
    default = {f.name: f.default for f in dataclasses.fields(config_class)}.get(name)
    return f"--{'no-' if default is True else ''}{name.replace('_', '-')}"


def _add_field_arguments(parser: Any, config_class: type, names: tuple, help_overrides: dict) -> None:
    """A flag per field in ``names`` on ``parser`` (a parser or an argument group)."""
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    types = field_types(config_class)
    for name in names:
        default, kind = defaults[name], types[name]
        text = help_overrides.get(name, FIELD_HELP.get(name, f"{config_class.__name__}.{name}"))
        if kind is bool:
            parser.add_argument(flag(name, config_class), dest=name, action="store_const", const=not default, help=text)
            continue
        shown = "" if default is None else f" ({default})"
        parser.add_argument(
            flag(name, config_class), dest=name, type=kind, choices=CHOICES.get(name), help=text + shown
        )


def add_led_arguments(parser: Any, help_overrides: dict | None = None) -> None:
    """A flag per LEDConfig field but temperature (--d, --k, --ln, --no-exploit, ...)."""
    _add_field_arguments(parser, LEDConfig, LED_FIELDS, help_overrides or {})


def add_decoding_arguments(
    parser: argparse.ArgumentParser,
    *,
    sampling: bool = True,
    led_help: str = "decode with Latent Exploration Decoding",
    help_overrides: dict | None = None,
) -> None:
    """--led and the LED flags; with ``sampling`` also SamplingConfig's (--temperature, --top-k,
    --top-p, --min-p). ``help_overrides``: a field's help where this command differs."""
    group = parser.add_argument_group("decoding (defaults: the LED authors')")
    if sampling:
        _add_field_arguments(group, SamplingConfig, SAMPLING_FIELDS, {})
    group.add_argument("--led", action="store_true", help=led_help)
    add_led_arguments(group, help_overrides)


def given(args: argparse.Namespace, names: tuple) -> dict:
    """The options among ``names`` that were given on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def led_options(args: argparse.Namespace) -> dict:
    """The LED fields given (--d, --k, ...); ValueError when some are given without --led."""
    led = given(args, LED_FIELDS)
    if led and not args.led:
        raise ValueError(f"{', '.join(flag(name) for name in led)}: LED options need --led")
    return led


def decoding_config(args: argparse.Namespace) -> SamplingConfig | LEDConfig:
    """The LEDConfig (with --led) or SamplingConfig the options give; ValueError names an option
    that the other config would take."""
    sampling, led = given(args, SAMPLING_FIELDS), led_options(args)
    if not args.led:
        return SamplingConfig(**sampling)
    temperature = sampling.pop("temperature", None)
    if sampling:
        names = ", ".join(flag(name, SamplingConfig) for name in sampling)
        raise ValueError(f"{names}: standard sampling options, not used by --led")
    return LEDConfig(**led) if temperature is None else LEDConfig(temperature=temperature, **led)


def add_chat_template_arguments(parser: argparse.ArgumentParser) -> None:
    """--chat-template-kwargs JSON and its shorthand --no-think."""
    parser.add_argument(
        "--chat-template-kwargs",
        metavar="JSON",
        help="variables for the chat template as a JSON object, e.g. "
        '\'{"enable_thinking": false}\' or \'{"reasoning_effort": "high"}\'',
    )
    parser.add_argument(
        "--no-think", action="store_true", help="shorthand for --chat-template-kwargs '{\"enable_thinking\": false}'"
    )


def chat_template_kwargs_from(args: argparse.Namespace) -> dict:
    """--chat-template-kwargs (and --no-think) as a checked dict; ValueError names what is wrong."""
    kwargs = {}
    if args.chat_template_kwargs is not None:
        try:
            kwargs = json.loads(args.chat_template_kwargs)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"--chat-template-kwargs is not valid JSON ({error}); give an object such as "
                "'{\"enable_thinking\": false}'"
            ) from None
        if not isinstance(kwargs, dict):
            raise ValueError(
                f"--chat-template-kwargs must be a JSON object such as '{{\"enable_thinking\": false}}', "
                f"not a JSON {type(kwargs).__name__}"
            )
    if args.no_think:
        if kwargs.get("enable_thinking", False) is not False:
            raise ValueError("--no-think contradicts enable_thinking in --chat-template-kwargs; give one of them")
        kwargs["enable_thinking"] = False
    return check_template_kwargs(kwargs, "--chat-template-kwargs")
