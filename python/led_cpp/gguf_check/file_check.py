"""The entry points: open the file safely, check it, and for a split model check every part."""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from .errors import (
    ADVICE_CORRUPT,
    ADVICE_TRUNCATED,
    FileProblem,
    ModelFileError,
    ModelFileNotFoundError,
    Truncated,
    model_error,
)
from .metadata_rules import check_metadata
from .reader import Reader
from .structure import read_structure


@dataclass(frozen=True)
class GGUFSummary:
    """What :func:`check_gguf_file` found in a valid file."""

    path: str
    version: int
    n_tensors: int
    n_kv: int
    architecture: str | None  # None only for parts 2..N of a split model
    tensor_data_offset: int  # absolute file offset of the (aligned) data section
    file_size: int
    alignment: int
    metadata_keys: tuple[str, ...]
    tensor_names: tuple[str, ...]
    # split models: this part's split.no (0-based), split.count and split.tensors.count
    split_no: int = 0
    split_count: int = 1
    split_tensors_count: int | None = None
    # check_gguf_model: every part of a split model, the first one first
    parts: tuple[str, ...] = ()


def inspect_stream(reader: Reader, path: str) -> GGUFSummary:
    """The structure checks, then the metadata rules; the summary of a file that passes both."""
    structure = read_structure(reader)
    architecture = check_metadata(structure.metadata, structure.vocabulary)
    metadata = structure.metadata

    def split_value(key: bytes, default: int | None) -> int | None:
        entry = metadata.get(key)
        return default if entry is None else entry.value

    return GGUFSummary(
        path=path,
        version=structure.version,
        n_tensors=structure.tensor_count,
        n_kv=len(metadata),
        architecture=architecture,
        tensor_data_offset=structure.data_offset,
        file_size=reader.size,
        alignment=structure.alignment,
        metadata_keys=tuple(key.decode("utf-8", "backslashreplace") for key in metadata),
        tensor_names=tuple(tensor.name for tensor in structure.tensors),
        split_no=split_value(b"split.no", 0),
        split_count=split_value(b"split.count", 1),
        split_tensors_count=split_value(b"split.tensors.count", None),
    )


def check_stream(stream: BinaryIO, size: int, path: str) -> GGUFSummary:
    """Check an open, seekable binary stream of ``size`` bytes (``path`` names it in messages).
    Every failure, including a bug of the validator itself, is a :class:`ModelFileError`."""
    reader = Reader(stream, size)
    try:
        try:
            return inspect_stream(reader, path)
        except Truncated:
            raise FileProblem(
                f"the file is truncated: it ends at byte {size:,}, inside {reader.where}", ADVICE_TRUNCATED
            ) from None
    except FileProblem as problem:
        raise model_error(path, problem.problem, problem.advice) from None
    except ModelFileError:
        raise
    except OSError as error:
        raise model_error(
            path, f"reading the file failed ({error.strerror or error})", "Check the disk and the file, then try again"
        ) from error
    except Exception as error:  # a validator bug: still report an unusable file, flagged
        raise model_error(
            path,
            f"the validator failed unexpectedly ({type(error).__name__}: {error})",
            "Treat the file as unusable and please report this as a led_cpp bug",
            internal_error=True,
        ) from error


# Non-blocking, so that opening a FIFO cannot hang the check.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _not_found(display: str) -> ModelFileNotFoundError:
    return model_error(
        display,
        "the file does not exist",
        "Check the path, or download the model first",
        error_class=ModelFileNotFoundError,
    )


def check_gguf_file(path: str | os.PathLike[str] | os.PathLike[bytes] | bytes) -> GGUFSummary:
    """Validate the GGUF file at ``path`` before it is given to llama.cpp.

    Returns a :class:`GGUFSummary`.  Raises :class:`ModelFileNotFoundError` (a
    :class:`ModelFileError` and a :class:`FileNotFoundError`) when the file does
    not exist, and :class:`ModelFileError` for every other problem, including
    unreadable files; the message names the file, the problem and what to do.
    Only the header, metadata and tensor table are read.
    """
    file_path = os.fspath(path)
    display = os.fsdecode(file_path)
    try:
        status = os.stat(file_path)
    except FileNotFoundError as error:
        missing = _not_found(display)
        missing.errno = errno.ENOENT
        missing.strerror = os.strerror(errno.ENOENT)
        missing.filename = display
        raise missing from error
    except (OSError, ValueError) as error:
        raise model_error(
            display,
            f"the path cannot be accessed ({getattr(error, 'strerror', None) or error})",
            "Check the path and its permissions",
        ) from error
    if not stat.S_ISREG(status.st_mode):
        raise model_error(
            display, f"it is {_kind_of(status.st_mode)}, not a model file", "Choose the .gguf file itself"
        )
    try:
        descriptor = os.open(file_path, _OPEN_FLAGS)
    except FileNotFoundError as error:
        raise _not_found(display) from error
    except OSError as error:
        raise model_error(
            display, f"the file cannot be opened ({error.strerror or error})", "Check the file's permissions"
        ) from error
    try:
        status = os.fstat(descriptor)  # the file that was actually opened
        if not stat.S_ISREG(status.st_mode):
            raise model_error(
                display, f"it is {_kind_of(status.st_mode)}, not a model file", "Choose the .gguf file itself"
            )
        stream = os.fdopen(descriptor, "rb", buffering=0)
    except BaseException:
        os.close(descriptor)
        raise
    with stream:
        return check_stream(stream, status.st_size, display)


SPLIT_SUFFIX = "-{:05d}-of-{:05d}.gguf"  # llama.cpp's llama_split_path naming of the parts


def split_part_paths(first: str, count: int) -> tuple[str, ...]:
    """The paths of all ``count`` parts of a split model, from its first part (llama.cpp's rule), or
    () when ``first`` is not named ``<prefix>-00001-of-<count>.gguf``."""
    suffix = SPLIT_SUFFIX.format(1, count)
    if len(first) <= len(suffix) or not first.endswith(suffix):
        return ()
    prefix = first[: -len(suffix)]
    return tuple(prefix + SPLIT_SUFFIX.format(index + 1, count) for index in range(count))


def check_gguf_model(path: str | os.PathLike[str]) -> GGUFSummary:
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
        raise model_error(
            display,
            f"it is part {first.split_no + 1} of {count} of a split model",
            f"Load the first part, named ...{SPLIT_SUFFIX.format(1, count)}; llama.cpp opens the others from it",
        )
    parts = split_part_paths(display, count)
    if not parts:
        raise model_error(
            display,
            f"its metadata says it is the first of {count} parts, but its name does not end in "
            f"'{SPLIT_SUFFIX.format(1, count)}', so llama.cpp cannot find the other parts",
            "Keep the part names the model was published with",
        )
    if first.split_tensors_count is None:
        raise model_error(
            display, "it is the first part of a split model but has no 'split.tensors.count'", ADVICE_CORRUPT
        )
    names = set(first.tensor_names)
    for index, part in enumerate(parts[1:], start=1):
        try:
            summary = check_gguf_file(part)
        except ModelFileNotFoundError as error:
            raise model_error(
                display,
                f"part {index + 1} of {count} ({os.path.basename(part)}) is missing",
                "Download every part of the split model into the same folder",
                error_class=ModelFileNotFoundError,
            ) from error
        if summary.split_no != index or summary.split_count != count:
            raise model_error(
                part,
                f"its metadata says part {summary.split_no + 1} of {summary.split_count}, but its name "
                f"makes it part {index + 1} of {count}",
                "Download the parts of the split model again",
            )
        duplicated = names.intersection(summary.tensor_names)
        if duplicated:
            raise model_error(part, f"the tensor '{sorted(duplicated)[0]}' is also in an earlier part", ADVICE_CORRUPT)
        names.update(summary.tensor_names)
    if len(names) != first.split_tensors_count:
        raise model_error(
            display,
            f"the parts hold {len(names)} tensors, but 'split.tensors.count' says {first.split_tensors_count}",
            "Download the parts of the split model again",
        )
    return dataclasses.replace(first, parts=parts)
