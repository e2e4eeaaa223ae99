"""Deciding whether an extracted answer equals the gold answer.

Plain numbers are compared exactly (``2,125`` == ``2125.0``) and identical LaTeX (after
:func:`canonical_text`) is equal, in this process; anything else is compared for mathematical
equality with math-verify in a helper process (:mod:`led_cpp.evaluation.verify_worker`), killed
and restarted when one check exceeds the timeout (the check then counts as wrong).
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import weakref

from .answers import as_number, canonical_text

#: The helper process, run by module name; it says READY once math-verify is loaded.
WORKER_MODULE = "led_cpp.evaluation.verify_worker"
READY = "ready"


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


class AnswerChecker:
    """Decides whether an extracted answer equals the gold answer.

    Plain numbers are compared exactly and identical LaTeX (after removing
    spacing, ``\\left``/``\\right``, ``\\text{}``) is equal, in this process; the
    rest goes to math-verify in a helper process (started on first need), which
    is killed and restarted when one check takes longer than ``timeout``
    seconds.  Use as a context manager or call :meth:`close`.
    """

    STARTUP_TIMEOUT = 120.0

    def __init__(self, timeout: float = 5.0):
        self.timeout = float(timeout)
        self._proc: subprocess.Popen | None = None
        self._finalizer = None
        self._cache: dict[tuple[str, str], tuple[bool, str | None]] = {}

    def check(self, pred: str | None, gold: str) -> tuple[bool, str | None]:
        """(correct, note): note is None, "timeout" or the verifier's error."""
        if pred is None:
            return False, None
        gold_number, pred_number = as_number(gold), as_number(pred)
        if gold_number is not None and pred_number is not None:
            return gold_number == pred_number, None
        if canonical_text(gold) == canonical_text(pred):
            return True, None
        key = (gold, pred)
        if key not in self._cache:
            if len(self._cache) > 8192:
                self._cache.clear()
            self._cache[key] = self._ask(gold, pred)
        return self._cache[key]

    def is_correct(self, pred: str | None, gold: str) -> bool:
        return self.check(pred, gold)[0]

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if self._read_line(proc, self.STARTUP_TIMEOUT) != (READY + "\n").encode():
            _kill(proc)
            raise RuntimeError(
                "the answer-verification helper did not start (is math-verify installed? "
                f"try: {sys.executable} -m {WORKER_MODULE} < /dev/null)"
            )
        self._finalizer = weakref.finalize(self, _kill, proc)
        return proc

    @staticmethod
    def _read_line(proc: subprocess.Popen, timeout: float) -> bytes | None:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        return proc.stdout.readline() if ready else None

    def _ask(self, gold: str, pred: str) -> tuple[bool, str | None]:
        if self._proc is None:
            self._proc = self._start()
        proc = self._proc
        try:
            proc.stdin.write((json.dumps({"gold": gold, "pred": pred}) + "\n").encode())
            proc.stdin.flush()
            line = self._read_line(proc, self.timeout)
        except (BrokenPipeError, OSError):
            line = b""
        if not line:
            self.close()
            return False, "timeout" if line is None else "verifier crashed"
        reply = json.loads(line)
        return bool(reply["ok"]), reply["error"]

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._proc = None

    def __enter__(self) -> AnswerChecker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_checker: AnswerChecker | None = None


def check_answer(pred: str | None, gold: str) -> bool:
    """Whether ``pred`` equals ``gold`` (a shared :class:`AnswerChecker`)."""
    global _default_checker
    if _default_checker is None:
        _default_checker = AnswerChecker()
    return _default_checker.is_correct(pred, gold)
