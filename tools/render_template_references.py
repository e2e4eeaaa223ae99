"""Render every chat template of the pinned llama.cpp sdist with transformers, as test references.

Writes tests/data/chat_template_references.json: the conversations, and per (template, conversation,
template arguments) what transformers' ``render_jinja_template`` renders (or the error it raises).
The templates themselves are not copied: each case names its file and the sha256 of its text, and the
tests read the text from the sdist. ``strftime_now`` is frozen at NOW (patched into transformers here,
passed as ``now=`` to led_cpp.chat.render in the tests), so the references do not depend on the day.

Usage (needs transformers and jinja2, no torch):
    python tools/render_template_references.py [--sdist PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "third_party"))
import fetch_llama_cpp  # noqa: E402

NOW = datetime(2025, 6, 15, 12, 30, 0)
BOS, EOS = "<|bos|>", "<|eos|>"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}

CONVERSATIONS = {
    "system": {
        "messages": [
            {"role": "system", "content": "You are a careful assistant. Answer briefly."},
            {"role": "user", "content": "What is 2 + 3?"},
            {"role": "assistant", "content": "5"},
            {"role": "user", "content": 'And 7 × 6? Quote it as "<b>42</b>" & explain.'},
        ],
    },
    "reasoning": {
        "messages": [
            {"role": "user", "content": "What is 2 + 3?"},
            {"role": "assistant", "content": "The answer is 5.", "reasoning_content": "2 plus 3 makes 5."},
            {"role": "user", "content": "Now double it."},
        ],
    },
    "tools": {
        "messages": [
            {"role": "system", "content": "You can look up the weather."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "name": "get_weather",
                "content": '{"temperature": 21, "sky": "clear"}',
            },
            {"role": "user", "content": "And in Berlin?"},
        ],
        "kwargs": {"tools": [WEATHER_TOOL]},
        "needs": "tools",
    },
    "parts": {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be concise."}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Name a prime"}, {"type": "text", "text": "above 10."}],
            },
        ],
    },
}


def template_variants(text: str) -> list:
    """The template-argument sets a template is rendered with: none, and each value of the
    reasoning switches it reads."""
    variants = [{}]
    if "enable_thinking" in text:
        variants += [{"enable_thinking": True}, {"enable_thinking": False}]
    if "reasoning_effort" in text:
        variants += [{"reasoning_effort": "low"}, {"reasoning_effort": "high"}]
    return variants


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", type=Path, help="the pinned sdist (default: fetched as the build fetches it)")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "chat_template_references.json")
    args = parser.parse_args()

    import jinja2
    import transformers
    from transformers.utils import chat_template_utils

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return NOW

    chat_template_utils.datetime = FrozenDatetime  # strftime_now reads the module's datetime
    sdist = args.sdist or fetch_llama_cpp.download_sdist(ROOT / "third_party" / "downloads")
    templates = fetch_llama_cpp.read_templates(sdist)
    cases, rendered, failed = [], set(), set()
    for name, text in templates.items():
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        for conversation_id, conversation in CONVERSATIONS.items():
            if conversation.get("needs") and conversation["needs"] not in text:
                continue
            for variant in template_variants(text):
                kwargs = {**conversation.get("kwargs", {}), **variant}
                case = {"template": name, "sha256": digest, "conversation": conversation_id, "kwargs": variant}
                try:
                    output, _ = chat_template_utils.render_jinja_template(
                        conversations=[conversation["messages"]],
                        chat_template=text,
                        add_generation_prompt=True,
                        bos_token=BOS,
                        eos_token=EOS,
                        **kwargs,
                    )
                    case["expected"] = output[0]
                    rendered.add(name)
                except Exception as error:  # what transformers refuses, led_cpp must refuse too
                    case["error"] = f"{type(error).__name__}: {error}"[:300]
                    failed.add(name)
                cases.append(case)
    data = {
        "generator": "tools/render_template_references.py",
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "sdist": fetch_llama_cpp.PIN["sdist"],
        "sdist_sha256": fetch_llama_cpp.PIN["sha256"],
        "now": NOW.isoformat(),
        "bos_token": BOS,
        "eos_token": EOS,
        "add_generation_prompt": True,
        "conversations": CONVERSATIONS,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    never = sorted(failed - rendered)
    print(
        f"{len(templates)} templates, {len(cases)} cases: transformers renders {len(rendered)} templates "
        f"(at least one case), fails on every case of {len(never)}: {', '.join(never)}"
    )
    print(f"{sum('error' in c for c in cases)} failing cases; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
