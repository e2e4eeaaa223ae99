"""``led-cpp chat`` driven through a pseudo-terminal, as a person types: two turns with the
history kept, /reset, an answer stopped by Ctrl-C without ending the program, and EOF."""

from __future__ import annotations

import os
import re
import select
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pty = pytest.importorskip("pty")
pytest.importorskip("gguf")
from tests.support.tiny_models import CHATML_TEMPLATE, write_tiny_model  # noqa: E402

STATS = re.compile(r"\[(\d+) prompt tokens, (\d+) generated")


class Terminal:
    """The chat in a pseudo-terminal: its controlling terminal, so Ctrl-C is a real SIGINT."""

    def __init__(self, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execv(sys.executable, [sys.executable, "-m", "led_cpp.cli", "chat", *args])
        self.output = ""
        self.position = 0  # where the next read_until starts looking

    def read_until(self, pattern: str, timeout: float = 240.0) -> str:
        """Everything up to and including the first match of `pattern` after what was read."""
        deadline = time.monotonic() + timeout
        start = self.position
        while True:
            match = re.compile(pattern).search(self.output, start)
            if match:
                self.position = match.end()
                return self.output[start : match.end()]
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {pattern!r} in {self.output[start:][-2000:]!r}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"the chat ended; no {pattern!r} in {self.output[start:][-2000:]!r}"
                self.output += chunk.decode("utf-8", errors="replace")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                os.read(self.fd, 65536)  # drain, so the child never blocks on a full terminal
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, 9)
        raise AssertionError("the chat did not exit")


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    # ChatML with <think> tokens: the prompt leaves the reasoning segment open, so the answers
    # are shown as reasoning. Seed 1 answers "hi" greedily at length (about 1,100 tokens).
    tm = write_tiny_model(
        tmp_path_factory.mktemp("chat") / "chat.gguf",
        "llama",
        chat_template=CHATML_TEMPLATE,
        context_length=4096,
        seed=1,
    )
    return str(tm.path)


def test_two_turns_keep_the_history_reset_and_eof(chat_model):
    term = Terminal(
        "-m", chat_model, "--n-ctx", "4096", "--threads", "1", "--temperature", "0", "--max-tokens", "6", "--stats"
    )
    term.read_until(r"> $")
    term.send("hi\n")
    first = term.read_until(r"finish: \w+\]\r?\n> $")
    assert "[reasoning]" in first and "\033[2m" in first  # the reasoning, dimmed on a terminal
    term.send("and again\n")
    second = term.read_until(r"finish: \w+\]\r?\n> $")
    (p1, g1), (p2, g2) = [tuple(map(int, STATS.search(text).groups())) for text in (first, second)]
    # the second prompt holds the first turn: question, answer and the new question
    assert p2 > p1 + len("and again")
    term.send("/reset\n")
    term.read_until(r"conversation cleared\)\r?\n> $")
    term.send("hi\n")
    again = term.read_until(r"finish: \w+\]\r?\n> $")
    assert tuple(map(int, STATS.search(again).groups())) == (p1, g1)
    term.send("\x04")  # Ctrl-D: end of input
    assert term.wait() == 0


def test_ctrl_c_stops_the_answer_not_the_program(chat_model):
    term = Terminal(
        "-m",
        chat_model,
        "--n-ctx",
        "4096",
        "--threads",
        "1",
        "--temperature",
        "0",
        "--max-tokens",
        "3000",
        "--hide-reasoning",
        "--stats",
    )
    term.read_until(r"> $")
    term.send("hi\n")
    term.read_until(r"\[hidden reasoning")
    term.send("\x03")  # Ctrl-C while the answer streams
    stopped = term.read_until(r"\(stopped\)\r?\n> $")
    assert "finish:" not in stopped
    term.send("/exit\n")
    assert term.wait() == 0
