"""Chat templates: the Jinja template stored in the GGUF, rendered as transformers' apply_chat_template
renders it, in a worker process bounded in time, output size and memory."""

from __future__ import annotations

import atexit
import math
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from queue import Empty, Queue
from typing import Any

#: Seconds one render may take before the worker is stopped and a ValueError raised.
RENDER_TIMEOUT_S = 10.0
#: Seconds a fresh worker process may take to start (a loaded machine can be slow).
STARTUP_TIMEOUT_S = 120.0
#: The rendered prompt may hold this many characters plus 8 per character of its inputs.
RENDER_BASE_CHARS = 4 << 20
#: Address-space limit of the worker process (POSIX), so a template cannot exhaust memory.
WORKER_MEMORY_BYTES = 4 << 30
#: Variables that render_chat_template sets itself.
RESERVED_KWARGS = ("messages", "add_generation_prompt")
# Names a message's reasoning is passed under, as transformers aliases them (the first is what most
# templates read; gpt-oss templates read "thinking").
_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


# --- checking the inputs ------------------------------------------------------------------------
def check_json_value(name: str, value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data (dict with str keys, list, str, int, float, bool, None), or a
    ValueError naming where it is not. Tuples become lists, as in JSON."""
    if depth > 64:
        raise ValueError(f"{name} is nested more than 64 levels deep")
    if value is None or type(value) in (str, bool, int):
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise ValueError(f"{name} is {value}, which JSON cannot hold; use a finite number")
        return value
    if isinstance(value, Mapping):
        checked = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{name} has the key {key!r}; JSON object keys must be str")
            checked[key] = check_json_value(f"{name}[{key!r}]", item, depth + 1)
        return checked
    if isinstance(value, (list, tuple)):
        return [check_json_value(f"{name}[{index}]", item, depth + 1) for index, item in enumerate(value)]
    raise ValueError(
        f"{name} is a {type(value).__name__}; only JSON values (dict, list, str, int, float, bool, "
        "None) can be passed to a chat template"
    )


def check_template_kwargs(kwargs: Any, name: str = "chat_template_kwargs") -> dict:
    """Template arguments (enable_thinking, reasoning_effort, tools, documents, ...) as a dict of JSON
    values, or a ValueError naming the fault."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(
            f"{name} must be a dict of template arguments such as {{'enable_thinking': False}}, "
            f"not {type(kwargs).__name__}"
        )
    for key in kwargs:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"{name} has the key {key!r}; template argument names must be identifiers")
        if key in RESERVED_KWARGS:
            raise ValueError(f"{name} may not set {key!r}; it is an argument of its own")
    checked = check_json_value(name, dict(kwargs))
    for key in ("tools", "documents"):
        items = checked.get(key)
        if items is not None and (not isinstance(items, list) or not all(isinstance(i, dict) for i in items)):
            raise ValueError(
                f"{name}[{key!r}] must be a list of dicts (JSON schemas for tools, "
                "{'title': ..., 'text': ...} for documents)"
            )
    return checked


def check_messages(messages: Any) -> list:
    """The messages as plain JSON dicts, each with a non-empty str 'role'; 'content' is a str, a list of
    parts ({'type': 'text', 'text': ...}) or absent (an assistant turn with only tool_calls).
    Keys whose value is None are dropped, as transformers drops them. ValueError names a fault."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"message {index} must be a dict with 'role' and 'content', not {type(message).__name__}")
        message = check_json_value(f"message {index}", message)
        message = {key: value for key, value in message.items() if value is not None}
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise ValueError(f"message {index} needs a non-empty string 'role'")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ValueError(
                f"message {index} has a {type(content).__name__} 'content'; give a str or a list of "
                "parts such as {'type': 'text', 'text': ...}"
            )
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise ValueError(f"message {index}'s 'content' parts must be dicts such as {{'type': 'text', 'text': ...}}")
        if content is None and "tool_calls" not in message:
            raise ValueError(f"message {index} needs a 'content' (or 'tool_calls' for an assistant turn)")
        checked.append(message)
    return checked


def _alias_reasoning_fields(messages: list[dict]) -> list[dict]:
    # transformers fills `reasoning_content` from older names and `thinking` for gpt-oss templates
    aliased = []
    for message in messages:
        reasoning = next((message[key] for key in _REASONING_FIELDS if message.get(key) is not None), None)
        if reasoning is not None:
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        aliased.append(message)
    return aliased


# --- the worker processes ----------------------------------------------------------------------
class _Worker:
    """One template_sandbox.py process; answers one request at a time."""

    def __init__(self) -> None:
        script = Path(__file__).with_name("template_sandbox.py")
        self._process = subprocess.Popen(
            [sys.executable, str(script), str(WORKER_MEMORY_BYTES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._answers: Queue[Any] = Queue()
        self._reader = threading.Thread(target=self._read_answers, name="led_cpp-template-reader", daemon=True)
        self._reader.start()
        self._wait(STARTUP_TIMEOUT_S, "start")

    def _read_answers(self) -> None:
        stream = self._process.stdout
        try:
            while True:
                header = stream.read(8)
                if len(header) < 8:
                    break
                (length,) = struct.unpack("<Q", header)
                self._answers.put(pickle.loads(stream.read(length)))
        except Exception:  # the process died mid-answer; the waiting caller sees None
            pass
        self._answers.put(None)

    def _wait(self, timeout: float, what: str) -> Any:
        try:
            answer = self._answers.get(timeout=timeout)
        except Empty:
            self.stop()
            if what == "start":
                raise RuntimeError(f"the chat-template worker did not start within {timeout:.0f} s") from None
            raise ValueError(
                f"the chat template did not finish rendering within {timeout:g} s; "
                "it was stopped (a template that loops or computes too much)"
            ) from None
        if answer is None:
            code = self._process.poll()
            self.stop()
            if what == "start":
                raise RuntimeError(
                    f"the chat-template worker exited at start (status {code}); "
                    f"check that {sys.executable} can import jinja2"
                )
            raise ValueError("the chat template stopped its renderer (it exceeded the memory a template may use)")
        return answer

    def render(self, template: str, variables: dict, max_chars: int, now: datetime | None, timeout: float) -> Any:
        data = pickle.dumps((template, variables, max_chars, now), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._process.stdin.write(struct.pack("<Q", len(data)) + data)
            self._process.stdin.flush()
        except OSError:
            self.stop()
            raise RuntimeError("the chat-template worker has exited; render again to start a new one") from None
        return self._wait(timeout, "render")

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class _Pool:
    """Idle workers, reused; a thread takes one (or starts one) for each render."""

    def __init__(self, keep: int = 2) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._keep = keep
        self._pid = os.getpid()

    def render(self, *args: Any) -> Any:
        with self._lock:
            if self._pid != os.getpid():  # a forked child must not share its parent's workers' pipes
                self._idle, self._pid = [], os.getpid()
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.alive:
            worker = _Worker()
        answer = worker.render(*args)  # raises after stopping a worker that overran
        with self._lock:
            if len(self._idle) < self._keep and worker.alive and self._pid == os.getpid():
                self._idle.append(worker)
                worker = None
        if worker is not None:
            worker.stop()
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


_POOL = _Pool()


def _shutdown() -> None:
    _POOL.close()


atexit.register(_shutdown)


# --- rendering --------------------------------------------------------------------------------
def render(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    template_kwargs: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> str:
    """Renders like transformers' ``render_jinja_template`` with ``tokenizer.apply_chat_template``'s
    variables. ``now`` fixes what ``strftime_now`` reads (for reproducible renders); None: the clock."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError("the chat template must be a non-empty str")
    if not isinstance(add_generation_prompt, bool):
        raise TypeError(f"add_generation_prompt must be a bool, not {type(add_generation_prompt).__name__}")
    for name, token in (("bos_token", bos_token), ("eos_token", eos_token)):
        if not isinstance(token, str):
            raise TypeError(f"{name} must be a str, not {type(token).__name__}")
    if now is not None and not isinstance(now, datetime):
        raise TypeError(f"now must be a datetime or None, not {type(now).__name__}")
    checked = _alias_reasoning_fields(check_messages(messages))
    kwargs = check_template_kwargs(template_kwargs)
    variables = {"bos_token": bos_token, "eos_token": eos_token, **kwargs}  # kwargs win, as in transformers
    variables = {
        "messages": checked,
        "tools": variables.pop("tools", None),
        "documents": variables.pop("documents", None),
        "add_generation_prompt": add_generation_prompt,
        **variables,
    }
    input_chars = len(template) + len(repr(variables))
    max_chars = RENDER_BASE_CHARS + 8 * input_chars
    answer = _POOL.render(template, variables, max_chars, now, RENDER_TIMEOUT_S)
    if answer[0] == "ok":
        return answer[1]
    _, kind, message = answer
    if kind == "template":
        raise ValueError(f"the chat template refused the messages: {message}")
    if kind == "syntax":
        raise ValueError(f"the chat template is not valid Jinja: {message}")
    if kind == "size":
        raise ValueError(f"the chat template rendered too much text: {message}")
    raise ValueError(f"the chat template failed to render: {message}")


def render_chat_template(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    **template_kwargs: Any,
) -> str:
    """The prompt text a Jinja chat template makes of ``messages``, exactly as transformers'
    ``apply_chat_template`` renders it (same environment: loop controls, its ``tojson``,
    ``raise_exception``, ``strftime_now``, the ``generation`` tag). ``template_kwargs`` (tools,
    documents, enable_thinking, reasoning_effort, ...) are the template's variables; they must be
    JSON values. Raises ValueError for bad input, a template that raises, or one that runs longer
    than RENDER_TIMEOUT_S or renders more than RENDER_BASE_CHARS (+8 per input character)."""
    return render(
        template,
        messages,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
        template_kwargs=template_kwargs,
    )
