"""What llama.cpp asserts on in the metadata (a failed GGML_ASSERT aborts the whole process),
checked before it loads the file: key types read without a check, the architecture, the
hyper-parameters of ``llama_model_base::load_hparams`` and the vocabulary's duplicate tokens."""

from __future__ import annotations

import struct

from .errors import ADVICE_ABORT, ADVICE_CORRUPT, FileProblem, show_bytes
from .limits import LLAMA_MAX_EXPERTS, LLAMA_MAX_LAYERS
from .structure import VOCABULARY_KEY, ArrayValue, Metadata, MetadataValue
from .type_tables import (
    GGUF_TYPE_ARRAY,
    GGUF_TYPE_BOOL,
    GGUF_TYPE_FLOAT32,
    GGUF_TYPE_INT32,
    GGUF_TYPE_STRING,
    GGUF_TYPE_UINT16,
    GGUF_TYPE_UINT32,
    type_name,
)

ROPE_SCALING_TYPES = (b"none", b"linear", b"yarn", b"longrope")

# Keys llama.cpp reads with gguf_get_val_* (which GGML_ASSERTs on the type), or that must have a
# type for the rules below to mean anything: (key, type, element type of an array, aborts if wrong).
KEY_TYPES: tuple[tuple[bytes, int, int | None, bool], ...] = (
    (b"split.no", GGUF_TYPE_UINT16, None, True),
    (b"split.count", GGUF_TYPE_UINT16, None, False),
    (b"split.tensors.count", GGUF_TYPE_INT32, None, False),
    (b"general.type", GGUF_TYPE_STRING, None, True),
    (b"adapter.type", GGUF_TYPE_STRING, None, True),
    (b"adapter.lora.alpha", GGUF_TYPE_FLOAT32, None, True),
    (b"tokenizer.ggml.model", GGUF_TYPE_STRING, None, False),
    (VOCABULARY_KEY, GGUF_TYPE_ARRAY, GGUF_TYPE_STRING, False),
)


def check_metadata(metadata: Metadata, vocabulary: list[bytes] | None) -> str | None:
    """Every rule; returns the architecture (None for parts 2..N of a split model)."""
    check_key_types(metadata)
    architecture = check_architecture(metadata)
    if architecture is not None:
        check_hyperparameters(metadata, architecture)
    check_vocabulary(metadata, vocabulary)
    return architecture


def c_string(data: bytes) -> bytes:
    """What llama.cpp sees when it reads a GGUF string through ``const char *``."""
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def describe_type(entry: MetadataValue) -> str:
    if entry.value_type == GGUF_TYPE_ARRAY:
        return f"array of {type_name(entry.value.element_type)}"
    return type_name(entry.value_type)


def check_key_types(metadata: Metadata) -> None:
    for key, value_type, element_type, aborts in KEY_TYPES:
        entry = metadata.get(key)
        if entry is None:
            continue
        if entry.value_type == value_type and (element_type is None or entry.value.element_type == element_type):
            continue
        wanted = f"array of {type_name(element_type)}" if element_type is not None else type_name(value_type)
        raise FileProblem(
            f"metadata key '{key.decode()}' must be {wanted} but is {describe_type(entry)}"
            + (" (llama.cpp reads it with a type assertion that aborts the process)" if aborts else ""),
            ADVICE_ABORT if aborts else ADVICE_CORRUPT,
        )


def check_architecture(metadata: Metadata) -> str | None:
    """``general.architecture``: present (except in parts 2..N of a split model), a short,
    non-empty UTF-8 string."""
    entry = metadata.get(b"general.architecture")
    if entry is None:
        split_no = metadata.get(b"split.no")
        split_count = metadata.get(b"split.count")
        is_later_part = split_no is not None and split_no.value_type == GGUF_TYPE_UINT16 and split_no.value >= 1
        if (
            is_later_part
            and split_count is not None
            and split_count.value_type == GGUF_TYPE_UINT16
            and split_count.value > split_no.value
        ):
            return None  # parts 2..N of a split model carry only split.* metadata
        if is_later_part:
            raise FileProblem(
                f"the file says it is part {split_no.value + 1} of a split model but has no valid 'split.count'",
                ADVICE_CORRUPT,
            )
        raise FileProblem(
            "the metadata has no 'general.architecture' key, so llama.cpp cannot tell which model architecture it is",
            "The file is not a complete llama.cpp model (it may be a fragment or another "
            "tool's GGUF); get the model from a source that publishes llama.cpp GGUF files",
        )
    if entry.value_type != GGUF_TYPE_STRING:
        raise FileProblem(
            f"metadata key 'general.architecture' must be a string but is {type_name(entry.value_type)}",
            ADVICE_CORRUPT,
        )
    raw = entry.value
    if raw is None or len(raw) > 256:
        raise FileProblem("metadata key 'general.architecture' is absurdly long", ADVICE_CORRUPT)
    raw = c_string(raw)
    if not raw:
        raise FileProblem("metadata key 'general.architecture' is empty", ADVICE_CORRUPT)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem(
            f"metadata key 'general.architecture' is not valid UTF-8 ({show_bytes(raw)})", ADVICE_CORRUPT
        ) from None


class _LlamaThrowsFirst(Exception):
    """llama.cpp would stop with an exception (a graceful error) before reaching its asserts."""


def _would_abort(key: str, detail: str) -> FileProblem:
    return FileProblem(f"metadata {detail} (key '{key}'); llama.cpp asserts on this", ADVICE_ABORT)


def check_hyperparameters(metadata: Metadata, architecture: str) -> None:
    """The GGML_ASSERTs of llama_model_base::load_hparams that depend only on generic metadata,
    evaluated as llama.cpp does (wrong types or missing required keys make llama.cpp throw before
    the asserts, so those end the check)."""
    if architecture == "clip":
        return
    prefix = architecture + "."

    def uint32(name: str, default: int | None) -> int:
        entry = metadata.get((prefix + name).encode("utf-8"))
        if entry is None:
            if default is None:
                raise _LlamaThrowsFirst()
            return default
        if entry.value_type != GGUF_TYPE_UINT32:
            raise _LlamaThrowsFirst()
        return int(entry.value)

    try:
        _check_layers_and_experts(metadata, architecture, prefix, uint32)
        _check_rope_scaling(metadata, prefix)
    except _LlamaThrowsFirst:
        return


def _check_layers_and_experts(metadata: Metadata, architecture: str, prefix: str, uint32) -> None:
    layer_count = uint32("block_count", None)
    if not 1 <= layer_count <= LLAMA_MAX_LAYERS:
        raise _would_abort(prefix + "block_count", f"block_count is {layer_count}, outside 1..{LLAMA_MAX_LAYERS}")
    predicted_layers = uint32("nextn_predict_layers", 0)
    if predicted_layers > layer_count:
        raise _would_abort(
            prefix + "nextn_predict_layers",
            f"nextn_predict_layers {predicted_layers} exceeds block_count {layer_count}",
        )
    expert_count = uint32("expert_count", 0)
    most_experts_used = largest_expert_used_count(
        metadata.get((prefix + "expert_used_count").encode("utf-8")), layer_count
    )
    group_count = uint32("expert_group_count", 0)
    groups_used = uint32("expert_group_used_count", 0)
    if architecture in ("hunyuan_vl", "hunyuan-dense") and expert_count <= 1:
        expert_count = 0
        most_experts_used = 0
    if architecture == "wavtokenizer-dec":
        for part in ("posnet", "convnext"):
            part_layers = uint32(part + ".block_count", None)
            if part_layers > layer_count:
                raise _would_abort(
                    prefix + part + ".block_count",
                    f"{part}.block_count {part_layers} exceeds block_count {layer_count}",
                )
    if expert_count > LLAMA_MAX_EXPERTS:
        raise _would_abort(prefix + "expert_count", f"expert_count is {expert_count}, above {LLAMA_MAX_EXPERTS}")
    if most_experts_used > expert_count:
        raise _would_abort(
            prefix + "expert_used_count",
            f"expert_used_count {most_experts_used} exceeds expert_count {expert_count}",
        )
    if expert_count == 0:
        if group_count != 0:
            raise _would_abort(
                prefix + "expert_group_count", f"expert_group_count is {group_count} but the model has no experts"
            )
        return
    if most_experts_used == 0:
        raise _would_abort(
            prefix + "expert_used_count", f"expert_count is {expert_count} but expert_used_count is 0 or missing"
        )
    if group_count >= expert_count:
        raise _would_abort(
            prefix + "expert_group_count",
            f"expert_group_count {group_count} is not below expert_count {expert_count}",
        )
    if group_count > 1:
        if expert_count % group_count:
            raise _would_abort(
                prefix + "expert_group_count",
                f"expert_count {expert_count} is not a multiple of expert_group_count {group_count}",
            )
        if not 0 < groups_used < group_count:
            raise _would_abort(
                prefix + "expert_group_used_count",
                f"expert_group_used_count {groups_used} is not in 1..{group_count - 1}",
            )


def _check_rope_scaling(metadata: Metadata, prefix: str) -> None:
    """The rope scaling type is read as a C string and must be a known name."""
    entry = metadata.get((prefix + "rope.scaling.type").encode("utf-8"))
    if entry is None or entry.value_type != GGUF_TYPE_STRING:
        return
    name = c_string(entry.value) if entry.value is not None else b"<very long string>"
    if name not in ROPE_SCALING_TYPES:
        raise _would_abort(
            prefix + "rope.scaling.type",
            f"rope.scaling.type is {show_bytes(name)}, not one of none/linear/yarn/longrope",
        )


def largest_expert_used_count(entry: MetadataValue | None, layer_count: int) -> int:
    """The largest per-layer expert_used_count as llama.cpp's get_key_or_arr sees it."""
    if entry is None:
        return 0
    if entry.value_type != GGUF_TYPE_ARRAY:
        if entry.value_type != GGUF_TYPE_UINT32:
            raise _LlamaThrowsFirst()
        return int(entry.value)
    array: ArrayValue = entry.value
    if array.count != layer_count or array.raw is None:
        raise _LlamaThrowsFirst()  # wrong length: llama.cpp throws
    if array.element_type == GGUF_TYPE_BOOL:
        return max((1 if byte else 0 for byte in array.raw), default=0)
    if array.element_type in (GGUF_TYPE_UINT32, GGUF_TYPE_INT32):
        # int32 values are copied into uint32 storage
        return max(struct.unpack(f"<{array.count}I", array.raw), default=0)
    raise _LlamaThrowsFirst()


def check_vocabulary(metadata: Metadata, tokens: list[bytes] | None) -> None:
    """llama_vocab::impl::load maps every token (read as a C string, empty ones renamed
    ``[EMPTY_<id>]``) to its id and asserts that no two collide."""
    if tokens is None:
        return
    model = metadata.get(b"tokenizer.ggml.model")
    if model is None or model.value_type != GGUF_TYPE_STRING:
        return  # llama.cpp throws "key not found"/wrong type before reading tokens
    model_name = c_string(model.value) if model.value is not None else None
    if model_name in (b"no_vocab", b"none"):
        return
    has_nul = b"\0" in b"".join(tokens)
    if not has_nul:
        distinct = set(tokens)
        if len(distinct) == len(tokens) and b"" not in distinct:
            return  # the common case
        del distinct
    words = [c_string(token) for token in tokens] if has_nul else tokens
    first_ids: dict = {}
    empty_count = 0
    for token_id, word in enumerate(words):
        if not word:
            empty_count += 1
            continue
        first_id = first_ids.setdefault(word, token_id)
        if first_id != token_id:
            raise _duplicate_token(word, first_id, token_id)
    if empty_count:  # a literal "[EMPTY_<id>]" token clashes with the renamed empty token <id>
        for word, token_id in first_ids.items():
            if word.startswith(b"[EMPTY_") and word.endswith(b"]"):
                digits = word[7:-1]
                if 0 < len(digits) <= 10 and digits.isdigit() and (digits == b"0" or digits[:1] != b"0"):
                    renamed_id = int(digits)
                    if renamed_id < len(words) and not words[renamed_id]:
                        raise _duplicate_token(word, min(token_id, renamed_id), max(token_id, renamed_id))


def _duplicate_token(word: bytes, first: int, second: int) -> FileProblem:
    return FileProblem(
        f"the tokenizer vocabulary ('tokenizer.ggml.tokens') contains token {show_bytes(word)} twice "
        f"(ids {first} and {second}); llama.cpp aborts on a vocabulary with duplicate tokens",
        ADVICE_ABORT,
    )
