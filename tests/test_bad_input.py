"""Hardening: bad model files, bad parameters and bad prompts end in a clear Python exception.

Every case asserts the exception's type and that its message names the problem; none may
crash the process, hang, or return a silently wrong answer.  The models are tiny random GGUF
files (tests/support/tiny_models.py, or written here with the gguf package), loaded with n_ctx=64 and
one thread, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

gguf = pytest.importorskip("gguf")
import led_cpp  # noqa: E402
from led_cpp import LEDConfig, ModelFileError, SamplingConfig  # noqa: E402
from led_cpp.gguf_check import ModelFileNotFoundError, check_gguf_file  # noqa: E402
from tests.support.tiny_models import MERGES, build_vocab, write_tiny_model  # noqa: E402

N_CTX = 64
N_LAYER = 4  # write_tiny_model's default
N_VOCAB = 264  # tiny_models' vocabulary: 256 bytes + 1 merge + 7 special tokens
# a GGML_ASSERT in a subprocess: no gdb attaching for a backtrace
_NO_GDB = {**os.environ, "GGML_NO_BACKTRACE": "1"}


def load(path, **kwargs) -> led_cpp.Model:
    options = dict(n_ctx=N_CTX, n_threads=1)
    options.update(kwargs)
    return led_cpp.Model(path, **options)


def raises(kind, *needles, call):
    """Asserts that call() raises ``kind`` (exactly that class or a subclass) whose message
    contains every needle (case-insensitive); returns the exception."""
    with pytest.raises(kind) as info:
        call()
    message = str(info.value).lower()
    for needle in needles:
        assert needle.lower() in message, f"{needle!r} not in the message {str(info.value)!r}"
    return info.value


def write_gguf(
    path: Path,
    arch: str,
    *,
    weights: bool = True,
    n_vocab: int | None = None,
    qk_norm: bool = False,
    n_layer: int = 2,
    n_embd: int = 32,
    n_head: int = 2,
    n_ff: int = 64,
) -> Path:
    """A llama-shaped GGUF under any ``general.architecture`` (the keys are prefixed with it):
    with ``weights=False`` only the vocabulary; ``n_vocab`` pads the vocabulary with filler
    tokens; ``qk_norm`` adds per-head Q/K norm weights (chameleon needs them)."""
    tokens, types = build_vocab()
    if n_vocab is not None:
        tokens = tokens + [f"<filler{i}>" for i in range(n_vocab - len(tokens))]
        types = types + [1] * (n_vocab - len(types))
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_uint32(f"{arch}.context_length", 256)
    writer.add_uint32(f"{arch}.embedding_length", n_embd)
    writer.add_uint32(f"{arch}.block_count", n_layer)
    writer.add_uint32(f"{arch}.feed_forward_length", n_ff)
    writer.add_uint32(f"{arch}.attention.head_count", n_head)
    writer.add_uint32(f"{arch}.attention.head_count_kv", n_head)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_uint32(f"{arch}.rope.dimension_count", n_embd // n_head)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(list(MERGES))
    writer.add_bos_token_id(257)
    writer.add_eos_token_id(258)
    if weights:
        head = n_embd // n_head

        def random(*shape):
            return (rng.standard_normal(shape) * 0.2).astype(np.float32)

        ones = np.ones(n_embd, np.float32)
        writer.add_tensor("token_embd.weight", random(len(tokens), n_embd))
        writer.add_tensor("output_norm.weight", ones)
        writer.add_tensor("output.weight", random(len(tokens), n_embd))
        for il in range(n_layer):
            p = f"blk.{il}."
            writer.add_tensor(p + "attn_norm.weight", ones)
            writer.add_tensor(p + "attn_q.weight", random(n_embd, n_embd))
            writer.add_tensor(p + "attn_k.weight", random(n_embd, n_embd))
            writer.add_tensor(p + "attn_v.weight", random(n_embd, n_embd))
            writer.add_tensor(p + "attn_output.weight", random(n_embd, n_embd))
            writer.add_tensor(p + "ffn_norm.weight", ones)
            writer.add_tensor(p + "ffn_gate.weight", random(n_ff, n_embd))
            writer.add_tensor(p + "ffn_up.weight", random(n_ff, n_embd))
            writer.add_tensor(p + "ffn_down.weight", random(n_embd, n_ff))
            if qk_norm:
                writer.add_tensor(p + "attn_q_norm.weight", np.ones((n_head, head), np.float32))
                writer.add_tensor(p + "attn_k_norm.weight", np.ones((n_head, head), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_input")


@pytest.fixture(scope="module")
def tiny_path(root) -> Path:
    """A valid tiny llama with a ChatML template."""
    return write_tiny_model(root / "tiny.gguf", "llama", chat_template=True).path


@pytest.fixture(scope="module")
def tiny_bytes(tiny_path) -> bytes:
    return tiny_path.read_bytes()


@pytest.fixture(scope="module")
def tiny_layout(tiny_path):
    return gguf.GGUFReader(tiny_path)


@pytest.fixture(scope="module")
def model(tiny_path) -> led_cpp.Model:
    return load(tiny_path)


@pytest.fixture(scope="module")
def plain_model(root) -> led_cpp.Model:
    """A tiny llama without a chat template."""
    return load(write_tiny_model(root / "plain.gguf", "llama", seed=1).path)


def corrupt(root: Path, name: str, data: bytes, *patches) -> Path:
    """A copy of ``data`` with (offset, struct format, value) patches applied."""
    data = bytearray(data)
    for offset, fmt, value in patches:
        struct.pack_into(fmt, data, offset, value)
    path = root / f"{name}.gguf"
    path.write_bytes(bytes(data))
    return path


# --------------------------------------------------------------------------- model files


def test_valid_tiny_model_generates(model):
    result = model.generate("hello", max_tokens=4, seed=1).result
    assert len(result.tokens) == 4 and result.finish_reason == "length"


def test_missing_file(root):
    error = raises(
        ModelFileNotFoundError, "does not exist", str(root / "nope.gguf"), call=lambda: load(root / "nope.gguf")
    )
    assert isinstance(error, FileNotFoundError)


def test_directory(root):
    raises(ModelFileError, "directory", call=lambda: load(root))


def test_empty_file(root):
    path = root / "empty.gguf"
    path.write_bytes(b"")
    raises(ModelFileError, "empty", call=lambda: load(path))


@pytest.mark.parametrize(
    "data",
    [b"hello world, this is not a model\n" * 8, b"\x00" * 64, b"GGML" + b"\x00" * 60, b"PK\x03\x04" + b"\x00" * 60],
)
def test_not_gguf(root, data):
    path = root / "not_gguf.gguf"
    path.write_bytes(data)
    raises(ModelFileError, "not a GGUF file", call=lambda: load(path))


def _cut_points(layout, size):
    tokens = layout.fields["tokenizer.ggml.tokens"]
    info = layout.tensors[len(layout.tensors) // 2].field
    return {
        "header": 10,
        "header_end": 24,
        "metadata": tokens.offset + 300,
        "tensor_info": info.offset + 5,
        "before_data": layout.data_offset - 3,
        "data_start": layout.data_offset + 100,
        "data_middle": size // 2,
        "last_byte": size - 1,
    }


@pytest.mark.parametrize(
    "where",
    ["header", "header_end", "metadata", "tensor_info", "before_data", "data_start", "data_middle", "last_byte"],
)
def test_truncated(root, tiny_bytes, tiny_layout, where):
    cut = _cut_points(tiny_layout, len(tiny_bytes))[where]
    path = root / f"cut_{where}.gguf"
    path.write_bytes(tiny_bytes[:cut])
    error = raises(ModelFileError, call=lambda: load(path))
    message = str(error)
    assert "truncated" in message or "past the end" in message, message


def test_tensor_data_past_eof(root, tiny_bytes, tiny_layout):
    """The last tensor declares more rows than the file holds (its offset is right)."""
    last = tiny_layout.tensors[-1]
    parts = last.field.parts  # name length, name, n_dims, dims, type, offset
    dims_offset = last.field.offset + sum(part.nbytes for part in parts[:3])
    rows_offset = dims_offset + 8  # ne[1]
    path = corrupt(root, "past_eof", tiny_bytes, (rows_offset, "<Q", 100_000))
    raises(ModelFileError, last.name, "past the end of the file", call=lambda: load(path))


def test_absurd_tensor_count(root, tiny_bytes):
    path = corrupt(root, "absurd_tensors", tiny_bytes, (8, "<Q", 2**62))
    raises(ModelFileError, "tensor count", "absurd", call=lambda: load(path))


def test_absurd_metadata_count(root, tiny_bytes):
    path = corrupt(root, "absurd_kv", tiny_bytes, (16, "<Q", 2**62))
    raises(ModelFileError, "metadata", "absurd", call=lambda: load(path))


def test_absurd_key_length(root, tiny_bytes):
    path = corrupt(root, "absurd_key", tiny_bytes, (24, "<Q", 2**62))
    raises(ModelFileError, "key", "absurd length", call=lambda: load(path))


def test_absurd_string_length(root, tiny_bytes, tiny_layout):
    field = tiny_layout.fields["general.architecture"]
    length_offset = field.offset + 8 + len("general.architecture") + 4  # key length, key, value type
    path = corrupt(root, "absurd_string", tiny_bytes, (length_offset, "<Q", 2**60))
    raises(ModelFileError, "general.architecture", "absurd length", call=lambda: load(path))


def test_absurd_array_length(root, tiny_bytes, tiny_layout):
    field = tiny_layout.fields["tokenizer.ggml.tokens"]
    count_offset = field.offset + 8 + len("tokenizer.ggml.tokens") + 4 + 4  # ..., value type, element type
    path = corrupt(root, "absurd_array", tiny_bytes, (count_offset, "<Q", 2**61))
    raises(ModelFileError, "tokenizer.ggml.tokens", "absurd", call=lambda: load(path))


def test_unknown_architecture(root):
    """A well-formed GGUF of an architecture llama.cpp does not know: the validator passes it,
    llama.cpp refuses it, and that is a RuntimeError (not an abort)."""
    path = write_gguf(root / "nonesuch.gguf", "nonesuch")
    assert check_gguf_file(path).architecture == "nonesuch"
    raises(RuntimeError, "could not load", str(path), call=lambda: load(path))


def test_vocabulary_without_weights(root):
    path = write_gguf(root / "vocab_only.gguf", "llama", weights=False)
    assert check_gguf_file(path).tensor_names == ()
    raises(RuntimeError, "could not load", str(path), call=lambda: load(path))


def test_model_still_loads_after_refusals(tiny_path, root):
    """Failed loads leave nothing behind that breaks the next load."""
    for _ in range(3):
        with pytest.raises(RuntimeError):
            load(write_gguf(root / "nonesuch.gguf", "nonesuch"))
    assert len(load(tiny_path).generate("hi", max_tokens=2, seed=0).result.tokens) == 2


@pytest.fixture(scope="module")
def chameleon(root) -> led_cpp.Model:
    """Chameleon's output head overwrites the image-token logits with ggml_set_1d after the
    matrix product: an op LED cannot replay on earlier layers.  (llama.cpp sets 8192 logits
    from id 4 on, so the vocabulary must hold at least 8196 tokens.)"""
    model = load(write_gguf(root / "chameleon.gguf", "chameleon", n_vocab=8200, qk_norm=True))
    assert model.architecture == "chameleon"
    return model


def test_led_refuses_a_graph_it_cannot_replay(chameleon):
    before = chameleon.generate("hi", max_tokens=3, seed=1, config=SamplingConfig(temperature=1.0)).result
    assert len(before.tokens) == 3
    assert all(not 4 <= token < 8196 for token in before.tokens)  # chameleon's mask is in force
    raises(
        RuntimeError,
        "LED cannot run on this chameleon model",
        "SET",
        call=lambda: chameleon.generate("hi", max_tokens=3, seed=1, config=LEDConfig(d=2, k=4)).result,
    )
    raises(
        RuntimeError,
        "LED cannot run on this chameleon model",
        call=lambda: chameleon.generate_batch(["hi", "yo"], n=2, max_tokens=3, seed=1, config=LEDConfig(d=2, k=4)),
    )
    raises(RuntimeError, "LED cannot run on this chameleon model", call=lambda: chameleon.depth_logits("hi", d=2))
    # standard sampling still works afterwards, with the same result
    after = chameleon.generate("hi", max_tokens=3, seed=1, config=SamplingConfig(temperature=1.0)).result
    assert after.tokens == before.tokens
    assert chameleon.generate("hi", max_tokens=3, config=SamplingConfig(temperature=0)).result.finish_reason == "length"


# --------------------------------------------------------------------------- parameters

NAN, INF = math.nan, math.inf


def _config_cases(cls, field, bad_values):
    return [
        pytest.param(cls, field, value, kind, needle, id=f"{cls.__name__}-{field}-{value!r}")
        for value, kind, needle in bad_values
    ]


_NUMBER = [
    (NAN, ValueError, "finite"),
    (INF, ValueError, "finite"),
    (-INF, ValueError, "finite"),
    ("0.5", TypeError, "number"),
    (None, TypeError, "number"),
    (True, TypeError, "number"),
    ([0.5], TypeError, "number"),
]
_INT = [
    (1.5, TypeError, "int"),
    (2.0, TypeError, "int"),
    ("8", TypeError, "int"),
    (None, TypeError, "int"),
    (True, TypeError, "int"),
    (NAN, TypeError, "int"),
    (INF, TypeError, "int"),
]
_BOOL = [(1, TypeError, "bool"), ("yes", TypeError, "bool"), (None, TypeError, "bool"), (0.0, TypeError, "bool")]

CONFIG_CASES = (
    _config_cases(SamplingConfig, "temperature", [(-0.1, ValueError, ">= 0"), *_NUMBER])
    + _config_cases(SamplingConfig, "top_k", [(-1, ValueError, ">= 0"), *_INT])
    + _config_cases(
        SamplingConfig,
        "top_p",
        [(0, ValueError, "(0, 1]"), (-0.1, ValueError, "(0, 1]"), (1.01, ValueError, "(0, 1]"), *_NUMBER],
    )
    + _config_cases(SamplingConfig, "min_p", [(-0.01, ValueError, "[0, 1]"), (1.01, ValueError, "[0, 1]"), *_NUMBER])
    + _config_cases(LEDConfig, "temperature", [(-1.0, ValueError, ">= 0"), *_NUMBER])
    + _config_cases(LEDConfig, "d", [(0, ValueError, ">= 1"), (-3, ValueError, ">= 1"), *_INT])
    + _config_cases(LEDConfig, "k", [(0, ValueError, ">= 1"), (-1, ValueError, ">= 1"), *_INT])
    + _config_cases(LEDConfig, "ln", _BOOL)
    + _config_cases(LEDConfig, "exploit", _BOOL)
    + _config_cases(LEDConfig, "think_only", _BOOL)
    + _config_cases(
        LEDConfig, "think_end", [(3, TypeError, "str"), (b"</think>", TypeError, "str"), ("", ValueError, "empty")]
    )
    + _config_cases(
        LEDConfig,
        "depth_rule",
        [
            ("best", ValueError, "max_entropy"),
            (3, ValueError, "max_entropy"),
            (None, ValueError, "max_entropy"),
            ("", ValueError, "max_entropy"),
        ],
    )
    + _config_cases(
        LEDConfig,
        "layer_counting",
        [("papers", ValueError, "reference"), (0, ValueError, "reference"), (None, ValueError, "reference")],
    )
)


@pytest.mark.parametrize("cls, field, value, kind, needle", CONFIG_CASES)
def test_config_field(cls, field, value, kind, needle):
    error = raises(kind, needle, call=lambda: cls(**{field: value}))
    assert field in str(error)


@pytest.mark.parametrize(
    "kwargs, kind, needles",
    [
        (dict(depth_rule="fixed"), ValueError, ("fixed_depth", "required")),
        (dict(depth_rule="fixed", fixed_depth=-1), ValueError, ("fixed_depth", "[0, d=8)")),
        (dict(depth_rule="fixed", fixed_depth=8), ValueError, ("fixed_depth", "[0, d=8)")),
        (dict(depth_rule="fixed", d=3, fixed_depth=3), ValueError, ("fixed_depth", "[0, d=3)")),
        (dict(depth_rule="fixed", fixed_depth=1.0), TypeError, ("fixed_depth", "int")),
        (dict(depth_rule="fixed", fixed_depth=True), TypeError, ("fixed_depth", "int")),
        (dict(depth_rule="fixed", fixed_depth="2"), TypeError, ("fixed_depth", "int")),
        (dict(fixed_depth=2), ValueError, ("fixed_depth", "only used")),
        (dict(depth_rule="random", fixed_depth=0), ValueError, ("fixed_depth", "only used")),
    ],
    ids=str,
)
def test_led_fixed_depth(kwargs, kind, needles):
    raises(kind, *needles, call=lambda: LEDConfig(**kwargs))


def test_valid_configs_pass():
    SamplingConfig(temperature=0, top_k=0, top_p=1, min_p=0)
    SamplingConfig(temperature=2.5, top_k=1, top_p=1e-6, min_p=1)
    LEDConfig(temperature=0, d=1, k=1, ln=True, exploit=False, think_only=False, think_end=None)
    LEDConfig(depth_rule="fixed", d=4, fixed_depth=3, layer_counting="reference")


@pytest.mark.parametrize(
    "kwargs, kind, needle",
    [
        (dict(n_ctx=0), ValueError, "n_ctx"),
        (dict(n_ctx=-1), ValueError, "n_ctx"),
        (dict(n_ctx="x"), TypeError, "n_ctx"),
        (dict(n_ctx=1.5), TypeError, "n_ctx"),
        (dict(n_ctx=64.0), TypeError, "n_ctx"),
        (dict(n_ctx=True), TypeError, "n_ctx"),
        (dict(n_ctx=None), TypeError, "n_ctx"),
        (dict(n_threads=0), ValueError, "n_threads"),
        (dict(n_threads=-2), ValueError, "n_threads"),
        (dict(n_threads=1.0), TypeError, "n_threads"),
        (dict(n_threads="2"), TypeError, "n_threads"),
        (dict(n_gpu_layers="x"), TypeError, "n_gpu_layers"),
        (dict(n_gpu_layers=1.5), TypeError, "n_gpu_layers"),
        (dict(n_gpu_layers=None), TypeError, "n_gpu_layers"),
        (dict(n_gpu_layers=True), TypeError, "n_gpu_layers"),
        (dict(kv_type="q9"), ValueError, "kv_type"),
        (dict(kv_type="F16"), ValueError, "kv_type"),
        (dict(kv_type=None), ValueError, "kv_type"),
        (dict(n_batch=0), ValueError, "n_batch"),
        (dict(n_batch=-8), ValueError, "n_batch"),
        (dict(n_batch=8.0), TypeError, "n_batch"),
        (dict(led_projection="gpu"), ValueError, "led_projection"),
        (dict(led_projection=None), ValueError, "led_projection"),
    ],
    ids=str,
)
def test_model_options(tiny_path, kwargs, kind, needle):
    raises(kind, needle, call=lambda: load(tiny_path, **kwargs))


def test_every_step_depths_that_do_not_fit_a_row(tiny_path):
    """k*d values per row (k logits, k probabilities per earlier depth) must fit llama.cpp's
    n_vocab-wide sampled-logits row."""
    model = load(tiny_path, led_projection="every_step")
    fit = model.n_vocab // 4  # the largest k whose 4*k values fit
    raises(
        ValueError,
        "led_projection='every_step' needs k",
        call=lambda: model.generate("hi", config=LEDConfig(d=4, k=fit + 1), max_tokens=2).result,
    )
    assert len(model.generate("hi", config=LEDConfig(d=4, k=fit), max_tokens=2, seed=1).result.tokens) >= 1
    assert len(load(tiny_path).generate("hi", config=LEDConfig(d=4, k=fit + 1), max_tokens=2).result.tokens) >= 1


@pytest.mark.parametrize(
    "case",
    [
        "load(tiny_path, n_ctx=2**31)",
        "load(tiny_path, n_ctx=2**64)",
        "load(tiny_path, n_batch=2**40)",
        "load(tiny_path, n_threads=2**40)",
        "load(tiny_path, n_gpu_layers=2**40)",
        "load(tiny_path, n_gpu_layers=-2**40)",
        "model.generate('hi', max_tokens=2**31).result",
        "model.generate('hi', max_tokens=2**31 - 1).result",
        "model.generate_batch(['hi'], n=2**31, max_tokens=2)",
        "model.generate_batch(['hi'], n_parallel=2**40, max_tokens=2)",
        "model.generate_batch(['hi'], layer_analysis=2**40, max_tokens=2)",
        "model.depth_logits('hi', d=2**40)",
        "LEDConfig(d=2**40).check_model(4, 264)",
    ],
)
def test_integers_beyond_the_native_range_are_refused(tiny_path, model, case):
    """Values past C's int: an exception, never a wrapped-around number.  (The messages of the
    TypeErrors that pybind11 raises here list the native signature rather than the parameter.)"""
    with pytest.raises((TypeError, ValueError, OverflowError)):
        eval(case)


@pytest.mark.parametrize("path", [None, 3, 1.5, ["model.gguf"]], ids=repr)
def test_model_path_of_wrong_type(path):
    raises(TypeError, "expected str, bytes or os.PathLike", call=lambda: load(path))


@pytest.mark.parametrize(
    "kwargs, kind, needle",
    [
        (dict(max_tokens=0), ValueError, "max_tokens"),
        (dict(max_tokens=-1), ValueError, "max_tokens"),
        (dict(max_tokens=1.5), TypeError, "max_tokens"),
        (dict(max_tokens=4.0), TypeError, "max_tokens"),
        (dict(max_tokens=True), TypeError, "max_tokens"),
        (dict(max_tokens="4"), TypeError, "max_tokens"),
        (dict(max_tokens=None), TypeError, "max_tokens"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(seed=-(2**70)), ValueError, "seed"),
        (dict(seed="x"), ValueError, "seed"),
        (dict(seed=1.5), ValueError, "seed"),
        (dict(seed=True), ValueError, "seed"),
        (dict(stop=[""]), ValueError, "stop"),
        (dict(stop=""), ValueError, "stop"),
        (dict(stop=["ok", 3]), ValueError, "stop"),
        (dict(stop=[None]), ValueError, "stop"),
        (dict(stop=["a\x00b"]), ValueError, "NUL"),
        (dict(stop=["\ud800"]), ValueError, "surrogate"),
        (dict(trace=1), TypeError, "trace"),
        (dict(trace="yes"), TypeError, "trace"),
        (dict(config="greedy"), TypeError, "config"),
        (dict(config={"temperature": 0}), TypeError, "config"),
        (dict(config=LEDConfig(d=N_LAYER + 1)), ValueError, f"d={N_LAYER + 1}"),
        (dict(config=LEDConfig(d=2, k=N_VOCAB + 1)), ValueError, f"k={N_VOCAB + 1}"),
        (dict(config=LEDConfig(d=100, k=10**6)), ValueError, "d=100"),
        (dict(config=SamplingConfig(top_k=N_VOCAB + 1)), ValueError, f"top_k={N_VOCAB + 1}"),
    ],
    ids=str,
)
def test_generate_options(model, kwargs, kind, needle):
    options = dict(max_tokens=4, seed=0)
    options.update(kwargs)
    raises(kind, needle, call=lambda: model.generate("hello", **options).result)


@pytest.mark.parametrize("stop", [3, {"a"}], ids=repr)
def test_stop_not_a_list(model, stop):
    raises(TypeError, "stop", call=lambda: model.generate("hello", max_tokens=4, stop=stop))


def test_stop_none_means_no_stop_strings(model):
    assert len(model.generate("hello", max_tokens=4, seed=0, stop=None).result.tokens) >= 1


_EDGE_SCRIPT = """
import sys
import led_cpp
from led_cpp import LEDConfig, SamplingConfig
model = led_cpp.Model(sys.argv[1], n_ctx=64, n_threads=1)
config = eval(sys.argv[2])
print(model.generate("hi", max_tokens=2, seed=0, config=config).result.tokens)
"""


@pytest.mark.parametrize(
    "config",
    [
        "SamplingConfig(top_k=0)",  # documented: 0 keeps the whole vocabulary
        f"SamplingConfig(top_k={N_VOCAB})",
        f"SamplingConfig(top_k={N_VOCAB // 2 + 1})",  # 2k > n_vocab
        f"LEDConfig(d={N_LAYER}, k={N_VOCAB})",
        f"LEDConfig(d={N_LAYER}, k={N_VOCAB // 2 + 1})",
    ],
)
def test_largest_legal_k_does_not_crash(tiny_path, config):
    """The largest legal candidate counts run (in a subprocess, since the failure is an abort)."""
    run = subprocess.run(
        [sys.executable, "-c", _EDGE_SCRIPT, str(tiny_path), config],
        capture_output=True,
        text=True,
        env=_NO_GDB,
        timeout=120,
    )
    assert run.returncode == 0, f"exit status {run.returncode}: {run.stderr.strip()[-500:]}"


@pytest.mark.parametrize(
    "config", [f"SamplingConfig(top_k={N_VOCAB // 4})", f"LEDConfig(d={N_LAYER}, k={N_VOCAB // 4})"]
)
def test_large_k_runs(model, config):
    result = model.generate("hi", max_tokens=2, seed=0, config=eval(config)).result
    assert len(result.tokens) == 2


@pytest.mark.parametrize("temperature", [1e-39, 1e-40, 1e-44], ids=repr)
@pytest.mark.parametrize("led", [False, True], ids=["sampling", "led"])
def test_tiny_positive_temperature_is_refused_or_greedy(model, temperature, led):
    def config(t):
        return LEDConfig(temperature=t, d=3, k=4, think_only=False) if led else SamplingConfig(temperature=t)

    greedy = model.generate("hello", max_tokens=6, config=config(0)).result
    try:
        result = model.generate("hello", max_tokens=6, seed=1, config=config(temperature)).result
    except ValueError as error:
        assert "temperature" in str(error)
        return
    assert all(math.isfinite(value) for value in result.logprobs), result.logprobs
    assert result.tokens == greedy.tokens


def test_small_and_large_temperatures_are_sane(model):
    """1e-30 acts as greedy; a huge temperature samples (near) uniformly; no NaN."""
    greedy = model.generate("hello", max_tokens=6, config=SamplingConfig(temperature=0)).result.tokens
    cold = model.generate("hello", max_tokens=6, seed=1, config=SamplingConfig(temperature=1e-30)).result
    assert cold.tokens == greedy and all(math.isfinite(value) for value in cold.logprobs)
    hot = model.generate("hello", max_tokens=6, seed=1, config=SamplingConfig(temperature=1e30)).result
    assert all(math.isfinite(value) for value in hot.logprobs)


@pytest.mark.parametrize(
    "kwargs, kind, needle",
    [
        (dict(n=0), ValueError, "n must"),
        (dict(n=-1), ValueError, "n must"),
        (dict(n=1.5), TypeError, "n must"),
        (dict(n=True), TypeError, "n must"),
        (dict(n_parallel=0), ValueError, "n_parallel"),
        (dict(n_parallel=-4), ValueError, "n_parallel"),
        (dict(n_parallel="2"), TypeError, "n_parallel"),
        (dict(n_parallel=2.0), TypeError, "n_parallel"),
        (dict(max_tokens=0), ValueError, "max_tokens"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(layer_analysis=-1), ValueError, "layer_analysis"),
        (dict(layer_analysis=True), ValueError, "layer_analysis"),
        (dict(layer_analysis=N_VOCAB + 1), ValueError, "exceeds n_vocab"),
        (dict(layer_analysis=4, config=LEDConfig(d=2, k=2)), ValueError, "layer_analysis"),
    ],
    ids=str,
)
def test_generate_batch_options(model, kwargs, kind, needle):
    options = dict(max_tokens=4, seed=0)
    options.update(kwargs)
    raises(kind, needle, call=lambda: model.generate_batch(["hello", "world"], **options))


@pytest.mark.parametrize("prompts", ["hello", [], (), None, 3, {"hello"}], ids=repr)
def test_generate_batch_prompts_not_a_list(model, prompts):
    raises(ValueError, "prompts must be a non-empty list", call=lambda: model.generate_batch(prompts, max_tokens=2))
    raises(ValueError, "prompts must be a non-empty list", call=lambda: model.stream_batch(prompts, max_tokens=2))


def test_generate_batch_one_bad_prompt_among_good(model):
    raises(ValueError, "NUL", call=lambda: model.generate_batch(["fine", "bad\x00"], max_tokens=2))
    raises(ValueError, "[0, 264)", call=lambda: model.generate_batch(["fine", [1, 999]], max_tokens=2))
    raises(ValueError, "exceed the context", call=lambda: model.generate_batch(["fine", "x" * 200], max_tokens=2))


@pytest.mark.parametrize(
    "kwargs, kind, needle",
    [
        (dict(d=0), ValueError, "d must"),
        (dict(d=N_LAYER + 1), ValueError, f"d={N_LAYER + 1}"),
        (dict(d=1.5), TypeError, "d must"),
        (dict(d=True), TypeError, "d must"),
        (dict(d=2, layer_counting="x"), ValueError, "layer_counting"),
    ],
    ids=str,
)
def test_depth_logits_options(model, kwargs, kind, needle):
    raises(kind, needle, call=lambda: model.depth_logits("hello", **kwargs))


def test_depth_logits_prompt_too_long(model):
    raises(ValueError, "context", call=lambda: model.depth_logits("x" * 100, d=2))


# --------------------------------------------------------------------------- prompts


def test_empty_prompt(model):
    raises(ValueError, "empty", call=lambda: model.generate("", max_tokens=2))
    raises(ValueError, "non-empty", call=lambda: model.generate([], max_tokens=2))
    raises(ValueError, "empty", call=lambda: model.generate_batch(["ok", ""], max_tokens=2))


def test_prompt_longer_than_the_context(model):
    raises(ValueError, "exceed the context", "64", call=lambda: model.generate("x" * 100, max_tokens=2))
    raises(ValueError, "exceed the context", call=lambda: model.generate(list(range(1, 70)), max_tokens=2))


def test_prompt_plus_max_tokens_longer_than_the_context(model):
    """A prompt that fits alone, but not with max_tokens; max_tokens alone larger than n_ctx."""
    raises(ValueError, "exceed the context", "max_tokens", call=lambda: model.generate("x" * 40, max_tokens=40))
    raises(ValueError, "exceed the context", call=lambda: model.generate("hi", max_tokens=10_000))
    assert len(model.generate("x" * 40, max_tokens=N_CTX - 41, seed=0).result.tokens) <= N_CTX - 41


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "hello\x00"], ids=repr)
def test_prompt_with_nul(model, text):
    raises(ValueError, "NUL", call=lambda: model.generate(text, max_tokens=2))
    raises(ValueError, "NUL", call=lambda: model.tokenize(text))


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "ok \udc80"], ids=ascii)
def test_prompt_with_lone_surrogate(model, text):
    raises(ValueError, "surrogate", call=lambda: model.generate(text, max_tokens=2))
    raises(ValueError, "surrogate", call=lambda: model.tokenize(text))


@pytest.mark.parametrize(
    "prompt",
    [
        None,
        3,
        1.5,
        b"hello",
        bytearray(b"hi"),
        {"role": "user", "content": "hi"},
        ["hello", "world"],
        [1, "2"],
        [True, False],
        [1.0, 2.0],
        [{"role": "user", "content": "hi"}, "hello"],
    ],
    ids=repr,
)
def test_prompt_of_wrong_shape(model, prompt):
    raises(ValueError, "a prompt must be", call=lambda: model.generate(prompt, max_tokens=2))


@pytest.mark.parametrize(
    "messages, needle",
    [
        ({"role": "user", "content": "hi"}, "non-empty list"),
        ("hello", "non-empty list"),
        ([], "non-empty list"),
        (["hello"], "message 0 must be a dict"),
        ([{"role": "user", "content": "hi"}, ["assistant", "x"]], "message 1 must be a dict"),
        ([{"content": "hi"}], "'role'"),
        ([{"role": "", "content": "hi"}], "'role'"),
        ([{"role": 1, "content": "hi"}], "'role'"),
        ([{"role": "user"}], "'content'"),
        ([{"role": "user", "content": 3}], "'content'"),
        ([{"role": "user", "content": None}], "'content'"),
        ([{"role": "user", "content": ["hi"]}], "'content'"),
        ([{"role": "user", "content": b"hi"}], "'content'"),
        ([{"role": "user", "content": "ok"}, {"role": "assistant"}], "message 1"),
    ],
    ids=str,
)
def test_chat_messages_of_wrong_shape(model, messages, needle):
    raises(ValueError, needle, call=lambda: model.apply_chat_template(messages))
    if isinstance(messages, list) and messages and all(isinstance(item, dict) for item in messages):
        raises(ValueError, needle, call=lambda: model.generate(messages, max_tokens=2))


@pytest.mark.parametrize("content, needle", [("a\x00b", "NUL"), ("\ud800", "surrogate")], ids=ascii)
def test_chat_message_with_bad_text(model, content, needle):
    raises(ValueError, needle, call=lambda: model.generate([{"role": "user", "content": content}], max_tokens=2))


def test_chat_to_a_model_without_a_template(plain_model):
    assert plain_model.chat_template is None
    messages = [{"role": "user", "content": "hi"}]
    raises(ValueError, "no chat template", call=lambda: plain_model.generate(messages, max_tokens=2))
    raises(ValueError, "no chat template", call=lambda: plain_model.apply_chat_template(messages))
    raises(ValueError, "no chat template", call=lambda: plain_model.generate_batch([messages], max_tokens=2))


def test_chat_works_with_a_template(model):
    assert len(model.generate([{"role": "user", "content": "hi"}], max_tokens=2, seed=0).result.tokens) == 2


@pytest.mark.parametrize(
    "tokens",
    [
        [N_VOCAB],
        [1, 2, N_VOCAB + 5],
        [-1],
        [0, -100],
        [2**31],
        [2**40],
        [-(2**63)],
        np.array([1, 2, 300]),
        np.array([-1], dtype=np.int64),
        (5, 99999),
    ],
    ids=lambda tokens: repr(list(tokens)),
)
def test_token_ids_out_of_range(model, tokens):
    raises(ValueError, f"[0, {N_VOCAB})", call=lambda: model.generate(tokens, max_tokens=2))
    raises(ValueError, f"[0, {N_VOCAB})", call=lambda: model.generate_batch([[1], tokens], max_tokens=2))


def test_token_ids_in_range_work(model):
    assert len(model.generate([0, 255, N_VOCAB - 1], max_tokens=2, seed=0).result.tokens) == 2
    assert len(model.generate(np.array([1, 2, 3], dtype=np.int32), max_tokens=2, seed=0).result.tokens) == 2


@pytest.mark.parametrize("tokens", [[N_VOCAB], [-5]])
def test_detokenize_out_of_range(model, tokens):
    raises(ValueError, "outside the vocabulary", call=lambda: model.detokenize(tokens))


@pytest.mark.parametrize("text", [None, 3, b"hello"], ids=repr)
def test_tokenize_non_text(model, text):
    raises(TypeError, "text must be a str", call=lambda: model.tokenize(text))


def test_model_still_works_after_all_refusals(model):
    """Nothing above left the model busy or broken."""
    first = model.generate("hello", max_tokens=6, seed=5, config=SamplingConfig(temperature=1.0)).result
    second = model.generate("hello", max_tokens=6, seed=5, config=SamplingConfig(temperature=1.0)).result
    assert first.tokens == second.tokens and len(first.tokens) == 6
