"""The errors the check raises, and the advice its messages end with."""

from __future__ import annotations

from typing import Any


class ModelFileError(ValueError):
    """A model file cannot be used.

    ``str(err)`` is a complete message for the user: it names the file, says
    what is wrong and what to do.  The parts are also available as ``path``,
    ``problem`` and ``advice``.  ``internal_error`` is True only when the
    validator itself failed unexpectedly (a bug; the file is still treated as
    unusable).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        problem: str | None = None,
        advice: str | None = None,
        internal_error: bool = False,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.problem = problem
        self.advice = advice
        self.internal_error = internal_error

    def __str__(self) -> str:  # also for the OSError subclass, whose __str__ differs
        return str(self.args[0]) if self.args else ""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The model file does not exist (also a :class:`FileNotFoundError`)."""


class FileProblem(Exception):
    """What is wrong with the file and what to do, raised where it is found and turned into a
    :class:`ModelFileError` by the code that knows the path."""

    def __init__(self, problem: str, advice: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.advice = advice


class Truncated(Exception):
    """The reader needed bytes past the end of the file."""


ADVICE_TRUNCATED = (
    "The file is incomplete, most likely an interrupted download or copy; "
    "download it again and compare its size with the source"
)
ADVICE_CORRUPT = (
    "The file is damaged or was not written by a GGUF converter; download it "
    "again from a trusted source, or re-convert the model with a current llama.cpp"
)
ADVICE_NOT_GGUF = (
    "Choose a .gguf model file; llama.cpp loads only GGUF (convert other formats "
    "with llama.cpp's convert_hf_to_gguf.py)"
)
ADVICE_UNSUPPORTED = "Download a GGUF v2/v3 build of the model, or re-convert it with a current llama.cpp"
ADVICE_ABORT = (
    "llama.cpp would abort the whole process on this file; the file is damaged or "
    "was crafted, so do not load it -- download the model again from a trusted source"
)
ADVICE_LIMIT = (
    "No real model comes close to this; the file is damaged or crafted -- download it again from a trusted source"
)


def model_error(
    path: str, problem: str, advice: str, error_class: type = ModelFileError, **details: Any
) -> ModelFileError:
    """The user's message: ``Cannot use model file '<path>': <problem>. <advice>.``"""
    message = f"Cannot use model file '{path}': {problem}. {advice}."
    return error_class(message, path=path, problem=problem, advice=advice, **details)


def show_bytes(data: bytes, limit: int = 80) -> str:
    """A key, token or name from the file as it appears in a message (shortened to ``limit`` bytes)."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    return repr(text) + ("..." if len(data) > limit else "")
