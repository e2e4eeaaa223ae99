"""Tests for led_cpp.gguf_check, the pure-Python GGUF pre-flight validator.

A small valid model is written with the ``gguf`` package's GGUFWriter (F32, Q8_0
and Q4_0 tensors, llama metadata, a tokenizer); hostile variants are made by
patching its bytes at offsets found with GGUFReader, or built field by field with
``build_gguf`` from tests/support/fuzz_gguf_check.py.  Every hostile case asserts that
ModelFileError is raised and that its message names the problem.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tests.support import fuzz_gguf_check as fz  # noqa: E402
from tests.support.fuzz_gguf_check import (  # noqa: E402
    ARR,
    BOOL,
    F32,
    F32_T,
    F64,
    I32,
    KV,
    Q4_0_T,
    Q8_0_T,
    STR,
    U8,
    U16,
    U32,
    U64,
    Tensor,
    build_gguf,
    llama_kvs,
)

try:  # the package, when it imports (built in place or installed) ...
    import led_cpp.gguf_check as gc
except ImportError:  # ... else the module straight from the source tree
    gc = fz.load_gguf_check()

gguf = pytest.importorskip("gguf")

ModelFileError = gc.ModelFileError
TOKENS = ["<unk>", "<s>", "</s>", "hello", "world", "▁a", "▁b", "<0x0A>"]


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------


def write_valid(path: Path, *, alignment: int | None = None, endian=None) -> Path:
    kw = {} if endian is None else {"endianess": endian}
    w = gguf.GGUFWriter(str(path), "llama", **kw)
    w.add_name("tiny test model")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_tokenizer_model("llama")
    w.add_token_list(TOKENS)
    w.add_token_scores([0.0] * len(TOKENS))
    w.add_token_types([1] * len(TOKENS))
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((len(TOKENS), 64), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    for name, qtype in (
        ("blk.0.attn_q.weight", gguf.GGMLQuantizationType.Q8_0),
        ("blk.0.attn_k.weight", gguf.GGMLQuantizationType.Q4_0),
    ):
        q = gguf.quants.quantize(rng.standard_normal((4, 64), dtype=np.float32), qtype)
        w.add_tensor(name, q, raw_dtype=qtype)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(64, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    return write_valid(tmp_path_factory.mktemp("gguf") / "valid.gguf")


@pytest.fixture(scope="module")
def layout(valid):
    """Byte offsets inside the valid file, from gguf's own reader."""
    r = gguf.GGUFReader(str(valid))
    kv = {name: int(f.offset) for name, f in r.fields.items() if not name.startswith("GGUF.")}
    tensors = [(t.name, int(t.field.offset)) for t in r.tensors]
    return {
        "kv": kv,
        "tensors": tensors,
        "tensor_info_start": tensors[0][1],
        "data_start": int(r.data_offset),
        "size": valid.stat().st_size,
        "tensor_ends": [int(t.data_offset) + int(t.n_bytes) for t in r.tensors],
    }


def kv_value_offset(layout, key: str) -> int:
    """Offset of the u32 type tag of metadata entry ``key``."""
    return layout["kv"][key] + 8 + len(key.encode())


def tensor_fields(data: bytes, info_offset: int):
    """Offsets of (n_dims, dims[0], type, offset) for the tensor-info entry at ``info_offset``."""
    nlen = struct.unpack_from("<Q", data, info_offset)[0]
    o_ndims = info_offset + 8 + nlen
    n_dims = struct.unpack_from("<I", data, o_ndims)[0]
    o_dims = o_ndims + 4
    o_type = o_dims + 8 * n_dims
    return o_ndims, o_dims, o_type, o_type + 4


def patched(src: Path, dst: Path, *patches) -> Path:
    b = bytearray(src.read_bytes())
    for offset, fmt, value in patches:
        struct.pack_into(fmt, b, offset, value)
    dst.write_bytes(bytes(b))
    return dst


def rejected(path, *needles: str) -> str:
    with pytest.raises(ModelFileError) as ei:
        gc.check_gguf_file(path)
    msg = str(ei.value)
    assert str(path) in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


def write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def built(tmp_path, kvs, tensors=(), **kw) -> Path:
    return write(tmp_path, build_gguf(kvs, tensors, **kw))


def one_tensor():
    return [Tensor("token_embd.weight", [64, 8], F32_T)]


# ---------------------------------------------------------------------------
# valid files
# ---------------------------------------------------------------------------


def test_valid_file_passes(valid, layout):
    s = gc.check_gguf_file(valid)
    assert s.path == str(valid)
    assert s.version == 3
    assert s.architecture == "llama"
    assert s.n_tensors == 5 and s.n_kv == len(layout["kv"])
    assert s.alignment == 32
    assert s.file_size == valid.stat().st_size
    assert s.tensor_data_offset == layout["data_start"] and s.tensor_data_offset % 32 == 0
    assert s.tensor_names == (
        "token_embd.weight",
        "output_norm.weight",
        "blk.0.attn_q.weight",
        "blk.0.attn_k.weight",
        "blk.0.attn_norm.weight",
    )
    assert s.metadata_keys == tuple(layout["kv"])
    assert "general.architecture" in s.metadata_keys and "tokenizer.ggml.tokens" in s.metadata_keys
    with pytest.raises(AttributeError):
        s.version = 2  # frozen


def test_pathlike_and_bytes_paths(valid):
    assert gc.check_gguf_file(Path(valid)).n_tensors == 5
    assert gc.check_gguf_file(os.fsencode(valid)).n_tensors == 5


def test_custom_alignment_passes(tmp_path):
    s = gc.check_gguf_file(write_valid(tmp_path / "a64.gguf", alignment=64))
    assert s.alignment == 64 and s.tensor_data_offset % 64 == 0


def test_version_2_passes(tmp_path):
    s = gc.check_gguf_file(built(tmp_path, llama_kvs(), one_tensor(), version=2))
    assert s.version == 2


def test_vocab_only_file_without_tensors_passes(tmp_path):
    s = gc.check_gguf_file(built(tmp_path, llama_kvs()))
    assert s.n_tensors == 0 and s.tensor_names == ()


def test_fuzz_seed_files_pass(tmp_path):
    for i, data in enumerate(fz.seed_files()):
        gc.check_gguf_file(write(tmp_path, data, f"seed{i}.gguf"))


def test_split_model_later_part_passes_without_architecture(tmp_path):
    kvs = [KV("split.no", U16, 2), KV("split.count", U16, 3), KV("split.tensors.count", I32, 9)]
    s = gc.check_gguf_file(built(tmp_path, kvs, one_tensor()))
    assert s.architecture is None


# ---------------------------------------------------------------------------
# the path itself
# ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    p = tmp_path / "nope.gguf"
    with pytest.raises(gc.ModelFileNotFoundError) as ei:
        gc.check_gguf_file(p)
    e = ei.value
    assert isinstance(e, FileNotFoundError) and isinstance(e, ModelFileError) and isinstance(e, ValueError)
    assert str(p) in str(e) and "does not exist" in str(e)
    assert e.filename == str(p)


def test_unusable_path(tmp_path):
    with pytest.raises(ModelFileError, match="cannot be accessed"):
        gc.check_gguf_file(str(tmp_path / "a\0b.gguf"))
    with pytest.raises(ModelFileError, match="cannot be accessed"):
        gc.check_gguf_file(tmp_path / ("x" * 5000))


def test_read_error(valid):
    class Failing(io.BytesIO):
        def read(self, n=-1):
            raise OSError(5, "Input/output error")

    with pytest.raises(ModelFileError, match="reading the file failed"):
        gc.check_stream(Failing(valid.read_bytes()), valid.stat().st_size, str(valid))


def test_directory(tmp_path):
    rejected(tmp_path, "directory")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="POSIX only")
def test_device(tmp_path):
    with pytest.raises(ModelFileError, match="a device"):
        gc.check_gguf_file("/dev/null")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_fifo_is_rejected_without_hanging(tmp_path):
    p = tmp_path / "pipe.gguf"
    os.mkfifo(p)
    # Opening a FIFO for reading blocks until a writer comes: the check must refuse it first.
    # A hang shows as the thread still running after a generous limit (not a speed target).
    outcome = []

    def check():
        try:
            gc.check_gguf_file(p)
        except ModelFileError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=check, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "checking a named pipe hangs"
    assert len(outcome) == 1 and "named pipe" in outcome[0] and str(p) in outcome[0], outcome


def test_empty_file(tmp_path):
    rejected(write(tmp_path, b""), "empty")


@pytest.mark.parametrize(
    "data, hint",
    [
        (b"hello, this is a text file and not a model at all", "not a GGUF file"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "Git LFS pointer"),
        (b"tjgg" + b"\0" * 60, "GGJT"),
        (struct.pack("<Q", 100) + b'{"__metadata__": {}}' + b"\0" * 80, "safetensors"),
        (b"PK\x03\x04" + b"\0" * 60, "ZIP"),
        (b"GGU", "truncated"),
        (b"FUGG" + b"\0" * 60, "byte-reversed"),
        (b'  {"model": "x"}' + b" " * 60, "JSON"),
    ],
)
def test_not_gguf(tmp_path, data, hint):
    rejected(write(tmp_path, data), hint)


def test_error_objects(tmp_path):
    p = write(tmp_path, b"nonsense" * 8)
    with pytest.raises(ModelFileError) as ei:
        gc.check_gguf_file(p)
    e = ei.value
    assert e.path == str(p) and e.problem and e.advice and not e.internal_error
    assert str(e) == f"Cannot use model file '{p}': {e.problem}. {e.advice}."
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is ModelFileError and str(again) == str(e)


# ---------------------------------------------------------------------------
# header
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, needle", [(0, "version field is 0"), (1, "version 1"), (4, "version 4"), (0x03000000, "big-endian")]
)
def test_bad_versions(tmp_path, valid, version, needle):
    rejected(patched(valid, tmp_path / "v.gguf", (4, "<I", version)), needle)


def test_big_endian_file_from_gguf_writer(tmp_path):
    p = write_valid(tmp_path / "be.gguf", endian=gguf.GGUFEndian.BIG)
    rejected(p, "big-endian")


@pytest.mark.parametrize(
    "offset, value, needle",
    [
        (8, 1 << 40, "tensor count is an absurd"),
        (16, 1 << 40, "key/value count is an absurd"),
        (8, (1 << 64) - 1, "negative"),
        (16, 1 << 63, "negative"),
        (8, 5000, "need at least"),
        (16, 5000, "need at least"),
    ],
)
def test_absurd_counts(tmp_path, valid, offset, value, needle):
    rejected(patched(valid, tmp_path / "c.gguf", (offset, "<Q", value)), needle)


# ---------------------------------------------------------------------------
# truncation
# ---------------------------------------------------------------------------


def _assert_truncation_rejected(valid: Path, tmp_path: Path, cuts) -> None:
    data = valid.read_bytes()
    p = tmp_path / "cut.gguf"
    for cut in cuts:
        p.write_bytes(data[:cut])
        with pytest.raises(ModelFileError) as ei:
            gc.check_gguf_file(p)
        msg = str(ei.value)
        assert "truncated" in msg or (cut == 0 and "empty" in msg), (cut, msg)


def test_truncated_at_every_offset_of_header_and_metadata(valid, layout, tmp_path):
    _assert_truncation_rejected(valid, tmp_path, range(0, layout["tensor_info_start"] + 1))


def test_truncated_at_every_offset_of_tensor_table(valid, layout, tmp_path):
    _assert_truncation_rejected(valid, tmp_path, range(layout["tensor_info_start"], layout["data_start"] + 1))


def test_truncated_inside_tensor_data(valid, layout, tmp_path):
    last_end = max(layout["tensor_ends"])
    cuts = list(range(layout["data_start"], last_end, 37)) + [last_end - 1]
    _assert_truncation_rejected(valid, tmp_path, cuts)


def test_truncated_reports_where(valid, layout, tmp_path):
    data = valid.read_bytes()
    p = write(tmp_path, data[: kv_value_offset(layout, "tokenizer.ggml.scores") + 2])
    rejected(p, "truncated", "inside the value of metadata key 'tokenizer.ggml.scores'")
    p = write(tmp_path, data[: kv_value_offset(layout, "tokenizer.ggml.scores") + 4 + 4 + 8 + 5])
    rejected(p, "truncated", "'tokenizer.ggml.scores' is an array of 8 float32 values")
    p = write(tmp_path, data[: layout["tensor_info_start"] + 20])
    rejected(p, "truncated", "tensor table")


def test_file_shrinking_while_being_read(valid):
    data = valid.read_bytes()
    with pytest.raises(ModelFileError, match="truncated"):
        gc.check_stream(io.BytesIO(data[:300]), len(data), "shrinking.gguf")


def test_tensor_data_past_eof(valid, layout, tmp_path):
    data = valid.read_bytes()
    last = max(range(len(layout["tensor_ends"])), key=lambda i: layout["tensor_ends"][i])
    name = layout["tensors"][last][0]
    rejected(write(tmp_path, data[: layout["tensor_ends"][last] - 1]), "truncated", name, "past the end")


def test_data_section_start_past_eof(tmp_path):
    data = build_gguf(llama_kvs(), one_tensor())
    kvs = llama_kvs() + [KV("general.alignment", U32, 1 << 20)]
    p = write(tmp_path, build_gguf(kvs, one_tensor(), alignment=1 << 20, data=False) + b"x" * 10)
    rejected(p, "tensor data section should start")
    assert data  # the plain file is fine
    gc.check_gguf_file(write(tmp_path, data, "ok.gguf"))


# ---------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------


def test_absurd_key_length(tmp_path, valid, layout):
    rejected(
        patched(valid, tmp_path / "k.gguf", (layout["kv"]["general.name"], "<Q", 1 << 62)), "absurd length", "65,535"
    )


def test_key_length_past_eof(tmp_path, valid, layout):
    rejected(
        patched(valid, tmp_path / "k.gguf", (layout["kv"]["general.name"], "<Q", 60000)),
        "truncated or corrupted",
        "claims 60,000 bytes",
    )


def test_string_value_past_eof(tmp_path, valid, layout):
    off = kv_value_offset(layout, "general.name") + 4
    rejected(patched(valid, tmp_path / "s.gguf", (off, "<Q", 10**9)), "general.name", "claims 1,000,000,000 bytes")


def test_absurd_string_length(tmp_path, valid, layout):
    off = kv_value_offset(layout, "general.architecture") + 4
    rejected(patched(valid, tmp_path / "s.gguf", (off, "<Q", 1 << 40)), "general.architecture", "absurd length")


def test_string_array_element_past_eof(tmp_path, valid, layout):
    off = kv_value_offset(layout, "tokenizer.ggml.tokens") + 4 + 4 + 8  # first element's length
    rejected(
        patched(valid, tmp_path / "s.gguf", (off, "<Q", 10**8)),
        "tokenizer.ggml.tokens",
        "element #0",
        "claims 100,000,000 bytes",
    )


@pytest.mark.parametrize(
    "count, needle",
    [
        ((1 << 31), "absurd 2,147,483,648 elements"),
        (10**8, "needing at least"),
    ],
)
def test_absurd_array_length(tmp_path, valid, layout, count, needle):
    off = kv_value_offset(layout, "tokenizer.ggml.scores") + 4 + 4
    rejected(patched(valid, tmp_path / "a.gguf", (off, "<Q", count)), "tokenizer.ggml.scores", needle)


def test_string_array_over_validator_limit(tmp_path):
    n = gc.MAX_STRING_ARRAY_ELEMENTS + 1
    kv = KV("tokenizer.ggml.merges", ARR, (n, b"\0" * (8 * n)), etype=STR)
    rejected(built(tmp_path, [KV("general.architecture", STR, "llama"), kv]), "merges", "validator limit")


def test_numeric_array_over_validator_limit(tmp_path):
    n = gc.MAX_NUMERIC_ARRAY_ELEMENTS + 1
    kv = KV("tokenizer.ggml.precompiled_charsmap", ARR, (n, b"\0" * n), etype=U8)
    rejected(built(tmp_path, llama_kvs() + [kv]), "precompiled_charsmap", "16,777,217 uint8", "validator limit")


def test_string_over_validator_limit(tmp_path):
    kv = KV("tokenizer.chat_template", STR, "x" * (gc.MAX_STRING_VALUE + 1))
    rejected(built(tmp_path, llama_kvs() + [kv]), "chat_template", "16,777,217 bytes", "validator limit")
    kv = KV("tokenizer.ggml.merges", ARR, ["a b", "x" * (gc.MAX_STRING_VALUE + 1)], etype=STR)
    rejected(built(tmp_path, llama_kvs() + [kv]), "merges", "element #1", "validator limit")


def test_vocabulary_over_validator_limit(tmp_path):
    n = gc.MAX_VOCAB_TOKENS + 1
    kv = KV("tokenizer.ggml.tokens", ARR, (n, b"\0" * (8 * n)), etype=STR)
    rejected(built(tmp_path, [KV("general.architecture", STR, "llama"), kv]), "1,048,577 tokens", "validator limit")


@pytest.mark.parametrize("vtype", [13, 255, 0xFFFFFFFF])
def test_unknown_value_type(tmp_path, valid, layout, vtype):
    off = kv_value_offset(layout, "llama.block_count")
    rejected(
        patched(valid, tmp_path / "t.gguf", (off, "<I", vtype)), "llama.block_count", f"unknown value type {vtype}"
    )


def test_unknown_array_element_type(tmp_path, valid, layout):
    off = kv_value_offset(layout, "tokenizer.ggml.scores") + 4
    rejected(patched(valid, tmp_path / "t.gguf", (off, "<I", 77)), "unknown element type 77")


def test_nested_array(tmp_path, valid, layout):
    off = kv_value_offset(layout, "tokenizer.ggml.scores") + 4
    rejected(patched(valid, tmp_path / "t.gguf", (off, "<I", 9)), "tokenizer.ggml.scores", "nested array")


def test_duplicate_key(tmp_path):
    kvs = llama_kvs() + [KV("llama.context_length", U32, 4096)]
    rejected(built(tmp_path, kvs, one_tensor()), "'llama.context_length' appears twice")


def test_empty_key(tmp_path):
    rejected(built(tmp_path, llama_kvs() + [KV("", U32, 1)], one_tensor()), "empty key")


def test_nul_in_key(tmp_path):
    rejected(built(tmp_path, llama_kvs() + [KV(b"general.alignment\0x", U32, 3)], one_tensor()), "NUL byte")


@pytest.mark.parametrize("value", [0, 3, 48, (1 << 31) + 1])
def test_alignment_not_power_of_two(tmp_path, value):
    kvs = llama_kvs() + [KV("general.alignment", U32, value)]
    rejected(built(tmp_path, kvs, one_tensor()), "general.alignment", f"is {value}", "not a power of two")


def test_alignment_wrong_type(tmp_path):
    kvs = llama_kvs() + [KV("general.alignment", U64, 32)]
    rejected(built(tmp_path, kvs, one_tensor()), "general.alignment", "must be a uint32 but is uint64")


# ---------------------------------------------------------------------------
# tensor table
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ggml_type, needle",
    [
        (99, "unknown ggml type 99"),
        (43, "unknown ggml type 43"),
        (-1, "unknown ggml type -1"),
        (4, "no longer supports"),
        (31, "no longer supports"),
    ],
)
def test_bad_ggml_type(tmp_path, valid, layout, ggml_type, needle):
    name, info = layout["tensors"][2]
    _, _, o_type, _ = tensor_fields(valid.read_bytes(), info)
    rejected(patched(valid, tmp_path / "t.gguf", (o_type, "<i", ggml_type)), name, needle)


@pytest.mark.parametrize("n_dims", [0, 5, 0xFFFFFFFF])
def test_bad_n_dims(tmp_path, valid, layout, n_dims):
    name, info = layout["tensors"][0]
    o_ndims, _, _, _ = tensor_fields(valid.read_bytes(), info)
    rejected(patched(valid, tmp_path / "t.gguf", (o_ndims, "<I", n_dims)), name, f"has {n_dims} dimensions")


@pytest.mark.parametrize("dim, needle", [(0, "of size 0"), (-64, "of size -64")])
def test_bad_dimension(tmp_path, valid, layout, dim, needle):
    name, info = layout["tensors"][1]
    _, o_dims, _, _ = tensor_fields(valid.read_bytes(), info)
    rejected(patched(valid, tmp_path / "t.gguf", (o_dims, "<q", dim)), name, needle)


def test_element_count_overflow(tmp_path):
    t = [Tensor("huge", [1 << 32, 1 << 32], F32_T, nbytes=32)]
    rejected(built(tmp_path, llama_kvs(), t), "'huge'", "overflows int64")


def test_row_not_multiple_of_block_size(tmp_path, valid, layout):
    name, info = layout["tensors"][2]  # Q8_0, block size 32
    _, o_dims, _, _ = tensor_fields(valid.read_bytes(), info)
    rejected(patched(valid, tmp_path / "t.gguf", (o_dims, "<q", 33)), name, "Q8_0", "33", "block size 32")


def test_duplicate_tensor_names(tmp_path):
    t = [Tensor("output.weight", [32], F32_T), Tensor("output.weight", [32], F32_T)]
    rejected(built(tmp_path, llama_kvs(), t), "'output.weight' appears twice")


def test_tensor_name_too_long(tmp_path):
    rejected(built(tmp_path, llama_kvs(), [Tensor("x" * 64, [32], F32_T)]), "name of 64 bytes")


def test_empty_tensor_name(tmp_path):
    rejected(built(tmp_path, llama_kvs(), [Tensor("", [32], F32_T)]), "empty name")


def test_unaligned_tensor_offset(tmp_path):
    t = [Tensor("a", [32], F32_T), Tensor("b", [32], F32_T, offset=130)]
    rejected(built(tmp_path, llama_kvs(), t), "'b'", "not a multiple of the alignment 32")


def test_overlapping_tensors(tmp_path):
    t = [Tensor("a", [8], F32_T), Tensor("b", [64], F32_T), Tensor("c", [64], F32_T, offset=256)]
    rejected(built(tmp_path, llama_kvs(), t), "'c'", "overlaps", "'b'")


def test_gap_between_tensors(tmp_path):
    t = [Tensor("a", [8], F32_T), Tensor("b", [8], F32_T, offset=64)]
    rejected(built(tmp_path, llama_kvs(), t), "'b'", "must be 32")


def test_tensor_offset_past_eof(tmp_path, valid, layout):
    name, info = layout["tensors"][-1]
    _, _, _, o_off = tensor_fields(valid.read_bytes(), info)
    rejected(patched(valid, tmp_path / "t.gguf", (o_off, "<Q", 1 << 60)), name)


# ---------------------------------------------------------------------------
# metadata semantics
# ---------------------------------------------------------------------------


def test_missing_architecture(tmp_path):
    kvs = [kv for kv in llama_kvs() if kv.key != "general.architecture"]
    rejected(built(tmp_path, kvs, one_tensor()), "no 'general.architecture'")


def test_architecture_wrong_type(tmp_path):
    kvs = [KV("general.architecture", U32, 5)] + llama_kvs()[1:]
    rejected(built(tmp_path, kvs, one_tensor()), "general.architecture", "must be a string")


def test_architecture_not_utf8(tmp_path):
    kvs = [KV("general.architecture", STR, b"ll\xffama")] + llama_kvs()[1:]
    rejected(built(tmp_path, kvs, one_tensor()), "general.architecture", "not valid UTF-8")


def test_architecture_absurdly_long(tmp_path):
    kvs = [KV("general.architecture", STR, "x" * 70000)] + llama_kvs()[1:]
    rejected(built(tmp_path, kvs, one_tensor()), "general.architecture", "absurdly long")


def test_vocabulary_of_wrong_type(tmp_path):
    kvs = _with(llama_kvs(), **{"tokenizer.ggml.tokens": (ARR, (U32, [1, 2, 3]))})
    rejected(
        built(tmp_path, kvs, one_tensor()), "'tokenizer.ggml.tokens' must be array of string but is array of uint32"
    )


def test_architecture_empty(tmp_path):
    kvs = [KV("general.architecture", STR, "")] + llama_kvs()[1:]
    rejected(built(tmp_path, kvs, one_tensor()), "general.architecture", "is empty")


def test_split_part_without_split_count(tmp_path):
    rejected(built(tmp_path, [KV("split.no", U16, 1)], one_tensor()), "part 2 of a split model", "split.count")


def test_validator_bug_still_raises_model_file_error(monkeypatch, valid):
    def broken(r, path):
        raise KeyError("oops")

    monkeypatch.setattr(gc.file_check, "inspect_stream", broken)
    with pytest.raises(ModelFileError) as ei:
        gc.check_gguf_file(valid)
    assert ei.value.internal_error and "KeyError" in str(ei.value) and str(valid) in str(ei.value)


def test_split_no_wrong_type_would_abort(tmp_path):
    kvs = [KV("split.no", U32, 1), KV("split.count", U16, 2)]
    rejected(built(tmp_path, kvs, one_tensor()), "'split.no' must be uint16", "abort")


@pytest.mark.parametrize(
    "kv, needle",
    [
        (KV("general.type", U32, 1), "'general.type' must be string"),
        (KV("adapter.type", U8, 1), "'adapter.type' must be string"),
        (KV("adapter.lora.alpha", F64, 1.0), "'adapter.lora.alpha' must be float32"),
    ],
)
def test_lora_keys_read_without_type_check(tmp_path, kv, needle):
    rejected(built(tmp_path, llama_kvs() + [kv], one_tensor()), needle, "abort")


def _with(kvs, **changes):
    out = [kv for kv in kvs if kv.key not in changes]
    for key, (vtype, value) in changes.items():
        out.append(KV(key, vtype, value) if vtype != ARR else KV(key, ARR, value[1], etype=value[0]))
    return out


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"llama.block_count": (U32, 0)}, "block_count is 0"),
        ({"llama.block_count": (U32, 513)}, "block_count is 513"),
        ({"llama.nextn_predict_layers": (U32, 2)}, "nextn_predict_layers 2 exceeds block_count 1"),
        ({"llama.expert_count": (U32, 2000), "llama.expert_used_count": (U32, 2)}, "expert_count is 2000"),
        ({"llama.expert_count": (U32, 8), "llama.expert_used_count": (U32, 9)}, "expert_used_count 9 exceeds"),
        ({"llama.expert_used_count": (U32, 1)}, "expert_used_count 1 exceeds expert_count 0"),
        ({"llama.expert_count": (U32, 8)}, "expert_used_count is 0 or missing"),
        ({"llama.expert_count": (U32, 8), "llama.expert_used_count": (ARR, (I32, [-1]))}, "exceeds expert_count 8"),
        (
            {
                "llama.expert_count": (U32, 8),
                "llama.expert_used_count": (U32, 2),
                "llama.expert_group_count": (U32, 3),
                "llama.expert_group_used_count": (U32, 1),
            },
            "not a multiple",
        ),
        (
            {
                "llama.expert_count": (U32, 8),
                "llama.expert_used_count": (U32, 2),
                "llama.expert_group_count": (U32, 4),
                "llama.expert_group_used_count": (U32, 4),
            },
            "not in 1..3",
        ),
        ({"llama.expert_group_count": (U32, 2)}, "has no experts"),
        (
            {"llama.expert_count": (U32, 4), "llama.expert_used_count": (U32, 2), "llama.expert_group_count": (U32, 4)},
            "expert_group_count 4 is not below expert_count 4",
        ),
        ({"llama.rope.scaling.type": (STR, "dynamic")}, "rope.scaling.type is 'dynamic'"),
    ],
)
def test_hyperparameters_llama_cpp_asserts_on(tmp_path, changes, needle):
    rejected(built(tmp_path, _with(llama_kvs(), **changes), one_tensor()), needle, "abort")


@pytest.mark.parametrize(
    "arch, changes, needle",
    [
        ("llama", {"llama.expert_used_count": (ARR, (BOOL, [True]))}, "expert_used_count 1 exceeds expert_count 0"),
        (
            "wavtokenizer-dec",
            {"wavtokenizer-dec.posnet.block_count": (U32, 2), "wavtokenizer-dec.convnext.block_count": (U32, 1)},
            "posnet.block_count 2 exceeds",
        ),
    ],
)
def test_more_hyperparameter_asserts(tmp_path, arch, changes, needle):
    kvs = _with(llama_kvs(arch=arch), **changes)
    rejected(built(tmp_path, kvs, one_tensor()), needle, "abort")


@pytest.mark.parametrize(
    "arch, changes",
    [
        # llama.cpp stops with an ordinary error (wrong array length / element type) before asserting
        ("llama", {"llama.expert_count": (U32, 4), "llama.expert_used_count": (ARR, (U32, [9, 9]))}),
        ("llama", {"llama.expert_count": (U32, 4), "llama.expert_used_count": (ARR, (F32, [9.0]))}),
        ("llama", {"llama.expert_count": (U32, 4), "llama.expert_used_count": (U64, 9)}),
        # hunyuan-dense with a single "expert" is treated as dense
        ("hunyuan-dense", {"hunyuan-dense.expert_count": (U32, 1), "hunyuan-dense.expert_used_count": (U32, 1)}),
        # clip models skip the hyper-parameters
        ("clip", {"clip.block_count": (U32, 0)}),
    ],
)
def test_hyperparameter_cases_llama_cpp_survives(tmp_path, arch, changes):
    gc.check_gguf_file(built(tmp_path, _with(llama_kvs(arch=arch), **changes), one_tensor()))


def test_hyperparameter_checks_accept_valid_moe(tmp_path):
    kvs = _with(
        llama_kvs(n_layer=2),
        **{
            "llama.expert_count": (U32, 8),
            "llama.expert_used_count": (ARR, (U32, [2, 8])),
            "llama.expert_group_count": (U32, 4),
            "llama.expert_group_used_count": (U32, 2),
            "llama.rope.scaling.type": (STR, "yarn"),
        },
    )
    gc.check_gguf_file(built(tmp_path, kvs, one_tensor()))


def test_hyperparameters_of_wrong_type_are_left_to_llama_cpp(tmp_path):
    # llama.cpp throws a normal error for a wrongly typed key before its asserts
    kvs = _with(llama_kvs(), **{"llama.block_count": (U64, 0)})
    gc.check_gguf_file(built(tmp_path, kvs, one_tensor()))


@pytest.mark.parametrize(
    "tokens, needle",
    [
        (["a", "b", "a"], "'a' twice (ids 0 and 2)"),
        (["a", "b", "a\0junk"], "'a' twice (ids 0 and 2)"),  # read as a C string
        (["", "x", "[EMPTY_0]"], "'[EMPTY_0]' twice (ids 0 and 2)"),  # empty tokens are renamed
        (["[EMPTY_1]", "", "x"], "'[EMPTY_1]' twice (ids 0 and 1)"),
        (["x", "b\0", "", "b"], "'b' twice (ids 1 and 3)"),
    ],
)
def test_duplicate_vocabulary_tokens(tmp_path, tokens, needle):
    rejected(built(tmp_path, llama_kvs(tokens=tokens), one_tensor()), "tokenizer.ggml.tokens", needle, "abort")


def test_empty_and_nul_tokens_without_clashes_pass(tmp_path):
    tokens = ["", "a", "", "[EMPTY_01]", "[EMPTY_5]", "b\0c", "c\0b"]
    gc.check_gguf_file(built(tmp_path, llama_kvs(tokens=tokens), one_tensor()))


def test_duplicate_tokens_ignored_without_a_vocabulary(tmp_path):
    kvs = _with(llama_kvs(tokens=["a", "a"]), **{"tokenizer.ggml.model": (STR, "none")})
    gc.check_gguf_file(built(tmp_path, kvs, one_tensor()))


def test_token_over_validator_limit(tmp_path):
    tokens = ["a", "b" * (gc.MAX_TOKEN_LENGTH + 1)]
    rejected(built(tmp_path, llama_kvs(tokens=tokens), one_tensor()), "element #1", "validator limit")


# ---------------------------------------------------------------------------
# tables, reader, performance, real files, fuzzing
# ---------------------------------------------------------------------------


def test_ggml_type_table_matches_gguf_py():
    from gguf.constants import GGML_QUANT_SIZES

    assert len(gc.GGML_TYPES) == gc.GGML_TYPE_COUNT == 43
    for qtype, (blck, tsize) in GGML_QUANT_SIZES.items():
        info = gc.GGML_TYPES[int(qtype)]
        if info.name == "Q8_1":  # gguf-py still has the old float-scale Q8_1 (40 bytes); ggml's is 36
            assert (blck, info.type_size) == (32, 36)
            continue
        assert (info.block_size, info.type_size) == (blck, tsize), qtype
    assert gc.GGML_TYPES[42] == gc.GGMLTypeInfo(42, "Q2_0", 64, 18)


def test_read_boundaries_do_not_matter(monkeypatch, tmp_path, valid):
    """The chunked reader and the string walk give the same answer for
    every buffer size, including ones that split lengths and strings."""
    tokens = [f"t{i}" * (1 + i % 7) for i in range(500)] + ["", "\u00e9" * 40]
    good = built(tmp_path, llama_kvs(tokens=tokens), one_tensor())
    dup = write(tmp_path, build_gguf(llama_kvs(tokens=tokens + ["t3t3t3t3"]), one_tensor()), "dup.gguf")
    ref_good = gc.check_gguf_file(good)
    ref_valid = gc.check_gguf_file(valid)
    for chunk in (1, 2, 3, 5, 8, 9, 13, 16, 31, 64, 100, 257, 1024):
        monkeypatch.setattr(gc.reader, "CHUNK_SIZE", chunk)
        assert gc.check_gguf_file(good) == ref_good
        assert gc.check_gguf_file(valid) == ref_valid
        rejected(dup, "'t3t3t3t3' twice (ids 3 and 502)")


def test_walk_strings_against_reference():
    """Differential test of the hot loop: random strings, random buffer sizes."""
    rng = np.random.default_rng(1)
    for _ in range(150):
        n = int(rng.integers(0, 40))
        strings = [bytes(rng.integers(0, 256, int(rng.integers(0, 12)), dtype=np.uint8)) for _ in range(n)]
        payload = b"".join(struct.pack("<Q", len(s)) + s for s in strings) + b"tail"[: int(rng.integers(0, 5))]
        tail = len(payload) - sum(8 + len(s) for s in strings)
        for chunk in (1, 7, 8, 9, 15, 24, 31, 47, 4096, *range(max(1, len(payload) - 12), len(payload))):
            r = gc.reader.Reader(io.BytesIO(payload), len(payload))
            old = gc.reader.CHUNK_SIZE
            gc.reader.CHUNK_SIZE = chunk
            try:
                got = r.read_strings(n, True, "x")
                assert got == strings
                assert r.tell() == len(payload) - tail
                r2 = gc.reader.Reader(io.BytesIO(payload), len(payload))
                assert r2.read_strings(n, False, "x") is None and r2.tell() == len(payload) - tail
            finally:
                gc.reader.CHUNK_SIZE = old


class _CountingFile(io.RawIOBase):
    def __init__(self, f):
        self.f, self.bytes_read = f, 0

    def readable(self):
        return True

    def seek(self, *a):
        return self.f.seek(*a)

    def read(self, n=-1):
        d = self.f.read(n)
        self.bytes_read += len(d)
        return d


def _big_model(path: Path, n_vocab: int = 262144, size: int = 250 * 1000 * 1000) -> Path:
    """A 250 MB model (sparse) with a Gemma-3-sized vocabulary and ~240 tensors."""
    tokens = [f"tok{i}" for i in range(n_vocab)]
    kvs = llama_kvs(arch="gemma3", n_layer=18, tokens=tokens)
    tensors = [Tensor("token_embd.weight", [640, n_vocab], Q8_0_T)]
    for b in range(18):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
            tensors.append(Tensor(f"blk.{b}.{name}.weight", [640, 1024], Q4_0_T))
        for name in ("attn_norm", "ffn_norm", "post_attention_norm", "post_ffw_norm", "attn_q_norm", "attn_k_norm"):
            tensors.append(Tensor(f"blk.{b}.{name}.weight", [640], F32_T))
    head = build_gguf(kvs, tensors, data=False)
    data_start = -(-len(head) // 32) * 32
    need = 0
    for t in tensors:
        need = -(-need // 32) * 32 + t.size()
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(max(size, data_start + need))
    return path


def test_large_model_reads_only_the_header(tmp_path):
    p = _big_model(tmp_path / "big.gguf")
    size = p.stat().st_size
    assert size >= 250 * 1000 * 1000
    times = []
    for _ in range(3):
        t = time.perf_counter()
        s = gc.check_gguf_file(p)
        times.append(time.perf_counter() - t)
    assert s.n_tensors == 1 + 18 * 13 and s.architecture == "gemma3"
    # reported, not asserted (no wall-clock asserts in correctness tests): < 50 ms on a desktop
    print(f"\n250 MB model, 262144-token vocabulary, {s.n_tensors} tensors: best {min(times) * 1e3:.1f} ms")
    with open(p, "rb", buffering=0) as raw:
        counting = _CountingFile(raw)
        gc.check_stream(counting, size, str(p))
    assert counting.bytes_read <= s.tensor_data_offset + gc.reader.CHUNK_SIZE


def _real_files():
    files = []
    corpus = os.environ.get("LED_CPP_GGUF_CORPUS")
    if corpus:
        files += sorted(Path(corpus).glob("*.gguf"))
    cached = Path(os.environ.get("LED_CPP_TEST_CACHE", Path.home() / ".cache" / "led_cpp_tests"))
    files += sorted(cached.glob("*.gguf"))
    return files


@pytest.mark.skipif(not _real_files(), reason="no real GGUF files (set LED_CPP_GGUF_CORPUS to a directory)")
def test_real_gguf_files_pass():
    for f in _real_files():
        s = gc.check_gguf_file(f)
        assert s.n_kv > 0, f


def test_fuzz_only_model_file_errors():
    """~3 s of the mutation fuzzer, in process (LED_CPP_FUZZ_SECONDS to change)."""
    seconds = float(os.environ.get("LED_CPP_FUZZ_SECONDS", "3"))
    stats = fz.run_simple(seconds=seconds, seed=int(os.environ.get("LED_CPP_FUZZ_SEED", "12345")))
    print(
        f"\nfuzz: {stats['executions']} executions, {stats['exec_per_s']:.0f}/s, "
        f"{stats['distinct_outcomes']} distinct outcomes, slowest {stats['slowest_input_s'] * 1e3:.1f} ms"
    )
    assert stats["executions"] > 1000
    assert stats["distinct_outcomes"] > 20
