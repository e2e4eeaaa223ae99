"""GGUF files from the Hugging Face Hub through huggingface_hub's cache: a file name or a glob, and
every part of a split model."""

from __future__ import annotations

import fnmatch
import os
import re

from .gguf_check import SPLIT_SUFFIX

# llama.cpp's part names: <prefix>-00001-of-00003.gguf
SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5})-of-(?P<count>\d{5})\.gguf$")
_SHOWN = 40  # candidates listed in an error at most


def _is_glob(filename: str) -> bool:
    return any(character in filename for character in "*?[")


def split_parts(filename: str) -> tuple[str, ...]:
    """All part names of the split model ``filename`` belongs to (first first), or (filename,)."""
    match = SPLIT_NAME.match(filename)
    if match is None or int(match["count"]) < 1 or not 1 <= int(match["number"]) <= int(match["count"]):
        return (filename,)
    count = int(match["count"])
    return tuple(match["prefix"] + SPLIT_SUFFIX.format(index + 1, count) for index in range(count))


def repo_files(repo_id: str, revision: str | None, cache_dir: str | None) -> list[str]:
    """The repository's file paths: from the Hub, or offline (HF_HUB_OFFLINE) from the cached snapshot."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True)
        files = []
        for directory, _, names in os.walk(folder):
            for name in names:
                files.append(os.path.relpath(os.path.join(directory, name), folder).replace(os.sep, "/"))
        return sorted(files)
    from huggingface_hub import HfApi

    return sorted(HfApi().list_repo_files(repo_id, revision=revision))


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def resolve_glob(pattern: str, files: list[str], repo_id: str) -> tuple[str, ...]:
    """The parts of the one model ``pattern`` matches among ``files`` (GGUF files only; the parts of a
    split model are one model), or a ValueError listing what it matched or what there is."""
    ggufs = [name for name in files if name.endswith(".gguf")]
    matched = [name for name in ggufs if fnmatch.fnmatch(name, pattern)]
    models = sorted({split_parts(name) for name in matched})
    if not models:
        raise ValueError(f"no GGUF file in {repo_id} matches {pattern!r}; its GGUF files: {_listing(ggufs) or 'none'}")
    if len(models) > 1:
        raise ValueError(
            f"{pattern!r} matches {len(models)} models in {repo_id}: "
            f"{_listing([parts[0] for parts in models])}; give a pattern or name that matches one"
        )
    parts = models[0]
    missing = [part for part in parts if part not in files]
    if missing:
        raise ValueError(f"{repo_id} lacks {_listing(missing)} of the split model {parts[0]}")
    return parts


def download_model(repo_id: str, filename: str, *, revision: str | None = None, cache_dir: str | None = None) -> str:
    """The local path of the model's (first) file, after every file it needs is in the hub cache."""
    from huggingface_hub import hf_hub_download

    for name, value in (("repo_id", repo_id), ("filename", filename)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty str, not {value!r}")
    if _is_glob(filename):
        parts = resolve_glob(filename, repo_files(repo_id, revision, cache_dir), repo_id)
    else:
        parts = split_parts(filename)
    paths = [hf_hub_download(repo_id=repo_id, filename=part, revision=revision, cache_dir=cache_dir) for part in parts]
    return paths[0]
