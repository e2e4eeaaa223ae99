"""The typed boundary between Python and the C++ core: the shipped stub led_cpp/_core.pyi against
the module, docstrings on every public name, the option enums parsed by one parser, the native
option and result classes, and the BOS handling of chat prompts against llama.cpp's."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import led_cpp
from led_cpp import LEDConfig, SamplingConfig, _core
from led_cpp.config import DEPTH_RULES, LAYER_COUNTINGS, LED_PROJECTIONS
from led_cpp.results import GenerationResult, run_stats
from tests.support.tiny_models import write_tiny_model

gguf = pytest.importorskip("gguf")

PACKAGE = Path(led_cpp.__file__).parent
STUB = PACKAGE / "_core.pyi"
REGENERATE = "regenerate it with the command at the top of python/led_cpp/_core.pyi"
# "name(arguments) -> result" or "2. name(...)": the signature lines pybind11 writes into a __doc__
SIGNATURE = re.compile(r"^(?:\d+\. )?(\w+)\((.*)\)(?: -> .*)?$")


# --------------------------------------------------------------------------- the stub
def _stub_members(body: list[ast.stmt]) -> dict[str, list[ast.AST]]:
    members: dict[str, list[ast.AST]] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            members.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members.setdefault(node.target.id, []).append(node)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    members.setdefault(target.id, []).append(node)
    return members


def _compared(members) -> set[str]:
    """Public names, and the dunders whose signatures users meet (a class without a bound
    constructor has only the inherited slot wrapper as its __init__: not one of them)."""
    if not hasattr(members, "items"):
        members = dict.fromkeys(members)
    return {
        name
        for name, member in members.items()
        if not name.startswith("_")
        or name == "__repr__"
        or (name == "__init__" and type(member).__name__ != "wrapper_descriptor")
    }


def _split_arguments(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for character in text:
        if character in "([{":
            depth += 1
        elif character in ")]}":
            depth -= 1
        if character == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    if current.strip():
        parts.append(current)
    return [part.split(":")[0].split("=")[0].strip() for part in parts]


def _runtime_parameters(function: object, name: str) -> set[tuple[str, ...]]:
    """The parameter names of each overload, from the signatures pybind11 writes into __doc__
    (of an overloaded function, the numbered ones). A positional-only "/" is not compared: the
    stub generator leaves it out."""
    doc = getattr(function, "__doc__", None) or ""
    overloaded = "Overloaded function." in doc
    found = set()
    for line in doc.splitlines():
        match = SIGNATURE.match(line.strip())
        if match and match.group(1) == name and (not overloaded or line[:1].isdigit()):
            found.add(tuple(part for part in _split_arguments(match.group(2)) if part != "/"))
    return found


def _stub_parameters(nodes: list[ast.AST]) -> set[tuple[str, ...]]:
    found = set()
    for node in nodes:
        arguments = node.args
        names = [argument.arg for argument in arguments.posonlyargs + arguments.args]
        if arguments.vararg is not None:
            names.append("*" + arguments.vararg.arg)
        elif arguments.kwonlyargs:
            names.append("*")
        names += [argument.arg for argument in arguments.kwonlyargs]
        if arguments.kwarg is not None:
            names.append("**" + arguments.kwarg.arg)
        found.add(tuple(names))
    return found


def _check_functions(stub: dict[str, list[ast.AST]], owner: object, where: str) -> None:
    for name, nodes in stub.items():
        if name not in _compared([name]) or not isinstance(nodes[0], ast.FunctionDef):
            continue
        if any(isinstance(decorator, ast.Name) and decorator.id == "property" for decorator in nodes[0].decorator_list):
            continue
        runtime = _runtime_parameters(getattr(owner, name), name)
        assert _stub_parameters(nodes) == runtime, f"{where}.{name}: the stub's parameters differ; {REGENERATE}"


def test_stub_and_typed_marker_ship_with_the_package():
    assert STUB.is_file(), f"{STUB} is missing; {REGENERATE}"
    assert (PACKAGE / "py.typed").is_file()


def test_stub_names_every_public_name_of_the_module_and_nothing_else():
    stub = _stub_members(ast.parse(STUB.read_text()).body)
    assert _compared(stub) == _compared(dir(_core)), REGENERATE
    _check_functions(stub, _core, "_core")


@pytest.mark.parametrize("name", sorted(name for name in dir(_core) if inspect.isclass(getattr(_core, name))))
def test_stub_class_has_the_members_of_the_class(name):
    stub_classes = {node.name: node for node in ast.parse(STUB.read_text()).body if isinstance(node, ast.ClassDef)}
    assert name in stub_classes, f"class {name} is not in the stub; {REGENERATE}"
    stub = _stub_members(stub_classes[name].body)
    kind = getattr(_core, name)
    assert _compared(stub) == _compared(vars(kind)), f"{name}: {REGENERATE}"
    _check_functions(stub, kind, name)


# --------------------------------------------------------------------------- docstrings
def _own_text(doc: str | None) -> str:
    """A pybind11 docstring without its signature lines: what the binding wrote."""
    lines = [
        line
        for line in (doc or "").splitlines()
        if not SIGNATURE.match(line.strip()) and line.strip() != "Overloaded function."
    ]
    return "\n".join(lines).strip()


def test_every_native_function_class_and_member_has_a_docstring():
    missing = []
    for name in dir(_core):
        if name.startswith("_"):
            continue
        value = getattr(_core, name)
        if not inspect.isclass(value):
            if not _own_text(value.__doc__):
                missing.append(name)
            continue
        if not _own_text(value.__doc__):
            missing.append(name)
        if hasattr(value, "__members__"):  # an enum: each value documented in the class's doc
            for member in value.__members__:
                if not re.search(rf"^\s*{member} : \S", value.__doc__, re.MULTILINE):
                    missing.append(f"{name}.{member}")
            continue
        for member, attribute in vars(value).items():
            if member.startswith("_") and member != "__init__":
                continue
            doc = attribute.__doc__ if isinstance(attribute, property) else _own_text(attribute.__doc__)
            if not (doc or "").strip():
                missing.append(f"{name}.{member}")
    assert not missing, f"native names without a docstring: {missing}"


def _python_classes() -> list[type]:
    return [getattr(led_cpp, name) for name in led_cpp.__all__ if inspect.isclass(getattr(led_cpp, name))]


def test_every_public_python_name_has_a_docstring():
    missing = []
    for name in led_cpp.__all__:
        value = getattr(led_cpp, name)
        doc = inspect.getdoc(value) or ""
        if not doc or doc.startswith(f"{name}("):  # a dataclass's generated signature is no docstring
            missing.append(name)
        if not inspect.isclass(value):
            continue
        for owner in value.__mro__:
            if not owner.__module__.startswith("led_cpp"):
                continue
            for member, attribute in vars(owner).items():
                if member.startswith("_") or not callable(getattr(attribute, "__get__", None)):
                    continue
                if isinstance(attribute, (staticmethod, classmethod)):
                    attribute = attribute.__func__
                if not (inspect.getdoc(attribute) or "").strip():
                    missing.append(f"{name}.{member}")
    assert not missing, f"public names without a docstring: {sorted(set(missing))}"


@pytest.mark.parametrize(
    "kind", [kind for kind in _python_classes() if dataclasses.is_dataclass(kind)], ids=lambda kind: kind.__name__
)
def test_every_dataclass_field_is_documented(kind):
    doc = inspect.getdoc(kind)
    undocumented = [
        field.name for field in dataclasses.fields(kind) if not re.search(rf"^\s*{field.name}: \S", doc, re.MULTILINE)
    ]
    assert not undocumented, f"{kind.__name__}'s docstring does not describe {undocumented}"


# --------------------------------------------------------------------------- the option enums
@pytest.mark.parametrize(
    "kind, option, names",
    [
        (_core.DepthRule, "depth_rule", ("max_entropy", "random", "fixed")),
        (_core.LayerCounting, "layer_counting", ("paper", "reference")),
        (_core.Projection, "led_projection", ("auto", "every_step", "on_explore")),
    ],
    ids=["DepthRule", "LayerCounting", "Projection"],
)
def test_an_enum_is_parsed_by_its_own_constructor_and_refuses_unknown_names(kind, option, names):
    assert tuple(kind.__members__) == names
    for name in names:
        assert kind(name) == getattr(kind, name) and kind(name).name == name
    for bad in ("best", "", names[0].upper(), names[0] + " "):
        with pytest.raises(ValueError) as info:
            kind(bad)
        assert str(info.value) == f"{option} must be one of {names}, not {bad!r}"


def test_the_python_option_names_are_the_native_ones():
    assert DEPTH_RULES == tuple(_core.DepthRule.__members__)
    assert LAYER_COUNTINGS == tuple(_core.LayerCounting.__members__)
    assert LED_PROJECTIONS == tuple(_core.Projection.__members__)


@pytest.mark.parametrize("field, bad", [("depth_rule", "best"), ("depth_rule", "Random"), ("layer_counting", "papers")])
def test_a_config_refuses_an_unknown_name_with_the_native_parser_s_message(field, bad):
    native = {"depth_rule": _core.DepthRule, "layer_counting": _core.LayerCounting}[field]
    with pytest.raises(ValueError) as expected:
        native(bad)
    with pytest.raises(ValueError) as info:
        LEDConfig(**{field: bad})
    assert str(info.value) == str(expected.value)


def test_led_step_takes_the_same_names():
    with pytest.raises(ValueError, match=r"depth_rule must be one of \('max_entropy', 'random', 'fixed'\)"):
        _core.led_step([[0.0, 1.0]], temperature=1.0, k=1, exploit=True, depth_rule="maximal", u_gate=0.5, u_token=0.5)


@pytest.mark.parametrize("rule", DEPTH_RULES)
@pytest.mark.parametrize("counting", LAYER_COUNTINGS)
def test_each_config_name_reaches_the_native_spec_as_its_enum(rule, counting):
    config = LEDConfig(
        d=4,
        k=3,
        ln=True,
        exploit=False,
        think_only=False,
        depth_rule=rule,
        fixed_depth=2 if rule == "fixed" else None,
        layer_counting=counting,
        temperature=0.7,
    )
    spec = config.to_native("<think>", "</think>")
    assert isinstance(spec, _core.SamplingSpec)
    assert spec.led and spec.depth_rule == _core.DepthRule(rule)
    assert spec.layer_counting == _core.LayerCounting(counting)
    assert (spec.d, spec.k, spec.ln, spec.exploit, spec.think_only) == (4, 3, True, False, False)
    assert spec.fixed_depth == (2 if rule == "fixed" else 0)
    assert spec.temperature == pytest.approx(0.7) and (spec.think_start, spec.think_end) == ("<think>", "</think>")
    assert repr(spec).startswith("SamplingSpec(led=True, temperature=0.699999988")  # a C float
    assert f"depth_rule=<DepthRule.{rule}:" in repr(spec)


def test_sampling_config_reaches_the_native_spec():
    spec = SamplingConfig(temperature=0.0, top_k=0, top_p=0.5, min_p=0.25).to_native()
    assert not spec.led and (spec.temperature, spec.top_k, spec.top_p, spec.min_p) == (0.0, 0, 0.5, 0.25)
    assert (spec.think_start, spec.think_end) == ("", "")


def test_native_options_take_only_typed_values():
    """A string where the enum belongs is refused, never read as some default."""
    with pytest.raises(TypeError):
        _core.SamplingSpec(led=True, depth_rule="random")
    with pytest.raises(TypeError):
        _core.SamplingSpec(led=True, layer_counting="reference")
    with pytest.raises(TypeError):
        _core.SamplingSpec(True)  # keywords only
    options = _core.RunOptions(max_tokens=5, stop=["\n"], seed=2**64 - 1)
    assert (options.max_tokens, options.stop, options.seed) == (5, ["\n"], 2**64 - 1)
    assert (options.trace, options.top_logprobs) == (False, 0)
    with pytest.raises(TypeError):
        _core.RunOptions(max_tokens="5")


# --------------------------------------------------------------------------- the native results
@pytest.fixture(scope="module")
def model(tmp_path_factory) -> led_cpp.Model:
    path = write_tiny_model(tmp_path_factory.mktemp("boundary") / "tiny.gguf", "llama").path
    return led_cpp.Model(path, n_ctx=128, n_threads=1)


def test_a_fixed_run_returns_typed_pieces_results_and_stats(model):
    prompt = model.prompt_tokens("Once upon")
    config = LEDConfig(d=3, k=4, exploit=False)
    options = _core.RunOptions(max_tokens=6, seed=5, trace=True)
    run = _core.BatchRun(model._native, [prompt], 2, model.native_config(config), options)
    pieces = []
    while not run.finished:
        pieces += run.advance()
    assert pieces and all(isinstance(piece, _core.Piece) for piece in pieces)
    results = run.results()
    stats = run.stats
    run.close()
    assert [len(samples) for samples in results] == [2]
    for sample, result in enumerate(results[0]):
        assert isinstance(result, _core.SampleResult)
        assert "".join(piece.text for piece in pieces if piece.sample == sample) == result.text
        assert {(piece.request, piece.prompt) for piece in pieces} == {(0, 0)}
        assert len(result.trace) == len(result.tokens) + (result.finish_reason == "eos")
        assert all(isinstance(step, _core.TraceStep) and len(step.entropies) == 3 for step in result.trace)
        assert [step.token for step in result.trace][: len(result.tokens)] == result.tokens
        assert result.timings.prompt_tokens == len(prompt) and result.timings.decode_tokens == len(result.tokens)
        assert repr(result).startswith(f"SampleResult(tokens={result.tokens!r}, text={result.text!r}, ")
        assert f"timings=Timings(prompt_tokens={len(prompt)}, " in repr(result)
        with pytest.raises(AttributeError):
            result.text = "changed"
    assert isinstance(stats, _core.RunStats)
    assert stats.decided_steps == sum(len(result.trace) for result in results[0]) == stats.explored_steps
    counts = run_stats(stats)
    assert list(counts) == [
        "prompt_tokens_evaluated",
        "decode_tokens_evaluated",
        "decode_calls",
        "explore_graphs",
        "every_step",
        "shared_head_product",
        "explored_steps",
        "decided_steps",
        "n_parallel",
        "peak_active",
        "peak_requests_per_step",
        "graph_switches",
        "prompt_tokens_reused",
    ]
    assert counts["decided_steps"] == stats.decided_steps and counts["n_parallel"] == stats.n_parallel == 2

    # the Python results are a thin wrapper: the same run through Model gives the same results
    wrapped = [GenerationResult.from_native(result, True) for result in results[0]]
    again = model.generate_batch([prompt], n=2, config=config, max_tokens=6, seed=5, trace=True)[0]
    for mine, theirs in zip(wrapped, again):
        assert (mine.tokens, mine.text, mine.finish_reason, mine.explored_steps) == (
            theirs.tokens,
            theirs.text,
            theirs.finish_reason,
            theirs.explored_steps,
        )
        assert mine.trace == theirs.trace and mine.sampling_logprobs == theirs.sampling_logprobs


def test_an_open_run_hands_back_finished_samples(model):
    run = _core.BatchRun(model._native, 2)
    prompt = model.prompt_tokens("Hello")
    first = run.submit([prompt], 1, SamplingConfig(temperature=0).to_native(), _core.RunOptions(max_tokens=3, seed=1))
    second = run.submit(
        [prompt, prompt], 1, SamplingConfig().to_native(), _core.RunOptions(max_tokens=2, seed=2, top_logprobs=2)
    )
    finished = []
    while not run.idle:
        run.advance()
        finished += run.take_finished()
    run.close()
    assert all(isinstance(item, _core.FinishedSample) for item in finished)
    assert sorted((item.request, item.prompt, item.sample) for item in finished) == [
        (first, 0, 0),
        (second, 0, 0),
        (second, 1, 0),
    ]
    for item in finished:
        assert item.result.finish_reason in ("length", "eos")
        if item.request == second:
            assert len(item.result.top_logprobs) == len(item.result.tokens)
            assert all(
                len(step) == 2 and all(isinstance(pair, tuple) for pair in step) for step in item.result.top_logprobs
            )


def test_prompt_scores_are_typed(model):
    scores = _core.PromptScorer(model._native).score(model.prompt_tokens("abc"), 3)
    assert isinstance(scores, _core.PromptScores)
    assert len(scores.logprobs) == len(scores.top) == len(model.prompt_tokens("abc")) - 1
    assert repr(scores).startswith("PromptScores(logprobs=[")


# --------------------------------------------------------------------------- BOS of chat prompts
BOS_ONCE = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
BOS_TWICE = "{{ bos_token }}{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
EOS_LAST = "{% for m in messages %}{{ m['content'] }}{% endfor %}{{ eos_token }}"


def _model_with(path: Path, monkeypatch, template: str, *, add_bos: bool, add_eos: bool = False) -> led_cpp.Model:
    """A tiny model whose tokenizer adds BOS / EOS as given (tiny_models writes add_bos on, add_eos off)."""
    with monkeypatch.context() as patch:
        bos, eos = gguf.GGUFWriter.add_add_bos_token, gguf.GGUFWriter.add_add_eos_token
        patch.setattr(gguf.GGUFWriter, "add_add_bos_token", lambda writer, _: bos(writer, add_bos))
        patch.setattr(gguf.GGUFWriter, "add_add_eos_token", lambda writer, _: eos(writer, add_eos))
        written = write_tiny_model(path, "llama", chat_template=template).path
    return led_cpp.Model(written, n_ctx=64, n_threads=1)


@pytest.mark.parametrize(
    "template, add_bos, bos_count",
    [
        (BOS_ONCE, True, 1),  # llama.cpp removes the template's BOS text, the tokenizer adds BOS
        (BOS_TWICE, True, 2),  # one BOS text removed: the tokenizer's BOS and the template's second
        (BOS_ONCE, False, 1),  # nothing removed, nothing added: the template's BOS
        (BOS_TWICE, False, 2),  # both the template's, as written
    ],
    ids=["once-add_bos", "twice-add_bos", "once-no_add_bos", "twice-no_add_bos"],
)
def test_chat_prompt_bos_as_llama_cpp_renders_and_tokenizes(tmp_path, monkeypatch, template, add_bos, bos_count):
    """llama.cpp's chat code (common/chat.cpp) removes a leading BOS text from a rendered
    template when the tokenizer adds BOS, then tokenizes with add_special: the prompt keeps
    exactly the BOS tokens the template wrote beyond that one."""
    model = _model_with(tmp_path / "m.gguf", monkeypatch, template, add_bos=add_bos)
    content = model.tokenize("hi", add_special=False)
    assert model.prompt_tokens([{"role": "user", "content": "hi"}]) == [model.bos_token_id] * bos_count + content


def test_text_prompt_that_spells_bos_keeps_both(tmp_path, monkeypatch):
    """A text prompt is tokenized as it is: llama.cpp's tokenizer adds its BOS before a spelled one
    (it warns of two BOS tokens and keeps them)."""
    model = _model_with(tmp_path / "m.gguf", monkeypatch, BOS_ONCE, add_bos=True)
    content = model.tokenize("hi", add_special=False)
    assert model.prompt_tokens(model.bos_token + "hi") == [model.bos_token_id] * 2 + content


def test_chat_prompt_eos_as_llama_cpp(tmp_path, monkeypatch):
    """With a tokenizer that adds EOS, a template's trailing EOS text is removed first (common/chat.cpp):
    one EOS ends the prompt."""
    model = _model_with(tmp_path / "m.gguf", monkeypatch, EOS_LAST, add_bos=False, add_eos=True)
    content = model.tokenize("hi", add_special=False)
    assert model.prompt_tokens([{"role": "user", "content": "hi"}]) == content + [model.eos_token_id]
