"""The answer-verification helper process: math-verify's verdicts, one JSON line at a time.

:class:`led_cpp.evaluation.checker.AnswerChecker` starts it with
``python -m led_cpp.evaluation.verify_worker`` and kills it when one check takes too long;
math-verify's own signal-based timeouts are therefore disabled here. Protocol: the helper
writes ``ready``, then answers each stdin line ``{"gold", "pred"}`` with one stdout line
``{"ok", "error"}``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import math_verify

from .checker import READY

_gold_cache: dict[str, Any] = {}


def _parse(text: str) -> Any:
    return math_verify.parse("\\boxed{" + text + "}", parsing_timeout=None)


def _parse_gold(gold: str) -> Any:
    if gold not in _gold_cache:
        if len(_gold_cache) > 4096:
            _gold_cache.clear()
        _gold_cache[gold] = _parse(gold)
    return _gold_cache[gold]


def math_verify_equal(gold: str, pred: str) -> bool:
    """math-verify's verdict, its own timeouts disabled (the caller must bound the time)."""
    return bool(math_verify.verify(_parse_gold(gold), _parse(pred), timeout_seconds=None))


def main() -> None:
    """Loop of the helper process: one JSON request per stdin line, one JSON reply per line."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # nothing but replies on the protocol channel
    logging.disable(logging.CRITICAL)  # math-verify warns that timeouts are off
    replies.write(READY + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            ok, error = math_verify_equal(request["gold"], request["pred"]), None
        except Exception as e:  # noqa: BLE001 - any failure is a wrong answer
            ok, error = False, f"{type(e).__name__}: {e}"
        replies.write(json.dumps({"ok": ok, "error": error}) + "\n")


if __name__ == "__main__":
    main()
