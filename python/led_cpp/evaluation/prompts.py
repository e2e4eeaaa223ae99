"""The prompt of the authors' protocol: the instruction, then the question, as one user turn."""

from __future__ import annotations

from typing import Any

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
#: Suffix of the plain completion prompt used when a model has no chat template.
PLAIN_ANSWER_CUE = "\nAnswer:"


def user_message(question: str) -> str:
    """The user turn of the authors' protocol: the instruction, then the question."""
    return f"{INSTRUCTION}\n{question}"


def build_prompt(question: str, chat: bool) -> list[dict] | str:
    """A chat message list (the model applies its template) or, for a model without
    a chat template, the plain completion prompt."""
    if chat:
        return [{"role": "user", "content": user_message(question)}]
    return user_message(question) + PLAIN_ANSWER_CUE


def uses_chat_template(model: Any) -> bool:
    """Whether ``model`` has a chat template (and so gets the chat prompt)."""
    return bool(getattr(model, "chat_template", None))
