"""The file's structure, in file order: header, metadata key/value pairs, tensor table, and the
layout of the tensor data (which itself is never read)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import (
    ADVICE_CORRUPT,
    ADVICE_LIMIT,
    ADVICE_NOT_GGUF,
    ADVICE_TRUNCATED,
    ADVICE_UNSUPPORTED,
    FileProblem,
    show_bytes,
)
from .limits import (
    GGML_MAX_DIMS,
    GGML_MAX_NAME,
    GGUF_DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
    GGUF_MAX_ARRAY_ELEMENTS,
    GGUF_MAX_STRING_LENGTH,
    GGUF_VERSION_MAX,
    GGUF_VERSION_MIN,
    HEADER_SIZE,
    INT64_MAX,
    KEEP_ARRAY_BYTES,
    KEEP_STRING_BYTES,
    MAX_KEY_LENGTH,
    MAX_KV_COUNT,
    MAX_NUMERIC_ARRAY_ELEMENTS,
    MAX_STRING_ARRAY_ELEMENTS,
    MAX_STRING_VALUE,
    MAX_TENSOR_COUNT,
    MAX_VOCAB_TOKENS,
    MIN_KV_SIZE,
    MIN_TENSOR_INFO_SIZE,
)
from .reader import Reader
from .type_tables import (
    GGML_TYPE_COUNT,
    GGML_TYPES,
    GGUF_TYPE_ARRAY,
    GGUF_TYPE_STRING,
    GGUF_TYPE_UINT32,
    GGUF_VALUE_TYPES,
    SCALAR_UNPACKERS,
    GGMLTypeInfo,
    type_name,
)

VOCABULARY_KEY = b"tokenizer.ggml.tokens"
_DIMENSIONS_UNPACKERS = {count: struct.Struct(f"<{count}q").unpack_from for count in range(1, GGML_MAX_DIMS + 1)}


class MetadataValue(NamedTuple):
    """One metadata value: its GGUF type, and the value (None for a string too long to keep; an
    :class:`ArrayValue` for an array)."""

    value_type: int
    value: Any


class ArrayValue(NamedTuple):
    element_type: int
    count: int
    raw: bytes | None  # the packed elements of a small numeric array, else None


class TensorInfo(NamedTuple):
    name: str
    dimensions: tuple[int, ...]
    ggml_type: GGMLTypeInfo
    size_bytes: int
    offset: int  # from the start of the data section


Metadata = dict[bytes, MetadataValue]


@dataclass
class Structure:
    """What the structure checks read: enough for the metadata rules and the summary."""

    version: int
    tensor_count: int
    metadata: Metadata
    vocabulary: list[bytes] | None  # tokenizer.ggml.tokens, for the duplicate check
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int  # absolute file offset of the (aligned) data section


def read_structure(reader: Reader) -> Structure:
    """Check the file's structure from the header to the tensor data layout."""
    version, tensor_count, entry_count = read_header(reader)
    metadata, vocabulary = read_metadata(reader, entry_count)
    alignment = alignment_of(metadata)
    tensors = read_tensor_table(reader, tensor_count)
    data_offset = check_data_layout(tensors, reader.tell(), alignment, reader.size)
    return Structure(version, tensor_count, metadata, vocabulary, tensors, alignment, data_offset)


# --- header ---------------------------------------------------------------------------------------


def read_header(reader: Reader) -> tuple[int, int, int]:
    """Magic, version, tensor count and key/value count; returns (version, tensors, entries)."""
    size = reader.size
    if size == 0:
        raise FileProblem("the file is empty (0 bytes)", ADVICE_TRUNCATED)
    head = reader.read(min(size, 64))
    reader.position = 0
    if head[:4] != GGUF_MAGIC:
        if size < 4 and GGUF_MAGIC.startswith(head):
            raise FileProblem(
                f"the file is truncated: it is only {size} bytes long and ends inside the GGUF magic",
                ADVICE_TRUNCATED,
            )
        raise FileProblem(
            f"it is not a GGUF file: it starts with {head[:4]!r} instead of b'GGUF'" + foreign_format_hint(head),
            ADVICE_NOT_GGUF,
        )
    if size < HEADER_SIZE:
        raise FileProblem(
            f"the file is truncated: it is only {size} bytes long and ends inside the {HEADER_SIZE}-byte GGUF header",
            ADVICE_TRUNCATED,
        )
    reader.skip(4)
    version = check_version(reader.uint32())
    tensor_count = reader.uint64()
    entry_count = reader.uint64()
    for what, count, limit in (
        ("tensor count", tensor_count, MAX_TENSOR_COUNT),
        ("metadata key/value count", entry_count, MAX_KV_COUNT),
    ):
        if count > INT64_MAX:
            raise FileProblem(
                f"the header's {what} is negative as a signed 64-bit number ({count - (1 << 64)})", ADVICE_CORRUPT
            )
        if count > limit:
            raise FileProblem(f"the header's {what} is an absurd {count:,} (validator limit: {limit:,})", ADVICE_LIMIT)
    rest = size - HEADER_SIZE
    needed = entry_count * MIN_KV_SIZE + tensor_count * MIN_TENSOR_INFO_SIZE
    if needed > rest:
        raise FileProblem(
            f"the header declares {entry_count:,} metadata entries and {tensor_count:,} tensors, which "
            f"need at least {needed:,} bytes, but only {rest:,} bytes follow the header: the file "
            "is truncated or the counts are corrupted",
            ADVICE_TRUNCATED,
        )
    return version, tensor_count, entry_count


def check_version(version: int) -> int:
    if version == 0:
        raise FileProblem("the GGUF version field is 0, which is invalid", ADVICE_CORRUPT)
    if version & 0xFFFF == 0:
        raise FileProblem(
            f"the GGUF version field reads as {version:#010x}: this is a big-endian "
            "(byte-swapped) GGUF file, which llama.cpp cannot load on this little-endian machine",
            "Download the little-endian (standard) build of the model",
        )
    if version == 1:
        raise FileProblem(
            "it is a GGUF version 1 file; llama.cpp no longer reads GGUF v1 (it reads v2 and v3)", ADVICE_UNSUPPORTED
        )
    if version > GGUF_VERSION_MAX:
        raise FileProblem(
            f"it is GGUF version {version}, newer than the versions this llama.cpp reads "
            f"({GGUF_VERSION_MIN} and {GGUF_VERSION_MAX})",
            "Update led_cpp, or get a GGUF v3 build of the model",
        )
    return version


def foreign_format_hint(head: bytes) -> str:
    """What a non-GGUF file probably is, from its first bytes ("" when unknown)."""
    magic = head[:4]
    if magic in (b"lmgg", b"ggml", b"fmgg", b"ggmf", b"tjgg", b"ggjt", b"ggla", b"algg"):
        return (
            " (it is an old GGML/GGMF/GGJT model file, a format llama.cpp dropped in 2023; "
            "get a GGUF version of the model)"
        )
    if magic == b"FUGG":
        return " (the magic is byte-reversed: 'FUGG')"
    if magic == b"PK\x03\x04":
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


# --- metadata key/value pairs ---------------------------------------------------------------------


def read_metadata(reader: Reader, entry_count: int) -> tuple[Metadata, list[bytes] | None]:
    """Every key/value pair; returns the values by key and the vocabulary's tokens (if any)."""
    metadata: Metadata = {}
    vocabulary: list[bytes] | None = None
    for index in range(entry_count):
        reader.where = f"metadata entry #{index}"
        key = read_key(reader, index, metadata)
        shown = show_bytes(key)
        reader.where = f"the value of metadata key {shown} (entry #{index})"
        value_type = reader.uint32()
        if value_type not in GGUF_VALUE_TYPES:
            raise FileProblem(
                f"metadata key {shown} has unknown value type {value_type} (valid types are 0..12)", ADVICE_CORRUPT
            )
        if value_type == GGUF_TYPE_ARRAY:
            array, tokens = read_array(reader, key, shown)
            metadata[key] = MetadataValue(value_type, array)
            if tokens is not None:
                vocabulary = tokens
        elif value_type == GGUF_TYPE_STRING:
            metadata[key] = MetadataValue(value_type, read_string_value(reader, shown))
        else:
            size = GGUF_VALUE_TYPES[value_type][1]
            assert size is not None
            metadata[key] = MetadataValue(value_type, reader.unpack(SCALAR_UNPACKERS[value_type], size)[0])
    return metadata, vocabulary


def read_key(reader: Reader, index: int, metadata: Metadata) -> bytes:
    length = reader.string_length(
        f"the key of metadata entry #{index}", MAX_KEY_LENGTH, "GGUF keys are at most 65,535 bytes"
    )
    if length == 0:
        raise FileProblem(f"metadata entry #{index} has an empty key", ADVICE_CORRUPT)
    key = reader.read(length)
    if b"\0" in key:
        raise FileProblem(f"metadata key {show_bytes(key)} (entry #{index}) contains a NUL byte", ADVICE_CORRUPT)
    if key in metadata:
        raise FileProblem(
            f"metadata key {show_bytes(key)} appears twice (second time as entry #{index})", ADVICE_CORRUPT
        )
    return key


def read_string_value(reader: Reader, shown_key: str) -> bytes | None:
    """A string value: kept when short enough for the metadata rules, else skipped (None)."""
    length = reader.string_length(
        f"the string value of metadata key {shown_key}",
        GGUF_MAX_STRING_LENGTH,
        f"llama.cpp's limit is {GGUF_MAX_STRING_LENGTH:,}",
    )
    if length > MAX_STRING_VALUE:
        raise FileProblem(
            f"the string value of metadata key {shown_key} is {length:,} bytes long (validator "
            f"limit: {MAX_STRING_VALUE:,})",
            ADVICE_LIMIT,
        )
    if length <= KEEP_STRING_BYTES:
        return reader.read(length)
    reader.skip(length)
    return None


def read_array(reader: Reader, key: bytes, shown_key: str) -> tuple[ArrayValue, list[bytes] | None]:
    """An array value; returns it and, for the vocabulary, its tokens."""
    element_type = reader.uint32()
    if element_type == GGUF_TYPE_ARRAY:
        raise FileProblem(
            f"metadata key {shown_key} is a nested array (an array of arrays), which llama.cpp does not support",
            ADVICE_CORRUPT,
        )
    if element_type not in GGUF_VALUE_TYPES:
        raise FileProblem(
            f"metadata key {shown_key} is an array with unknown element type {element_type} "
            "(valid types are 0..8 and 10..12)",
            ADVICE_CORRUPT,
        )
    count = reader.uint64()
    element_name, element_size, _ = GGUF_VALUE_TYPES[element_type]
    if count > GGUF_MAX_ARRAY_ELEMENTS:
        raise FileProblem(
            f"metadata key {shown_key} is an array with an absurd {count:,} elements "
            f"(llama.cpp's limit is {GGUF_MAX_ARRAY_ELEMENTS:,})",
            ADVICE_CORRUPT,
        )
    minimum_bytes = count * (element_size if element_size else 8)  # a string is at least its length
    remaining = reader.remaining()
    if minimum_bytes > remaining:
        raise FileProblem(
            f"the file is truncated or corrupted: metadata key {shown_key} is an array of "
            f"{count:,} {element_name} values needing at least {minimum_bytes:,} bytes, but only "
            f"{remaining:,} bytes remain in the file",
            ADVICE_TRUNCATED,
        )
    if element_size is None:  # strings
        if count > MAX_STRING_ARRAY_ELEMENTS:
            raise FileProblem(
                f"metadata key {shown_key} is a string array with {count:,} elements "
                f"(validator limit: {MAX_STRING_ARRAY_ELEMENTS:,})",
                ADVICE_LIMIT,
            )
        is_vocabulary = key == VOCABULARY_KEY
        if is_vocabulary and count > MAX_VOCAB_TOKENS:
            raise FileProblem(
                f"the tokenizer vocabulary {shown_key} has {count:,} tokens (validator limit: {MAX_VOCAB_TOKENS:,})",
                ADVICE_LIMIT,
            )
        tokens = reader.read_strings(count, is_vocabulary, f"string array {shown_key}")
        return ArrayValue(element_type, count, None), tokens
    if count > MAX_NUMERIC_ARRAY_ELEMENTS:
        raise FileProblem(
            f"metadata key {shown_key} is an array of {count:,} {element_name} values "
            f"(validator limit: {MAX_NUMERIC_ARRAY_ELEMENTS:,})",
            ADVICE_LIMIT,
        )
    if minimum_bytes <= KEEP_ARRAY_BYTES:
        return ArrayValue(element_type, count, reader.read(minimum_bytes)), None
    reader.skip(minimum_bytes)
    return ArrayValue(element_type, count, None), None


def alignment_of(metadata: Metadata) -> int:
    """``general.alignment`` (a uint32 power of two), or the default 32."""
    entry = metadata.get(b"general.alignment")
    if entry is None:
        return GGUF_DEFAULT_ALIGNMENT
    if entry.value_type != GGUF_TYPE_UINT32:
        raise FileProblem(
            f"metadata key 'general.alignment' must be a uint32 but is {type_name(entry.value_type)}", ADVICE_CORRUPT
        )
    alignment = entry.value
    if alignment == 0 or alignment & (alignment - 1):
        raise FileProblem(
            f"metadata key 'general.alignment' is {alignment}, which is not a power of two", ADVICE_CORRUPT
        )
    return alignment


# --- tensor table ---------------------------------------------------------------------------------


def read_tensor_table(reader: Reader, tensor_count: int) -> list[TensorInfo]:
    tensors: list[TensorInfo] = []
    seen_names: set = set()
    for index in range(tensor_count):
        reader.where = f"the tensor table (tensor #{index})"
        tensors.append(read_tensor_info(reader, index, seen_names))
    return tensors


def read_tensor_info(reader: Reader, index: int, seen_names: set) -> TensorInfo:
    """One entry of the tensor table: name, dimensions, ggml type, data offset."""
    name_length = reader.uint64()
    if name_length == 0:
        raise FileProblem(f"tensor #{index} has an empty name", ADVICE_CORRUPT)
    if name_length >= GGML_MAX_NAME:
        raise FileProblem(
            f"tensor #{index} has a name of {name_length:,} bytes; llama.cpp allows at most {GGML_MAX_NAME - 1}",
            ADVICE_CORRUPT,
        )
    raw_name = reader.read(name_length)
    name = raw_name.decode("utf-8", "backslashreplace")
    if b"\0" in raw_name:
        raise FileProblem(f"tensor #{index} name {name!r} contains a NUL byte", ADVICE_CORRUPT)
    if raw_name in seen_names:
        raise FileProblem(f"tensor name {name!r} appears twice (second time as tensor #{index})", ADVICE_CORRUPT)
    seen_names.add(raw_name)
    reader.where = f"the tensor table (tensor #{index}, {name!r})"
    dimension_count = reader.uint32()
    if dimension_count == 0 or dimension_count > GGML_MAX_DIMS:
        raise FileProblem(
            f"tensor {name!r} has {dimension_count} dimensions; ggml tensors have 1 to {GGML_MAX_DIMS}",
            ADVICE_CORRUPT,
        )
    dimensions = reader.unpack(_DIMENSIONS_UNPACKERS[dimension_count], 8 * dimension_count)
    element_count = 1
    for axis, extent in enumerate(dimensions):
        if extent <= 0:
            raise FileProblem(
                f"tensor {name!r} has dimension {axis} of size {extent}; sizes must be at least 1", ADVICE_CORRUPT
            )
        element_count *= extent
    if element_count > INT64_MAX:
        raise FileProblem(
            f"tensor {name!r} has shape {list(dimensions)}, whose element count overflows int64", ADVICE_CORRUPT
        )
    type_id = reader.uint32()  # int32 in the file; negative values read as >= 2**31
    ggml_type = GGML_TYPES.get(type_id)
    if ggml_type is None:
        shown = type_id - (1 << 32) if type_id >= 1 << 31 else type_id
        raise FileProblem(
            f"tensor {name!r} has unknown ggml type {shown} (this llama.cpp knows types 0..{GGML_TYPE_COUNT - 1})",
            "The file is damaged, or needs a newer led_cpp/llama.cpp; download it again or update led_cpp",
        )
    if ggml_type.block_size == 0:
        raise FileProblem(
            f"tensor {name!r} uses ggml type {type_id} = {ggml_type.name}, which this llama.cpp no longer supports",
            ADVICE_UNSUPPORTED,
        )
    if dimensions[0] % ggml_type.block_size:
        raise FileProblem(
            f"tensor {name!r} of type {ggml_type.name} has {dimensions[0]:,} elements per row, not a "
            f"multiple of the type's block size {ggml_type.block_size}",
            ADVICE_CORRUPT,
        )
    size_bytes = element_count // ggml_type.block_size * ggml_type.type_size
    offset = reader.uint64()
    return TensorInfo(name, tuple(dimensions), ggml_type, size_bytes, offset)


# --- tensor data layout ---------------------------------------------------------------------------


def check_data_layout(tensors: list[TensorInfo], table_end: int, alignment: int, file_size: int) -> int:
    """Each tensor's data aligned, packed in table order (as gguf.cpp requires) and inside the file;
    returns the data section's file offset."""
    data_offset = (table_end + alignment - 1) // alignment * alignment if tensors else table_end
    if data_offset > file_size:
        raise FileProblem(
            f"the file is truncated: the tensor data section should start at byte "
            f"{data_offset:,} but the file is only {file_size:,} bytes long",
            ADVICE_TRUNCATED,
        )
    expected = 0
    previous: TensorInfo | None = None
    for tensor in tensors:
        if tensor.offset % alignment:
            raise FileProblem(
                f"tensor {tensor.name!r} has data offset {tensor.offset:,}, which is not a multiple of "
                f"the alignment {alignment}",
                ADVICE_CORRUPT,
            )
        if tensor.offset < expected:
            assert previous is not None
            raise FileProblem(
                f"tensor {tensor.name!r} (data offset {tensor.offset:,}) overlaps the data of the "
                f"previous tensor {previous.name!r} (offsets {previous.offset:,} to "
                f"{previous.offset + previous.size_bytes:,})",
                ADVICE_CORRUPT,
            )
        if tensor.offset > expected:
            raise FileProblem(
                f"tensor {tensor.name!r} has data offset {tensor.offset:,} but llama.cpp requires tensors "
                f"to be packed in table order, so it must be {expected:,}",
                ADVICE_CORRUPT,
            )
        end = data_offset + tensor.offset + tensor.size_bytes
        if end > file_size:
            raise FileProblem(
                f"the file is truncated: the data of tensor {tensor.name!r} ({tensor.size_bytes:,} bytes, "
                f"{tensor.ggml_type.name} {list(tensor.dimensions)}) would end at byte {end:,}, past the end of "
                f"the file ({file_size:,} bytes)",
                ADVICE_TRUNCATED,
            )
        expected = tensor.offset + (tensor.size_bytes + alignment - 1) // alignment * alignment
        previous = tensor
    return data_offset
