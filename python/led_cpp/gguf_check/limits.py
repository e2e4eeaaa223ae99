"""The format's constants, llama.cpp's limits, and the validator's own tighter limits."""

from __future__ import annotations

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
INT64_MAX = (1 << 63) - 1

MAX_KEY_LENGTH = 65535  # GGUF spec
# Validator limits: they bound the time and memory spent on a hostile file; real files stay far below.
MAX_KV_COUNT = 1 << 16  # real files: < 100 keys
MAX_TENSOR_COUNT = 1 << 17  # real files: < 5,000 tensors
MAX_STRING_ARRAY_ELEMENTS = 1 << 22  # real vocabularies: < 300k tokens, merges < 1M
MAX_VOCAB_TOKENS = 1 << 20  # tokenizer.ggml.tokens is kept in memory for the duplicate check
MAX_NUMERIC_ARRAY_ELEMENTS = 1 << 24  # llama.cpp would allocate up to 8 GiB for 2**30 elements
MAX_STRING_VALUE = 1 << 24  # 16 MiB; chat templates, the longest real strings, are < 1 MiB
MAX_TOKEN_LENGTH = (1 << 20) - 8  # a string taken whole from a 1 MiB read-ahead buffer (reader.py)

HEADER_SIZE = 24  # magic, version, tensor count, key/value count
MIN_KV_SIZE = 8 + 1 + 4 + 1  # key length + 1-byte key + type + 1-byte value
MIN_TENSOR_INFO_SIZE = 8 + 1 + 4 + 8 + 4 + 8  # name length + name + n_dims + ne[0] + type + offset
KEEP_STRING_BYTES = 1 << 16  # scalar strings up to this size are kept for the metadata rules
KEEP_ARRAY_BYTES = 4096  # numeric arrays up to this size are kept for the metadata rules
