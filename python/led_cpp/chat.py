"""Chat templates: the Jinja template stored in the GGUF, rendered in a sandbox."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Mapping, Sequence


def check_messages(messages: Any) -> list:
    """The messages as a list of {"role": str, "content": str}, or a ValueError naming the fault."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"message {index} must be a dict with 'role' and 'content', not {type(message).__name__}")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role:
            raise ValueError(f"message {index} needs a non-empty string 'role'")
        if not isinstance(content, str):
            raise ValueError(f"message {index} needs a string 'content'")
        checked.append(dict(message))
    return checked


@lru_cache(maxsize=8)
def _compile(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ValueError(f"the model's chat template refused the messages: {message}")

    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment.from_string(template)


def render(template: str, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool,
           bos_token: str, eos_token: str) -> str:
    from jinja2 import TemplateError

    try:
        return _compile(template).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt,
            bos_token=bos_token, eos_token=eos_token,
        )
    except TemplateError as error:
        raise ValueError(f"the model's chat template failed to render: {error}") from error
