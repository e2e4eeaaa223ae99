"""The chat-template renderer's worker process: transformers' Jinja environment, rendering requests
read from stdin and answered on stdout.

It runs as a script in its own process (``python template_sandbox.py``) so that a template that
loops, builds huge strings or numbers, or exhausts memory can be stopped by killing the process,
from any thread. It imports nothing from led_cpp. The protocol is length-prefixed pickles: the
worker first writes ("ready",), then answers each request (template, variables, max_chars, now)
with ("ok", text) or ("error", kind, message).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    # The script's folder (led_cpp's package folder) must not shadow top-level modules.
    sys.path.pop(0)

import json
import pickle
import struct
from datetime import datetime
from functools import lru_cache
from typing import Any

# Set per request: the time strftime_now reads (None: the clock), fixed for reproducible renders.
_fixed_now: datetime | None = None


class OutputTooLarge(Exception):
    pass


def _build_environment():
    """The environment of transformers' ``_cached_compile_jinja_template`` (chat_template_utils),
    rebuilt here so that transformers is not needed at run time."""
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    import jinja2.utils
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(jinja2.ext.Extension):
        # transformers' `{% generation %}...{% endgeneration %}` marks assistant text for its token
        # masks; rendering the text itself is all it changes in the output.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

        def _render_body(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # transformers' filter: no HTML escaping, with its options
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return (_fixed_now or datetime.now()).strftime(format)

    class TemplateDict:
        # A limited dict constructor so templates cannot reach dict's attributes
        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    class TemplateNamespace(jinja2.utils.Namespace):
        # Namespaces refuse underscore attributes, which lead to CPython internals
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check_name(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(
                    f"Chat templates cannot store underscore-prefixed attributes on a namespace, but got {name!r}. "
                    "Please rename the attribute."
                )

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    environment.globals["dict"] = TemplateDict()
    environment.globals["namespace"] = TemplateNamespace
    return environment


@lru_cache(maxsize=1)
def _environment():
    return _build_environment()


@lru_cache(maxsize=16)
def _compile(template: str):
    return _environment().from_string(template)


def render(template: str, variables: dict, max_chars: int) -> str:
    pieces, size = [], 0
    for piece in _compile(template).generate(**variables):
        size += len(piece)
        if size > max_chars:
            raise OutputTooLarge(f"the rendered prompt exceeds {max_chars} characters")
        pieces.append(piece)
    return "".join(pieces)


def _limit_memory(byte_count: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (byte_count, byte_count))
    except (ImportError, ValueError, OSError):  # not POSIX, or the limit is already lower
        pass


def _write(stream, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _read(stream) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        return None
    (length,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(length))


def serve(memory_limit: int) -> None:
    global _fixed_now
    import jinja2

    _environment()
    _limit_memory(memory_limit)
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers goes to the answer stream
    _write(outbox, ("ready",))
    while True:
        request = _read(inbox)
        if request is None:
            return  # the parent closed the pipe or exited
        template, variables, max_chars, now = request
        _fixed_now = now
        try:
            answer = ("ok", render(template, variables, max_chars))
        except OutputTooLarge as error:
            answer = ("error", "size", str(error))
        except jinja2.TemplateSyntaxError as error:
            answer = ("error", "syntax", f"{error.message} (line {error.lineno})")
        except jinja2.TemplateError as error:
            answer = ("error", "template", str(error))
        except MemoryError:
            answer = ("error", "memory", "the template used more memory than a chat template may")
        except RecursionError:
            answer = ("error", "recursion", "the template recursed too deeply")
        except Exception as error:  # a template error surfacing as a Python one (TypeError, KeyError, ...)
            answer = ("error", "python", f"{type(error).__name__}: {error}")
        try:
            _write(outbox, answer)
        except MemoryError:
            _write(outbox, ("error", "memory", "the template used more memory than a chat template may"))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
