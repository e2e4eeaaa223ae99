"""The GGUF value types and ggml tensor types of the pinned llama.cpp (gguf.h, ggml.h, ggml.c
``type_traits``, block sizes from ggml-common.h)."""

from __future__ import annotations

import struct
from typing import Callable, NamedTuple

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
GGUF_VALUE_TYPES: dict[int, tuple[str, int | None, str | None]] = {
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

#: Scalar value types: id -> the function that unpacks one value from a buffer at an offset.
SCALAR_UNPACKERS: dict[int, Callable[[bytes, int], tuple]] = {
    value_type: struct.Struct(layout).unpack_from for value_type, (_, _, layout) in GGUF_VALUE_TYPES.items() if layout
}


def type_name(value_type: int) -> str:
    """A GGUF value type's name for messages (``uint32``, ``string``, ``unknown type 13``)."""
    info = GGUF_VALUE_TYPES.get(value_type)
    return info[0] if info else f"unknown type {value_type}"


class GGMLTypeInfo(NamedTuple):
    """One ggml tensor type: block size in elements, bytes per block."""

    id: int
    name: str
    block_size: int  # 0: removed from ggml, files using it are rejected
    type_size: int


#: Every ggml type id in the pinned ggml (GGML_TYPE_COUNT == 43), from
#: ggml.c ``type_traits`` with block struct sizes from ggml-common.h.
GGML_TYPES: dict[int, GGMLTypeInfo] = {
    info.id: info
    for info in (
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
