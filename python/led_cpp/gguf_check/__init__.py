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

Modules: :mod:`.reader` (the bounded reader), :mod:`.type_tables` (GGUF value and ggml tensor
types), :mod:`.limits`, :mod:`.structure` (header, metadata, tensor table, data layout),
:mod:`.metadata_rules` (what llama.cpp asserts on), :mod:`.file_check` (the entry points),
:mod:`.errors`.
"""

from __future__ import annotations

from .errors import ModelFileError, ModelFileNotFoundError
from .file_check import (
    SPLIT_SUFFIX,
    GGUFSummary,
    check_gguf_file,
    check_gguf_model,
    check_stream,
    split_part_paths,
)
from .limits import (
    GGML_MAX_DIMS,
    GGML_MAX_NAME,
    GGUF_MAX_ARRAY_ELEMENTS,
    GGUF_MAX_STRING_LENGTH,
    LLAMA_MAX_EXPERTS,
    LLAMA_MAX_LAYERS,
    MAX_KEY_LENGTH,
    MAX_KV_COUNT,
    MAX_NUMERIC_ARRAY_ELEMENTS,
    MAX_STRING_ARRAY_ELEMENTS,
    MAX_STRING_VALUE,
    MAX_TENSOR_COUNT,
    MAX_TOKEN_LENGTH,
    MAX_VOCAB_TOKENS,
)
from .type_tables import GGML_TYPE_COUNT, GGML_TYPES, GGUF_VALUE_TYPES, GGMLTypeInfo

__all__ = [
    "GGML_MAX_DIMS",
    "GGML_MAX_NAME",
    "GGML_TYPES",
    "GGML_TYPE_COUNT",
    "GGUF_MAX_ARRAY_ELEMENTS",
    "GGUF_MAX_STRING_LENGTH",
    "GGUF_VALUE_TYPES",
    "LLAMA_MAX_EXPERTS",
    "LLAMA_MAX_LAYERS",
    "MAX_KEY_LENGTH",
    "MAX_KV_COUNT",
    "MAX_NUMERIC_ARRAY_ELEMENTS",
    "MAX_STRING_ARRAY_ELEMENTS",
    "MAX_STRING_VALUE",
    "MAX_TENSOR_COUNT",
    "MAX_TOKEN_LENGTH",
    "MAX_VOCAB_TOKENS",
    "SPLIT_SUFFIX",
    "GGUFSummary",
    "GGMLTypeInfo",
    "ModelFileError",
    "ModelFileNotFoundError",
    "check_gguf_file",
    "check_gguf_model",
    "check_stream",
    "split_part_paths",
]
