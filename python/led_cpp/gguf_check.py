"""Strict pre-flight validation of GGUF model files, in pure Python.

Desktop applications hand ``led_cpp`` GGUF files downloaded from the internet.
llama.cpp rejects most malformed files with an error, but a number of
malformations reach a ``GGML_ASSERT``/``GGML_ABORT`` (``abort()``, which kills
the whole application) or exhaust memory.  :func:`check_gguf_file` reads the
GGUF header, the metadata (key/value) section and the tensor table with
``struct`` through a bounded reader -- never the tensor data, never more than
the file holds, and never allocating from a count it has not checked against the
file size -- and raises :class:`ModelFileError` naming the file, the problem and
what to do about it.  On success it returns a :class:`GGUFSummary`.

The rules follow the llama.cpp pinned by ``third_party/llama_cpp_pin.json``
(llama-cpp-python 0.3.36, ``vendor/llama.cpp``): ``ggml/src/gguf.cpp``,
``ggml/include/gguf.h``, ``ggml/src/ggml.c`` (type traits), ``ggml/src/ggml-common.h``
(block sizes), ``src/llama-model-loader.cpp``, ``src/llama-model.cpp``,
``src/llama-vocab.cpp`` and ``src/llama-adapter.cpp``.

What is checked, in file order
------------------------------
* The path: exists (else :class:`ModelFileNotFoundError`, which is also a
  ``FileNotFoundError``), is a regular file (not a directory, FIFO, device;
  FIFOs are opened non-blocking so the check cannot hang), is readable, is not
  empty.
* Magic ``GGUF`` (with hints when the file is an old GGML/GGJT file,
  safetensors, a PyTorch zip, a Git LFS pointer or an HTML error page).
* Version: 2 or 3 (what gguf.cpp reads: 0 is invalid, 1 is no longer supported,
  >3 is too new; a version with zero low 16 bits is a byte-swapped, big-endian
  file).
* Tensor and key/value counts: non-negative as int64, within validator limits
  (65,536 keys, 131,072 tensors; they bound the time spent on a hostile file to
  under a second) and not more than the rest of the file could hold at the
  minimum record size (14 bytes per key/value, 33 per tensor).
* Every key/value: key non-empty, at most 65,535 bytes (GGUF spec), no NUL byte,
  inside the file, unique; value type known (0..12); arrays not nested
  (gguf.cpp rejects element type ARRAY), at most 2**30 elements
  (``GGUF_MAX_ARRAY_ELEMENTS``), element count x minimum element size within the
  remaining bytes; every string at most 2**30 bytes (``GGUF_MAX_STRING_LENGTH``)
  and inside the file.  Validator limits on top (llama.cpp would allocate that
  much memory; no real file comes close): numeric arrays at most 16,777,216
  elements, string arrays at most 4,194,304, strings at most 16 MiB, the
  vocabulary (``tokenizer.ggml.tokens``, kept in memory for the duplicate check)
  at most 1,048,576 tokens of under 1 MiB each.
* ``general.alignment``: uint32, non-zero power of two.
* Every tensor-table entry: name non-empty, shorter than 64 bytes
  (``GGML_MAX_NAME``), no NUL byte, unique; ``n_dims`` 1..4; every dimension
  >= 1; element count fits int64; ggml type known and not removed (see
  :data:`GGML_TYPES`); ``ne[0]`` a multiple of the type's block size.
* Tensor data layout: the data section starts at the end of the tensor table
  rounded up to the alignment and inside the file; each tensor's offset is
  aligned, does not overlap the previous tensor and leaves no gap (gguf.cpp
  requires tensor *i* at exactly the padded end of tensor *i-1*); every tensor's
  data ends inside the file.
* Metadata semantics: ``general.architecture`` is present (except in parts 2..N
  of a split model, where only the first part carries it; ``architecture`` is
  then ``None``), a non-empty UTF-8 string; well-known keys that llama.cpp reads
  without a type check have the right type; the hyper-parameter and vocabulary
  conditions that llama.cpp asserts on (listed below) hold.

What llama.cpp itself does with such files
------------------------------------------
**Process abort (``GGML_ASSERT``/``GGML_ABORT``) or memory exhaustion in the
pinned llama.cpp, caught here:**

* ``{arch}.block_count`` (uint32) of 0 or above 512 (``LLAMA_MAX_LAYERS``) --
  ``llama_model_base::load_hparams`` asserts.
* ``{arch}.nextn_predict_layers`` > block_count -- asserts.
* Mixture-of-experts counts: ``expert_count`` > 1024 (``LLAMA_MAX_EXPERTS``);
  largest ``expert_used_count`` (scalar or per-layer array) > ``expert_count``;
  experts without ``expert_used_count``; ``expert_group_count`` >=
  ``expert_count`` or not dividing it; ``expert_group_used_count`` not in
  (0, groups); groups without experts -- all assert in ``load_hparams``.
* ``wavtokenizer-dec``: ``posnet.block_count``/``convnext.block_count`` >
  ``block_count`` -- asserts.
* ``{arch}.rope.scaling.type`` not one of none/linear/yarn/longrope -- asserts
  ``rope_scaling_type_train != LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED``.
* Duplicate strings in ``tokenizer.ggml.tokens`` (after llama.cpp's C-string
  truncation at NUL and its renaming of empty tokens to ``[EMPTY_<id>]``) --
  ``llama_vocab::impl::load`` asserts ``id_to_token.size() ==
  token_to_id.size()``.
* ``split.no`` that is not uint16 -- read with ``gguf_get_val_u16`` when a
  split model's later parts are opened, which asserts on the type.
* LoRA adapters: ``general.type``, ``general.architecture``, ``adapter.type``
  not strings, or ``adapter.lora.alpha`` not float32 -- read with
  ``gguf_get_val_str``/``gguf_get_val_f32``, which assert on the type.
* Memory exhaustion: gguf.cpp resizes a string array to its element count
  (32 bytes per ``std::string``) before reading the elements, bounded only by
  ``count * 8 <= bytes left in the file``; it reads numeric arrays of up to
  2**30 elements (8 GiB) and strings of up to 1 GiB into memory, and sizes the
  ggml context by the tensor count.  Hostile counts in a large file make it
  allocate tens of GB (``std::bad_alloc`` is caught, but with Linux overcommit
  the process is OOM-killed while the memory is touched).  Caught here by the
  validator limits on counts, arrays and strings.

**Rejected gracefully by llama.cpp (error return / C++ exception), caught here
earlier with a clearer message:** bad magic, version 0/1/>3 and byte-swapped
files, negative counts, strings or arrays past the end of the file or above
2**30, empty or duplicate keys, unknown value types, nested arrays,
``general.alignment`` of the wrong type or not a power of two, tensor names of
64+ bytes, duplicate tensor names, ``n_dims`` > 4, negative dimensions, int64
element-count overflow, unknown or removed ggml types, ``ne[0]`` not a multiple
of the block size, tensor offsets other than the expected packed/aligned
offset, data section or tensor data past the end of the file (the model loader
checks this per tensor), missing or non-string ``general.architecture``.

**Stricter than llama.cpp here (files llama.cpp would load, but no converter
writes):** ``n_dims`` 0 (gguf.cpp treats it as a 1x1x1x1 tensor; converters
write scalars as 1-d tensors) and zero-sized dimensions (zero-element weights;
gguf.cpp accepts them, the loader's synthetic-tensor path asserts ``ne >= 1``),
empty tensor names, NUL bytes inside keys or tensor names (llama.cpp looks both
up as C strings, so they alias other names), keys over 65,535 bytes,
and the validator limits above.

**Not checked (left to llama.cpp):** tensor shapes against the
hyper-parameters, the set of tensors an architecture needs, whether the
architecture is known to this llama.cpp (all graceful errors), and the
architecture-specific hyper-parameter asserts in ``load_arch_hparams`` and the
graph builders.

Reading is bounded: at most the header, metadata and tensor table plus one
1 MiB read-ahead chunk are read; the ggml tensor data is never touched.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, List, NamedTuple, Optional, Tuple, Union

__all__ = [
    "GGML_TYPES",
    "GGUF_VALUE_TYPES",
    "GGUFSummary",
    "GGMLTypeInfo",
    "ModelFileError",
    "ModelFileNotFoundError",
    "check_gguf_file",
]


# ---------------------------------------------------------------------------
# Errors and result
# ---------------------------------------------------------------------------


class ModelFileError(ValueError):
    """A model file cannot be used.

    ``str(err)`` is a complete message for the user: it names the file, says
    what is wrong and what to do.  The parts are also available as ``path``,
    ``problem`` and ``advice``.  ``internal_error`` is True only when the
    validator itself failed unexpectedly (a bug; the file is still treated as
    unusable).
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        problem: Optional[str] = None,
        advice: Optional[str] = None,
        internal_error: bool = False,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.problem = problem
        self.advice = advice
        self.internal_error = internal_error

    def __str__(self) -> str:  # also for the OSError subclass, whose __str__ differs
        return str(self.args[0]) if self.args else ""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The model file does not exist (also a :class:`FileNotFoundError`)."""


@dataclass(frozen=True)
class GGUFSummary:
    """What :func:`check_gguf_file` found in a valid file."""

    path: str
    version: int
    n_tensors: int
    n_kv: int
    architecture: Optional[str]  # None only for parts 2..N of a split model
    tensor_data_offset: int  # absolute file offset of the (aligned) data section
    file_size: int
    alignment: int
    metadata_keys: Tuple[str, ...]
    tensor_names: Tuple[str, ...]
    # split models: this part's split.no (0-based), split.count and split.tensors.count
    split_no: int = 0
    split_count: int = 1
    split_tensors_count: Optional[int] = None
    # check_gguf_model: every part of a split model, the first one first
    parts: Tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Type tables (pinned llama.cpp: gguf.h, ggml.h, ggml.c type_traits, ggml-common.h)
# ---------------------------------------------------------------------------

GGUF_TYPE_UINT8 = 0
GGUF_TYPE_INT8 = 1
GGUF_TYPE_UINT16 = 2
GGUF_TYPE_INT16 = 3
GGUF_TYPE_UINT32 = 4
GGUF_TYPE_INT32 = 5
GGUF_TYPE_FLOAT32 = 6
GGUF_TYPE_BOOL = 7
GGUF_TYPE_STRING = 8
GGUF_TYPE_ARRAY = 9
GGUF_TYPE_UINT64 = 10
GGUF_TYPE_INT64 = 11
GGUF_TYPE_FLOAT64 = 12

#: GGUF metadata value types: id -> (name, element size in bytes or None, struct format).
GGUF_VALUE_TYPES: Dict[int, Tuple[str, Optional[int], Optional[str]]] = {
    GGUF_TYPE_UINT8: ("uint8", 1, "<B"),
    GGUF_TYPE_INT8: ("int8", 1, "<b"),
    GGUF_TYPE_UINT16: ("uint16", 2, "<H"),
    GGUF_TYPE_INT16: ("int16", 2, "<h"),
    GGUF_TYPE_UINT32: ("uint32", 4, "<I"),
    GGUF_TYPE_INT32: ("int32", 4, "<i"),
    GGUF_TYPE_FLOAT32: ("float32", 4, "<f"),
    GGUF_TYPE_BOOL: ("bool", 1, "<b"),
    GGUF_TYPE_STRING: ("string", None, None),
    GGUF_TYPE_ARRAY: ("array", None, None),
    GGUF_TYPE_UINT64: ("uint64", 8, "<Q"),
    GGUF_TYPE_INT64: ("int64", 8, "<q"),
    GGUF_TYPE_FLOAT64: ("float64", 8, "<d"),
}


class GGMLTypeInfo(NamedTuple):
    """One ggml tensor type: block size in elements, bytes per block."""

    id: int
    name: str
    block_size: int  # 0: removed from ggml, files using it are rejected
    type_size: int


#: Every ggml type id in the pinned ggml (GGML_TYPE_COUNT == 43), from
#: ggml.c ``type_traits`` with block struct sizes from ggml-common.h.
GGML_TYPES: Dict[int, GGMLTypeInfo] = {
    t.id: t
    for t in (
        GGMLTypeInfo(0, "F32", 1, 4),
        GGMLTypeInfo(1, "F16", 1, 2),
        GGMLTypeInfo(2, "Q4_0", 32, 18),
        GGMLTypeInfo(3, "Q4_1", 32, 20),
        GGMLTypeInfo(4, "Q4_2 (removed)", 0, 0),
        GGMLTypeInfo(5, "Q4_3 (removed)", 0, 0),
        GGMLTypeInfo(6, "Q5_0", 32, 22),
        GGMLTypeInfo(7, "Q5_1", 32, 24),
        GGMLTypeInfo(8, "Q8_0", 32, 34),
        GGMLTypeInfo(9, "Q8_1", 32, 36),
        GGMLTypeInfo(10, "Q2_K", 256, 84),
        GGMLTypeInfo(11, "Q3_K", 256, 110),
        GGMLTypeInfo(12, "Q4_K", 256, 144),
        GGMLTypeInfo(13, "Q5_K", 256, 176),
        GGMLTypeInfo(14, "Q6_K", 256, 210),
        GGMLTypeInfo(15, "Q8_K", 256, 292),
        GGMLTypeInfo(16, "IQ2_XXS", 256, 66),
        GGMLTypeInfo(17, "IQ2_XS", 256, 74),
        GGMLTypeInfo(18, "IQ3_XXS", 256, 98),
        GGMLTypeInfo(19, "IQ1_S", 256, 50),
        GGMLTypeInfo(20, "IQ4_NL", 32, 18),
        GGMLTypeInfo(21, "IQ3_S", 256, 110),
        GGMLTypeInfo(22, "IQ2_S", 256, 82),
        GGMLTypeInfo(23, "IQ4_XS", 256, 136),
        GGMLTypeInfo(24, "I8", 1, 1),
        GGMLTypeInfo(25, "I16", 1, 2),
        GGMLTypeInfo(26, "I32", 1, 4),
        GGMLTypeInfo(27, "I64", 1, 8),
        GGMLTypeInfo(28, "F64", 1, 8),
        GGMLTypeInfo(29, "IQ1_M", 256, 56),
        GGMLTypeInfo(30, "BF16", 1, 2),
        GGMLTypeInfo(31, "Q4_0_4_4 (removed, use Q4_0)", 0, 0),
        GGMLTypeInfo(32, "Q4_0_4_8 (removed, use Q4_0)", 0, 0),
        GGMLTypeInfo(33, "Q4_0_8_8 (removed, use Q4_0)", 0, 0),
        GGMLTypeInfo(34, "TQ1_0", 256, 54),
        GGMLTypeInfo(35, "TQ2_0", 256, 66),
        GGMLTypeInfo(36, "IQ4_NL_4_4 (removed, use IQ4_NL)", 0, 0),
        GGMLTypeInfo(37, "IQ4_NL_4_8 (removed, use IQ4_NL)", 0, 0),
        GGMLTypeInfo(38, "IQ4_NL_8_8 (removed, use IQ4_NL)", 0, 0),
        GGMLTypeInfo(39, "MXFP4", 32, 17),
        GGMLTypeInfo(40, "NVFP4", 64, 36),
        GGMLTypeInfo(41, "Q1_0", 128, 18),
        GGMLTypeInfo(42, "Q2_0", 64, 18),
    )
}
GGML_TYPE_COUNT = 43

# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"
GGUF_VERSION_MIN = 2
GGUF_VERSION_MAX = 3  # GGUF_VERSION in gguf.h
GGUF_DEFAULT_ALIGNMENT = 32
GGUF_MAX_STRING_LENGTH = 1 << 30  # gguf.cpp
GGUF_MAX_ARRAY_ELEMENTS = 1 << 30  # gguf.cpp
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64  # names must be shorter than this
LLAMA_MAX_LAYERS = 512
LLAMA_MAX_EXPERTS = 1024

MAX_KEY_LENGTH = 65535  # GGUF spec
MAX_KV_COUNT = 1 << 16  # validator limits (real files: < 100 keys, < 5,000 tensors)
MAX_TENSOR_COUNT = 1 << 17
MAX_STRING_ARRAY_ELEMENTS = 1 << 22  # real vocabularies: < 300k tokens, merges < 1M
MAX_VOCAB_TOKENS = 1 << 20  # tokenizer.ggml.tokens is kept in memory for the duplicate check
MAX_NUMERIC_ARRAY_ELEMENTS = 1 << 24  # llama.cpp would allocate up to 8 GiB for 2**30 elements
MAX_STRING_VALUE = 1 << 24  # 16 MiB; chat templates, the longest real strings, are < 1 MiB
MAX_TOKEN_LENGTH = (1 << 20) - 8  # see _Reader.walk_strings

_HEADER_SIZE = 24  # magic, version, n_tensors, n_kv
_MIN_KV_SIZE = 8 + 1 + 4 + 1  # key length + 1-byte key + type + 1-byte value
_MIN_TENSOR_INFO_SIZE = 8 + 1 + 4 + 8 + 4 + 8  # name len + name + n_dims + ne[0] + type + offset
_INT64_MAX = (1 << 63) - 1
_KEEP_STRING = 1 << 16  # scalar strings kept for semantic checks
_KEEP_ARRAY_BYTES = 4096  # small numeric arrays kept for semantic checks
# Read-ahead.  Invariant relied on by _Reader.walk_strings: the buffer never
# exceeds _CHUNK bytes (every single read is at most max(_KEEP_STRING,
# MAX_KEY_LENGTH, _KEEP_ARRAY_BYTES, MAX_TOKEN_LENGTH) <= _CHUNK bytes).
_CHUNK = 1 << 20

_ROPE_SCALING_TYPES = (b"none", b"linear", b"yarn", b"longrope")

_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_DIMS_UNPACK = {n: struct.Struct(f"<{n}q").unpack_from for n in range(1, 5)}
_SCALAR_UNPACK = {
    t: struct.Struct(fmt).unpack_from for t, (_, _, fmt) in GGUF_VALUE_TYPES.items() if fmt
}

# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------

_ADV_TRUNCATED = (
    "The file is incomplete, most likely an interrupted download or copy; "
    "download it again and compare its size with the source"
)
_ADV_CORRUPT = (
    "The file is damaged or was not written by a GGUF converter; download it "
    "again from a trusted source, or re-convert the model with a current llama.cpp"
)
_ADV_NOT_GGUF = (
    "Choose a .gguf model file; llama.cpp loads only GGUF (convert other formats "
    "with llama.cpp's convert_hf_to_gguf.py)"
)
_ADV_UNSUPPORTED = (
    "Download a GGUF v2/v3 build of the model, or re-convert it with a current llama.cpp"
)
_ADV_ABORT = (
    "llama.cpp would abort the whole process on this file; the file is damaged or "
    "was crafted, so do not load it -- download the model again from a trusted source"
)
_ADV_LIMIT = (
    "No real model comes close to this; the file is damaged or crafted -- download "
    "it again from a trusted source"
)


class _Fail(Exception):
    """Internal: carries (problem, advice) up to the code that knows the path."""

    def __init__(self, problem: str, advice: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.advice = advice


class _Truncated(Exception):
    """Internal: the reader needed bytes past the end of the file."""


def _model_error(
    path: str, problem: str, advice: str, cls: type = ModelFileError, **kw: Any
) -> ModelFileError:
    msg = f"Cannot use model file '{path}': {problem}. {advice}."
    return cls(msg, path=path, problem=problem, advice=advice, **kw)


def _show(b: bytes, limit: int = 80) -> str:
    s = b[:limit].decode("utf-8", "backslashreplace")
    return repr(s) + ("..." if len(b) > limit else "")


def _type_name(t: int) -> str:
    info = GGUF_VALUE_TYPES.get(t)
    return info[0] if info else f"unknown type {t}"


# ---------------------------------------------------------------------------
# Bounded reader
# ---------------------------------------------------------------------------


class _Reader:
    """Sequential little-endian reader over a seekable binary file.

    Reads in chunks of at most ``_CHUNK`` bytes beyond what is needed, never past
    ``size``, and raises ``_Truncated`` instead of reading past the end.
    ``where`` names the part being read, for error messages.
    """

    __slots__ = ("f", "size", "buf", "base", "pos", "where")

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size
        self.buf = b""
        self.base = 0  # file offset of buf[0]
        self.pos = 0  # index into buf
        self.where = "the GGUF header"

    def tell(self) -> int:
        return self.base + self.pos

    def remaining(self) -> int:
        return self.size - self.base - self.pos

    def fill(self, n: int) -> None:
        """Make buf[pos:pos+n] available."""
        off = self.base + self.pos
        if n > self.size - off:
            raise _Truncated()
        have = self.buf[self.pos :]
        want = min(max(n, _CHUNK), self.size - off)
        start = off + len(have)
        self.f.seek(start)
        need = want - len(have)
        parts = [have]
        while need > 0:
            data = self.f.read(need)
            if not data:  # the file shrank while being read
                raise _Truncated()
            parts.append(data)
            need -= len(data)
        self.buf = b"".join(parts)
        self.base = off
        self.pos = 0

    def skip(self, n: int) -> None:
        pos = self.pos + n
        if pos <= len(self.buf):
            self.pos = pos
            return
        off = self.base + pos
        if off > self.size:
            raise _Truncated()
        self.buf = b""
        self.base = off
        self.pos = 0

    def read(self, n: int) -> bytes:
        pos = self.pos
        if pos + n > len(self.buf):
            self.fill(n)
            pos = self.pos
        self.pos = pos + n
        return self.buf[pos : pos + n]

    def u32(self) -> int:
        pos = self.pos
        if pos + 4 > len(self.buf):
            self.fill(4)
            pos = self.pos
        self.pos = pos + 4
        return _U32(self.buf, pos)[0]

    def u64(self) -> int:
        pos = self.pos
        if pos + 8 > len(self.buf):
            self.fill(8)
            pos = self.pos
        self.pos = pos + 8
        return _U64(self.buf, pos)[0]

    def unpack(self, s: Any, n: int) -> Any:
        pos = self.pos
        if pos + n > len(self.buf):
            self.fill(n)
            pos = self.pos
        self.pos = pos + n
        return s(self.buf, pos)

    def string_length(self, what: str, limit: int, limit_reason: str) -> int:
        """Read a u64 string length and check it against ``limit`` and the file."""
        n = self.u64()
        if n > limit:
            raise _Fail(f"{what} has an absurd length of {n:,} bytes ({limit_reason})", _ADV_CORRUPT)
        rem = self.remaining()
        if n > rem:
            raise _Fail(
                f"the file is truncated or corrupted: {what} at byte {self.tell() - 8:,} claims "
                f"{n:,} bytes but only {rem:,} bytes remain in the file",
                _ADV_TRUNCATED,
            )
        return n

    def walk_strings(self, count: int, collect: bool, what: str) -> Optional[List[bytes]]:
        """Walk ``count`` length-prefixed strings; return them if ``collect``.

        This is the hot loop of the validator (vocabularies and BPE merges hold
        hundreds of thousands of strings).  It parses straight out of the buffer,
        four strings per iteration, and lets ``unpack_from`` raise at the buffer
        end; it then backs up at most two blocks, finishes the buffer one string
        at a time, and re-reads the one string that straddles the buffer end with
        :meth:`_careful_string`.  Because the buffer never exceeds ``_CHUNK``
        bytes, every string taken from the buffer is at most
        ``MAX_TOKEN_LENGTH`` bytes; longer ones always take the careful path.
        """
        out: Optional[List[bytes]] = [] if collect else None
        unpack = _U64
        # unpack_from raises struct.error past the buffer end, OverflowError
        # when a huge length pushed the offset beyond ssize_t
        struct_error = (struct.error, OverflowError)
        i = 0
        while i < count:
            if self.pos + 8 > len(self.buf):
                self.fill(8)
            buf = self.buf
            blen = len(buf)
            pos = self.pos

            # Phase 1: four strings per iteration until something goes past the buffer.
            nblocks = (count - i) >> 2
            if nblocks > 2:
                k = 0
                b0 = b1 = pos  # starts of blocks k - 1 and k
                try:
                    if out is None:
                        for k in range(nblocks):
                            b0 = b1
                            b1 = pos
                            pos += 8 + unpack(buf, pos)[0]
                            pos += 8 + unpack(buf, pos)[0]
                            pos += 8 + unpack(buf, pos)[0]
                            pos += 8 + unpack(buf, pos)[0]
                    else:
                        append = out.append
                        for k in range(nblocks):
                            b0 = b1
                            b1 = pos
                            p = pos + 8
                            pos = p + unpack(buf, pos)[0]
                            append(buf[p:pos])
                            p = pos + 8
                            pos = p + unpack(buf, pos)[0]
                            append(buf[p:pos])
                            p = pos + 8
                            pos = p + unpack(buf, pos)[0]
                            append(buf[p:pos])
                            p = pos + 8
                            pos = p + unpack(buf, pos)[0]
                            append(buf[p:pos])
                    if pos <= blen:
                        i += nblocks << 2
                    else:  # the last string ran past the buffer: redo the last block
                        i += (nblocks - 1) << 2
                        pos = b1
                except struct_error:
                    # block k hit the buffer end; block k - 1 may have run past it
                    if k > 0:
                        i += (k - 1) << 2
                        pos = b0
                    else:
                        i += k << 2
                        pos = b1
                if out is not None:
                    del out[i:]

            # Phase 2: one string at a time to the end of the buffer.
            prev = pos
            j = i
            try:
                if out is None:
                    for j in range(i, count):
                        n = unpack(buf, pos)[0]
                        prev = pos
                        pos += 8 + n
                else:
                    append = out.append
                    for j in range(i, count):
                        n = unpack(buf, pos)[0]
                        prev = pos
                        pos += 8 + n
                        append(buf[prev + 8 : pos])
                j = count
            except struct_error:
                pass  # string j's length is not (entirely) buffered; pos is its start
            if pos > blen:
                # string j - 1, starting at prev, runs past the buffer: redo it
                j -= 1
                if out is not None:
                    out.pop()
                self.pos = prev
                self._careful_string(j, out, what)
                i = j + 1
            else:
                self.pos = pos
                i = j
        return out

    def _careful_string(self, i: int, out: Optional[List[bytes]], what: str) -> None:
        n = self.u64()
        rem = self.remaining()
        if n > GGUF_MAX_STRING_LENGTH:
            raise _Fail(
                f"{what} element #{i} has an absurd length of {n:,} bytes (llama.cpp's "
                f"limit is {GGUF_MAX_STRING_LENGTH:,})",
                _ADV_CORRUPT,
            )
        if n > rem:
            raise _Fail(
                f"the file is truncated or corrupted: {what} element #{i} at byte "
                f"{self.tell() - 8:,} claims {n:,} bytes but only {rem:,} bytes remain",
                _ADV_TRUNCATED,
            )
        if n > MAX_STRING_VALUE:
            raise _Fail(
                f"{what} element #{i} is a string of {n:,} bytes (validator limit: "
                f"{MAX_STRING_VALUE:,})",
                _ADV_LIMIT,
            )
        if out is None:
            self.skip(n)
            return
        if n > MAX_TOKEN_LENGTH:
            raise _Fail(
                f"{what} element #{i} is {n:,} bytes long (validator limit: "
                f"{MAX_TOKEN_LENGTH:,} bytes per vocabulary token)",
                _ADV_LIMIT,
            )
        out.append(self.read(n))


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


class _Array(NamedTuple):
    elem_type: int
    count: int
    raw: Optional[bytes]  # kept for small numeric arrays only


class _Tensor(NamedTuple):
    name: str
    dims: Tuple[int, ...]
    ggml_type: GGMLTypeInfo
    nbytes: int
    offset: int


def _foreign_format_hint(head: bytes) -> str:
    """Explain what a non-GGUF file probably is, from its first bytes."""
    m4 = head[:4]
    if m4 in (b"lmgg", b"ggml", b"fmgg", b"ggmf", b"tjgg", b"ggjt", b"ggla", b"algg"):
        return (
            " (it is an old GGML/GGMF/GGJT model file, a format llama.cpp dropped in 2023; "
            "get a GGUF version of the model)"
        )
    if m4 == b"FUGG":
        return " (the magic is byte-reversed: 'FUGG')"
    if m4 == b"PK\x03\x04":
        return " (it is a ZIP archive, e.g. a PyTorch checkpoint; convert it to GGUF first)"
    if head.startswith(b"version https://git-lfs"):
        return (
            " (it is a Git LFS pointer file, not the model itself; download the actual "
            "file, e.g. with 'git lfs pull' or from the model page)"
        )
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return " (it is an HTML/XML document, probably an error page saved instead of the model)"
    if stripped.startswith(b"{"):
        return " (it looks like a JSON document, not a model file)"
    if len(head) >= 10 and head[8:10] == b'{"':
        return " (it looks like a safetensors file; convert it with convert_hf_to_gguf.py)"
    return ""


def _parse(r: _Reader, path: str) -> GGUFSummary:
    size = r.size
    if size == 0:
        raise _Fail("the file is empty (0 bytes)", _ADV_TRUNCATED)

    # --- header --------------------------------------------------------------
    head = r.read(min(size, 64))
    r.pos = 0
    if head[:4] != GGUF_MAGIC:
        if size < 4 and GGUF_MAGIC.startswith(head):
            raise _Fail(
                f"the file is truncated: it is only {size} bytes long and ends inside the "
                "GGUF magic",
                _ADV_TRUNCATED,
            )
        raise _Fail(
            f"it is not a GGUF file: it starts with {head[:4]!r} instead of b'GGUF'"
            + _foreign_format_hint(head),
            _ADV_NOT_GGUF,
        )
    if size < _HEADER_SIZE:
        raise _Fail(
            f"the file is truncated: it is only {size} bytes long and ends inside the "
            f"{_HEADER_SIZE}-byte GGUF header",
            _ADV_TRUNCATED,
        )
    r.skip(4)
    version = r.u32()
    if version == 0:
        raise _Fail("the GGUF version field is 0, which is invalid", _ADV_CORRUPT)
    if version & 0xFFFF == 0:
        raise _Fail(
            f"the GGUF version field reads as {version:#010x}: this is a big-endian "
            "(byte-swapped) GGUF file, which llama.cpp cannot load on this little-endian machine",
            "Download the little-endian (standard) build of the model",
        )
    if version == 1:
        raise _Fail(
            "it is a GGUF version 1 file; llama.cpp no longer reads GGUF v1 (it reads v2 and v3)",
            _ADV_UNSUPPORTED,
        )
    if version > GGUF_VERSION_MAX:
        raise _Fail(
            f"it is GGUF version {version}, newer than the versions this llama.cpp reads "
            f"({GGUF_VERSION_MIN} and {GGUF_VERSION_MAX})",
            "Update led_cpp, or get a GGUF v3 build of the model",
        )
    n_tensors = r.u64()
    n_kv = r.u64()
    for what, n, limit in (
        ("tensor count", n_tensors, MAX_TENSOR_COUNT),
        ("metadata key/value count", n_kv, MAX_KV_COUNT),
    ):
        if n > _INT64_MAX:
            raise _Fail(
                f"the header's {what} is negative as a signed 64-bit number ({n - (1 << 64)})",
                _ADV_CORRUPT,
            )
        if n > limit:
            raise _Fail(
                f"the header's {what} is an absurd {n:,} (validator limit: {limit:,})",
                _ADV_LIMIT,
            )
    rest = size - _HEADER_SIZE
    need = n_kv * _MIN_KV_SIZE + n_tensors * _MIN_TENSOR_INFO_SIZE
    if need > rest:
        raise _Fail(
            f"the header declares {n_kv:,} metadata entries and {n_tensors:,} tensors, which "
            f"need at least {need:,} bytes, but only {rest:,} bytes follow the header: the file "
            "is truncated or the counts are corrupted",
            _ADV_TRUNCATED,
        )

    # --- metadata key/value pairs ---------------------------------------------
    values: Dict[bytes, Tuple[int, Any]] = {}
    tokens: Optional[List[bytes]] = None
    for i in range(n_kv):
        r.where = f"metadata entry #{i}"
        klen = r.string_length(f"the key of metadata entry #{i}", MAX_KEY_LENGTH, "GGUF keys are at most 65,535 bytes")
        if klen == 0:
            raise _Fail(f"metadata entry #{i} has an empty key", _ADV_CORRUPT)
        key = r.read(klen)
        skey = _show(key)
        if b"\0" in key:
            raise _Fail(f"metadata key {skey} (entry #{i}) contains a NUL byte", _ADV_CORRUPT)
        if key in values:
            raise _Fail(f"metadata key {skey} appears twice (second time as entry #{i})", _ADV_CORRUPT)
        r.where = f"the value of metadata key {skey} (entry #{i})"
        vtype = r.u32()
        if vtype not in GGUF_VALUE_TYPES:
            raise _Fail(
                f"metadata key {skey} has unknown value type {vtype} (valid types are 0..12)",
                _ADV_CORRUPT,
            )
        if vtype == GGUF_TYPE_ARRAY:
            etype = r.u32()
            if etype == GGUF_TYPE_ARRAY:
                raise _Fail(
                    f"metadata key {skey} is a nested array (an array of arrays), which "
                    "llama.cpp does not support",
                    _ADV_CORRUPT,
                )
            if etype not in GGUF_VALUE_TYPES:
                raise _Fail(
                    f"metadata key {skey} is an array with unknown element type {etype} "
                    "(valid types are 0..8 and 10..12)",
                    _ADV_CORRUPT,
                )
            count = r.u64()
            ename, esize, _ = GGUF_VALUE_TYPES[etype]
            if count > GGUF_MAX_ARRAY_ELEMENTS:
                raise _Fail(
                    f"metadata key {skey} is an array with an absurd {count:,} elements "
                    f"(llama.cpp's limit is {GGUF_MAX_ARRAY_ELEMENTS:,})",
                    _ADV_CORRUPT,
                )
            min_bytes = count * (esize if esize else 8)
            rem = r.remaining()
            if min_bytes > rem:
                raise _Fail(
                    f"the file is truncated or corrupted: metadata key {skey} is an array of "
                    f"{count:,} {ename} values needing at least {min_bytes:,} bytes, but only "
                    f"{rem:,} bytes remain in the file",
                    _ADV_TRUNCATED,
                )
            if esize is None:  # strings
                if count > MAX_STRING_ARRAY_ELEMENTS:
                    raise _Fail(
                        f"metadata key {skey} is a string array with {count:,} elements "
                        f"(validator limit: {MAX_STRING_ARRAY_ELEMENTS:,})",
                        _ADV_LIMIT,
                    )
                is_vocab = key == b"tokenizer.ggml.tokens"
                if is_vocab and count > MAX_VOCAB_TOKENS:
                    raise _Fail(
                        f"the tokenizer vocabulary {skey} has {count:,} tokens (validator "
                        f"limit: {MAX_VOCAB_TOKENS:,})",
                        _ADV_LIMIT,
                    )
                collected = r.walk_strings(count, is_vocab, f"string array {skey}")
                if collected is not None:
                    tokens = collected
                values[key] = (vtype, _Array(etype, count, None))
            else:
                if count > MAX_NUMERIC_ARRAY_ELEMENTS:
                    raise _Fail(
                        f"metadata key {skey} is an array of {count:,} {ename} values "
                        f"(validator limit: {MAX_NUMERIC_ARRAY_ELEMENTS:,})",
                        _ADV_LIMIT,
                    )
                if min_bytes <= _KEEP_ARRAY_BYTES:
                    raw: Optional[bytes] = r.read(min_bytes)
                else:
                    r.skip(min_bytes)
                    raw = None
                values[key] = (vtype, _Array(etype, count, raw))
        elif vtype == GGUF_TYPE_STRING:
            n = r.string_length(
                f"the string value of metadata key {skey}",
                GGUF_MAX_STRING_LENGTH,
                f"llama.cpp's limit is {GGUF_MAX_STRING_LENGTH:,}",
            )
            if n > MAX_STRING_VALUE:
                raise _Fail(
                    f"the string value of metadata key {skey} is {n:,} bytes long (validator "
                    f"limit: {MAX_STRING_VALUE:,})",
                    _ADV_LIMIT,
                )
            if n <= _KEEP_STRING:
                values[key] = (vtype, r.read(n))
            else:
                r.skip(n)
                values[key] = (vtype, None)
        else:
            esize = GGUF_VALUE_TYPES[vtype][1]
            assert esize is not None
            values[key] = (vtype, r.unpack(_SCALAR_UNPACK[vtype], esize)[0])

    # --- alignment -----------------------------------------------------------
    alignment = GGUF_DEFAULT_ALIGNMENT
    av = values.get(b"general.alignment")
    if av is not None:
        if av[0] != GGUF_TYPE_UINT32:
            raise _Fail(
                f"metadata key 'general.alignment' must be a uint32 but is {_type_name(av[0])}",
                _ADV_CORRUPT,
            )
        alignment = av[1]
        if alignment == 0 or alignment & (alignment - 1):
            raise _Fail(
                f"metadata key 'general.alignment' is {alignment}, which is not a power of two",
                _ADV_CORRUPT,
            )

    # --- tensor table --------------------------------------------------------
    tensors: List[_Tensor] = []
    seen_names: set = set()
    for i in range(n_tensors):
        r.where = f"the tensor table (tensor #{i})"
        nlen = r.u64()
        if nlen == 0:
            raise _Fail(f"tensor #{i} has an empty name", _ADV_CORRUPT)
        if nlen >= GGML_MAX_NAME:
            raise _Fail(
                f"tensor #{i} has a name of {nlen:,} bytes; llama.cpp allows at most "
                f"{GGML_MAX_NAME - 1}",
                _ADV_CORRUPT,
            )
        raw_name = r.read(nlen)
        name = raw_name.decode("utf-8", "backslashreplace")
        if b"\0" in raw_name:
            raise _Fail(f"tensor #{i} name {name!r} contains a NUL byte", _ADV_CORRUPT)
        if raw_name in seen_names:
            raise _Fail(f"tensor name {name!r} appears twice (second time as tensor #{i})", _ADV_CORRUPT)
        seen_names.add(raw_name)
        r.where = f"the tensor table (tensor #{i}, {name!r})"
        n_dims = r.u32()
        if n_dims == 0 or n_dims > GGML_MAX_DIMS:
            raise _Fail(
                f"tensor {name!r} has {n_dims} dimensions; ggml tensors have 1 to {GGML_MAX_DIMS}",
                _ADV_CORRUPT,
            )
        dims = r.unpack(_DIMS_UNPACK[n_dims], 8 * n_dims)
        nelem = 1
        for j, d in enumerate(dims):
            if d <= 0:
                raise _Fail(
                    f"tensor {name!r} has dimension {j} of size {d}; sizes must be at least 1",
                    _ADV_CORRUPT,
                )
            nelem *= d
        if nelem > _INT64_MAX:
            raise _Fail(
                f"tensor {name!r} has shape {list(dims)}, whose element count overflows int64",
                _ADV_CORRUPT,
            )
        tid = r.u32()  # int32 in the file; negative values read as >= 2**31
        tinfo = GGML_TYPES.get(tid)
        if tinfo is None:
            shown = tid - (1 << 32) if tid >= 1 << 31 else tid
            raise _Fail(
                f"tensor {name!r} has unknown ggml type {shown} (this llama.cpp knows types "
                f"0..{GGML_TYPE_COUNT - 1})",
                "The file is damaged, or needs a newer led_cpp/llama.cpp; download it again or "
                "update led_cpp",
            )
        if tinfo.block_size == 0:
            raise _Fail(
                f"tensor {name!r} uses ggml type {tid} = {tinfo.name}, which this llama.cpp no "
                "longer supports",
                _ADV_UNSUPPORTED,
            )
        if dims[0] % tinfo.block_size:
            raise _Fail(
                f"tensor {name!r} of type {tinfo.name} has {dims[0]:,} elements per row, not a "
                f"multiple of the type's block size {tinfo.block_size}",
                _ADV_CORRUPT,
            )
        nbytes = nelem // tinfo.block_size * tinfo.type_size
        offset = r.u64()
        tensors.append(_Tensor(name, tuple(dims), tinfo, nbytes, offset))

    # --- tensor data layout --------------------------------------------------
    table_end = r.tell()
    if n_tensors:
        data_offset = (table_end + alignment - 1) // alignment * alignment
    else:
        data_offset = table_end
    if data_offset > size:
        raise _Fail(
            f"the file is truncated: the tensor data section should start at byte "
            f"{data_offset:,} but the file is only {size:,} bytes long",
            _ADV_TRUNCATED,
        )
    expected = 0
    prev: Optional[_Tensor] = None
    for t in tensors:
        if t.offset % alignment:
            raise _Fail(
                f"tensor {t.name!r} has data offset {t.offset:,}, which is not a multiple of "
                f"the alignment {alignment}",
                _ADV_CORRUPT,
            )
        if t.offset < expected:
            assert prev is not None
            raise _Fail(
                f"tensor {t.name!r} (data offset {t.offset:,}) overlaps the data of the "
                f"previous tensor {prev.name!r} (offsets {prev.offset:,} to "
                f"{prev.offset + prev.nbytes:,})",
                _ADV_CORRUPT,
            )
        if t.offset > expected:
            raise _Fail(
                f"tensor {t.name!r} has data offset {t.offset:,} but llama.cpp requires tensors "
                f"to be packed in table order, so it must be {expected:,}",
                _ADV_CORRUPT,
            )
        end = data_offset + t.offset + t.nbytes
        if end > size:
            raise _Fail(
                f"the file is truncated: the data of tensor {t.name!r} ({t.nbytes:,} bytes, "
                f"{t.ggml_type.name} {list(t.dims)}) would end at byte {end:,}, past the end of "
                f"the file ({size:,} bytes)",
                _ADV_TRUNCATED,
            )
        expected = t.offset + (t.nbytes + alignment - 1) // alignment * alignment
        prev = t

    # --- metadata semantics --------------------------------------------------
    _check_key_types(values)
    architecture = _check_architecture(values)
    if architecture is not None:
        _check_hparams(values, architecture)
    _check_vocab(values, tokens)

    return GGUFSummary(
        path=path,
        version=version,
        n_tensors=n_tensors,
        n_kv=n_kv,
        architecture=architecture,
        tensor_data_offset=data_offset,
        file_size=size,
        alignment=alignment,
        metadata_keys=tuple(k.decode("utf-8", "backslashreplace") for k in values),
        tensor_names=tuple(t.name for t in tensors),
        split_no=values[b"split.no"][1] if b"split.no" in values else 0,
        split_count=values[b"split.count"][1] if b"split.count" in values else 1,
        split_tensors_count=values[b"split.tensors.count"][1] if b"split.tensors.count" in values else None,
    )


# ---------------------------------------------------------------------------
# Semantic checks on the metadata
# ---------------------------------------------------------------------------


def _cstr(b: bytes) -> bytes:
    """What llama.cpp sees when it reads a GGUF string through ``const char *``."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _check_architecture(values: Dict[bytes, Tuple[int, Any]]) -> Optional[str]:
    av = values.get(b"general.architecture")
    if av is None:
        no = values.get(b"split.no")
        count = values.get(b"split.count")
        if (
            no is not None
            and no[0] == GGUF_TYPE_UINT16
            and no[1] >= 1
            and count is not None
            and count[0] == GGUF_TYPE_UINT16
            and count[1] > no[1]
        ):
            return None  # parts 2..N of a split model carry only split.* metadata
        if no is not None and no[0] == GGUF_TYPE_UINT16 and no[1] >= 1:
            raise _Fail(
                f"the file says it is part {no[1] + 1} of a split model but has no valid "
                "'split.count'",
                _ADV_CORRUPT,
            )
        raise _Fail(
            "the metadata has no 'general.architecture' key, so llama.cpp cannot tell which "
            "model architecture it is",
            "The file is not a complete llama.cpp model (it may be a fragment or another "
            "tool's GGUF); get the model from a source that publishes llama.cpp GGUF files",
        )
    if av[0] != GGUF_TYPE_STRING:
        raise _Fail(
            f"metadata key 'general.architecture' must be a string but is {_type_name(av[0])}",
            _ADV_CORRUPT,
        )
    raw = av[1]
    if raw is None or len(raw) > 256:
        raise _Fail("metadata key 'general.architecture' is absurdly long", _ADV_CORRUPT)
    raw = _cstr(raw)
    if not raw:
        raise _Fail("metadata key 'general.architecture' is empty", _ADV_CORRUPT)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Fail(
            f"metadata key 'general.architecture' is not valid UTF-8 ({_show(raw)})",
            _ADV_CORRUPT,
        ) from None


# Keys llama.cpp reads with gguf_get_val_* (which GGML_ASSERTs on the type) or
# that must have a type for the checks above to mean anything.
_KEY_TYPES: Tuple[Tuple[bytes, int, Optional[int], str], ...] = (
    (b"split.no", GGUF_TYPE_UINT16, None, "abort"),
    (b"split.count", GGUF_TYPE_UINT16, None, ""),
    (b"split.tensors.count", GGUF_TYPE_INT32, None, ""),
    (b"general.type", GGUF_TYPE_STRING, None, "abort"),
    (b"adapter.type", GGUF_TYPE_STRING, None, "abort"),
    (b"adapter.lora.alpha", GGUF_TYPE_FLOAT32, None, "abort"),
    (b"tokenizer.ggml.model", GGUF_TYPE_STRING, None, ""),
    (b"tokenizer.ggml.tokens", GGUF_TYPE_ARRAY, GGUF_TYPE_STRING, ""),
)


def _check_key_types(values: Dict[bytes, Tuple[int, Any]]) -> None:
    for key, vtype, etype, why in _KEY_TYPES:
        v = values.get(key)
        if v is None:
            continue
        ok = v[0] == vtype and (etype is None or v[1].elem_type == etype)
        if ok:
            continue
        want = f"array of {_type_name(etype)}" if etype is not None else _type_name(vtype)
        have = _type_name(v[0])
        if v[0] == GGUF_TYPE_ARRAY:
            have = f"array of {_type_name(v[1].elem_type)}"
        raise _Fail(
            f"metadata key '{key.decode()}' must be {want} but is {have}"
            + (" (llama.cpp reads it with a type assertion that aborts the process)" if why else ""),
            _ADV_ABORT if why else _ADV_CORRUPT,
        )


def _hp_abort(key: str, detail: str) -> _Fail:
    return _Fail(f"metadata {detail} (key '{key}'); llama.cpp asserts on this", _ADV_ABORT)


class _Graceful(Exception):
    """llama.cpp would stop with an exception before reaching its asserts."""


def _check_hparams(values: Dict[bytes, Tuple[int, Any]], arch: str) -> None:
    """The GGML_ASSERTs of llama_model_base::load_hparams that depend only on
    generic metadata, evaluated as llama.cpp does (wrong types or missing required
    keys make llama.cpp throw before the asserts, so those end the check)."""
    if arch == "clip":
        return
    p = arch + "."

    def u32(name: str, default: Optional[int]) -> Optional[int]:
        v = values.get((p + name).encode("utf-8"))
        if v is None:
            if default is None:
                raise _Graceful()
            return default
        if v[0] != GGUF_TYPE_UINT32:
            raise _Graceful()
        return int(v[1])

    try:
        n_layer = u32("block_count", None)
        assert n_layer is not None
        if not 1 <= n_layer <= LLAMA_MAX_LAYERS:
            raise _hp_abort(
                p + "block_count",
                f"block_count is {n_layer}, outside 1..{LLAMA_MAX_LAYERS}",
            )
        nextn = u32("nextn_predict_layers", 0)
        if nextn > n_layer:
            raise _hp_abort(
                p + "nextn_predict_layers",
                f"nextn_predict_layers {nextn} exceeds block_count {n_layer}",
            )
        n_expert = u32("expert_count", 0)
        used_max = _expert_used_max(values.get((p + "expert_used_count").encode("utf-8")), n_layer)
        n_groups = u32("expert_group_count", 0)
        n_group_used = u32("expert_group_used_count", 0)
        if arch in ("hunyuan_vl", "hunyuan-dense") and n_expert <= 1:
            n_expert = 0
            used_max = 0
        if arch == "wavtokenizer-dec":
            for sub in ("posnet", "convnext"):
                n = u32(sub + ".block_count", None)
                if n > n_layer:
                    raise _hp_abort(
                        p + sub + ".block_count",
                        f"{sub}.block_count {n} exceeds block_count {n_layer}",
                    )
        key = p + "expert_count"
        if n_expert > LLAMA_MAX_EXPERTS:
            raise _hp_abort(key, f"expert_count is {n_expert}, above {LLAMA_MAX_EXPERTS}")
        if used_max > n_expert:
            raise _hp_abort(
                p + "expert_used_count",
                f"expert_used_count {used_max} exceeds expert_count {n_expert}",
            )
        if n_expert > 0:
            if used_max == 0:
                raise _hp_abort(
                    p + "expert_used_count",
                    f"expert_count is {n_expert} but expert_used_count is 0 or missing",
                )
            if n_groups >= n_expert:
                raise _hp_abort(
                    p + "expert_group_count",
                    f"expert_group_count {n_groups} is not below expert_count {n_expert}",
                )
            if n_groups > 1:
                if n_expert % n_groups:
                    raise _hp_abort(
                        p + "expert_group_count",
                        f"expert_count {n_expert} is not a multiple of expert_group_count {n_groups}",
                    )
                if not 0 < n_group_used < n_groups:
                    raise _hp_abort(
                        p + "expert_group_used_count",
                        f"expert_group_used_count {n_group_used} is not in 1..{n_groups - 1}",
                    )
        elif n_groups != 0:
            raise _hp_abort(
                p + "expert_group_count",
                f"expert_group_count is {n_groups} but the model has no experts",
            )
        # rope scaling type: read as a C string, must be a known name
        rv = values.get((p + "rope.scaling.type").encode("utf-8"))
        if rv is not None and rv[0] == GGUF_TYPE_STRING:
            name = _cstr(rv[1]) if rv[1] is not None else b"<very long string>"
            if name not in _ROPE_SCALING_TYPES:
                raise _hp_abort(
                    p + "rope.scaling.type",
                    f"rope.scaling.type is {_show(name)}, not one of none/linear/yarn/longrope",
                )
    except _Graceful:
        return


def _expert_used_max(v: Optional[Tuple[int, Any]], n_layer: int) -> int:
    """Largest per-layer expert_used_count as llama.cpp's get_key_or_arr sees it."""
    if v is None:
        return 0
    vtype, val = v
    if vtype != GGUF_TYPE_ARRAY:
        if vtype != GGUF_TYPE_UINT32:
            raise _Graceful()
        return int(val)
    arr: _Array = val
    if arr.count != n_layer or arr.raw is None:
        raise _Graceful()  # wrong length: llama.cpp throws
    raw = arr.raw
    if arr.elem_type == GGUF_TYPE_BOOL:
        return max((1 if b else 0 for b in raw), default=0)
    if arr.elem_type in (GGUF_TYPE_UINT32, GGUF_TYPE_INT32):
        # int32 values are copied into uint32 storage
        return max(struct.unpack(f"<{arr.count}I", raw), default=0)
    raise _Graceful()


def _check_vocab(values: Dict[bytes, Tuple[int, Any]], tokens: Optional[List[bytes]]) -> None:
    """llama_vocab::impl::load maps every token (read as a C string, empty ones
    renamed ``[EMPTY_<id>]``) to its id and asserts that no two collide."""
    if tokens is None:
        return
    mv = values.get(b"tokenizer.ggml.model")
    if mv is None or mv[0] != GGUF_TYPE_STRING:
        return  # llama.cpp throws "key not found"/wrong type before reading tokens
    model = _cstr(mv[1]) if mv[1] is not None else None
    if model in (b"no_vocab", b"none"):
        return
    has_nul = b"\0" in b"".join(tokens)
    if not has_nul:
        distinct = set(tokens)
        if len(distinct) == len(tokens) and b"" not in distinct:
            return  # the common case
        del distinct
    words = [_cstr(t) for t in tokens] if has_nul else tokens
    seen: Dict[bytes, int] = {}
    n_empty = 0
    for i, w in enumerate(words):
        if not w:
            n_empty += 1
            continue
        j = seen.setdefault(w, i)
        if j != i:
            raise _duplicate_token(w, j, i)
    if n_empty:  # a literal "[EMPTY_<id>]" token clashes with the renamed empty token <id>
        for w, i in seen.items():
            if w.startswith(b"[EMPTY_") and w.endswith(b"]"):
                digits = w[7:-1]
                if 0 < len(digits) <= 10 and digits.isdigit() and (digits == b"0" or digits[:1] != b"0"):
                    j = int(digits)
                    if j < len(words) and not words[j]:
                        raise _duplicate_token(w, min(i, j), max(i, j))


def _duplicate_token(word: bytes, first: int, second: int) -> _Fail:
    return _Fail(
        f"the tokenizer vocabulary ('tokenizer.ggml.tokens') contains token {_show(word)} twice "
        f"(ids {first} and {second}); llama.cpp aborts on a vocabulary with duplicate tokens",
        _ADV_ABORT,
    )


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


_O_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_stream(f: BinaryIO, size: int, path: str) -> GGUFSummary:
    """Validate an open, seekable binary stream of ``size`` bytes."""
    r = _Reader(f, size)
    try:
        try:
            return _parse(r, path)
        except _Truncated:
            raise _Fail(
                f"the file is truncated: it ends at byte {size:,}, inside {r.where}",
                _ADV_TRUNCATED,
            ) from None
    except _Fail as e:
        raise _model_error(path, e.problem, e.advice) from None
    except ModelFileError:
        raise
    except OSError as e:
        raise _model_error(
            path, f"reading the file failed ({e.strerror or e})", "Check the disk and the file, then try again"
        ) from e
    except Exception as e:  # a validator bug: still report an unusable file, flagged
        raise _model_error(
            path,
            f"the validator failed unexpectedly ({type(e).__name__}: {e})",
            "Treat the file as unusable and please report this as a led_cpp bug",
            internal_error=True,
        ) from e


def check_gguf_file(path: Union[str, "os.PathLike[str]", "os.PathLike[bytes]", bytes]) -> GGUFSummary:
    """Validate the GGUF file at ``path`` before it is given to llama.cpp.

    Returns a :class:`GGUFSummary`.  Raises :class:`ModelFileNotFoundError` (a
    :class:`ModelFileError` and a :class:`FileNotFoundError`) when the file does
    not exist, and :class:`ModelFileError` for every other problem, including
    unreadable files; the message names the file, the problem and what to do.
    Only the header, metadata and tensor table are read.
    """
    fspath = os.fspath(path)
    display = os.fsdecode(fspath)
    try:
        st = os.stat(fspath)
    except FileNotFoundError as e:
        err = _model_error(
            display,
            "the file does not exist",
            "Check the path, or download the model first",
            cls=ModelFileNotFoundError,
        )
        err.errno = errno.ENOENT
        err.strerror = os.strerror(errno.ENOENT)
        err.filename = display
        raise err from e
    except (OSError, ValueError) as e:
        raise _model_error(
            display,
            f"the path cannot be accessed ({getattr(e, 'strerror', None) or e})",
            "Check the path and its permissions",
        ) from e
    if not stat.S_ISREG(st.st_mode):
        raise _model_error(
            display,
            f"it is {_kind(st.st_mode)}, not a model file",
            "Choose the .gguf file itself",
        )
    try:
        fd = os.open(fspath, _O_FLAGS)
    except FileNotFoundError as e:
        raise _model_error(
            display, "the file does not exist", "Check the path, or download the model first",
            cls=ModelFileNotFoundError,
        ) from e
    except OSError as e:
        raise _model_error(
            display,
            f"the file cannot be opened ({e.strerror or e})",
            "Check the file's permissions",
        ) from e
    try:
        st = os.fstat(fd)  # the file that was actually opened
        if not stat.S_ISREG(st.st_mode):
            raise _model_error(
                display, f"it is {_kind(st.st_mode)}, not a model file", "Choose the .gguf file itself"
            )
        f = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    with f:
        return _check_stream(f, st.st_size, display)


SPLIT_SUFFIX = "-{:05d}-of-{:05d}.gguf"  # llama.cpp's llama_split_path naming of the parts


def split_part_paths(first: str, count: int) -> Tuple[str, ...]:
    """The paths of all ``count`` parts of a split model, from its first part (llama.cpp's rule), or
    () when ``first`` is not named ``<prefix>-00001-of-<count>.gguf``."""
    suffix = SPLIT_SUFFIX.format(1, count)
    if len(first) <= len(suffix) or not first.endswith(suffix):
        return ()
    prefix = first[: -len(suffix)]
    return tuple(prefix + SPLIT_SUFFIX.format(index + 1, count) for index in range(count))


def check_gguf_model(path: Union[str, "os.PathLike[str]"]) -> GGUFSummary:
    """:func:`check_gguf_file` on a model, and for a split model (``split.count`` > 1) on every part:
    the first part must be given, the parts must be named as llama.cpp finds them, each part's
    ``split.no``/``split.count`` must match its place, tensor names must be unique across parts and
    their total must equal ``split.tensors.count``. Returns the first part's summary with ``parts``."""
    display = os.fsdecode(os.fspath(path))
    first = check_gguf_file(path)
    if first.split_count <= 1:
        return dataclasses.replace(first, parts=(display,))
    count = first.split_count
    if first.split_no != 0:
        raise _model_error(
            display, f"it is part {first.split_no + 1} of {count} of a split model",
            f"Load the first part, named ...{SPLIT_SUFFIX.format(1, count)}; llama.cpp opens the others from it")
    parts = split_part_paths(display, count)
    if not parts:
        raise _model_error(
            display, f"its metadata says it is the first of {count} parts, but its name does not end in "
            f"'{SPLIT_SUFFIX.format(1, count)}', so llama.cpp cannot find the other parts",
            "Keep the part names the model was published with")
    if first.split_tensors_count is None:
        raise _model_error(display, "it is the first part of a split model but has no 'split.tensors.count'",
                           _ADV_CORRUPT)
    names = set(first.tensor_names)
    for index, part in enumerate(parts[1:], start=1):
        try:
            summary = check_gguf_file(part)
        except ModelFileNotFoundError as error:
            raise _model_error(
                display, f"part {index + 1} of {count} ({os.path.basename(part)}) is missing",
                "Download every part of the split model into the same folder",
                cls=ModelFileNotFoundError) from error
        if summary.split_no != index or summary.split_count != count:
            raise _model_error(
                part, f"its metadata says part {summary.split_no + 1} of {summary.split_count}, but its name "
                f"makes it part {index + 1} of {count}", "Download the parts of the split model again")
        duplicated = names.intersection(summary.tensor_names)
        if duplicated:
            raise _model_error(part, f"the tensor '{sorted(duplicated)[0]}' is also in an earlier part",
                               _ADV_CORRUPT)
        names.update(summary.tensor_names)
    if len(names) != first.split_tensors_count:
        raise _model_error(
            display, f"the parts hold {len(names)} tensors, but 'split.tensors.count' says "
            f"{first.split_tensors_count}", "Download the parts of the split model again")
    return dataclasses.replace(first, parts=parts)
