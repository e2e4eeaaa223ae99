"""Every chat template of the pinned llama.cpp sdist renders byte-identically to transformers.

The references (tests/data/chat_template_references.json) were rendered by transformers with
tools/render_template_references.py; a case transformers refuses must be refused with a ValueError.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest

from led_cpp import chat

REFERENCES = json.loads((Path(__file__).parent / "data" / "chat_template_references.json").read_text("utf-8"))
CASES = REFERENCES["cases"]


def _case_id(case: dict) -> str:
    kwargs = ",".join(f"{key}={value}" for key, value in case["kwargs"].items())
    return f"{case['template']}-{case['conversation']}" + (f"-{kwargs}" if kwargs else "")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_renders_as_transformers(case, llama_templates):
    text = llama_templates[case["template"]]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == case["sha256"], "the sdist's template changed"
    conversation = REFERENCES["conversations"][case["conversation"]]
    kwargs = {**conversation.get("kwargs", {}), **case["kwargs"]}
    render = lambda: chat.render(  # noqa: E731
        text,
        conversation["messages"],
        add_generation_prompt=REFERENCES["add_generation_prompt"],
        bos_token=REFERENCES["bos_token"],
        eos_token=REFERENCES["eos_token"],
        template_kwargs=kwargs,
        now=datetime.fromisoformat(REFERENCES["now"]),
    )
    if "error" in case:
        with pytest.raises(ValueError):
            render()
    else:
        assert render() == case["expected"]


def test_every_sdist_template_is_covered(llama_templates):
    covered = {case["template"] for case in CASES}
    assert covered == set(llama_templates)
    rendered = {case["template"] for case in CASES if "expected" in case}
    # transformers renders all but two of the 70 templates for at least one conversation
    assert len(rendered) >= 65
