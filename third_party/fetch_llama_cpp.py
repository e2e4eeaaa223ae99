"""Obtain the pinned llama.cpp source for the build.

The source is the ``vendor/llama.cpp`` tree inside the PyPI sdist of
llama-cpp-python pinned in ``llama_cpp_pin.json``.  The sdist is fetched with pip
by name and version, its sha256 is checked against the pin, and only what the
library build needs is unpacked (about a fifth of the tree).  A finished unpack
carries a stamp with the hash, so later builds reuse it without touching the
network.

Usage: python fetch_llama_cpp.py DEST [--downloads DIR]
Environment: LED_CPP_LLAMA_SDIST=/path/to/llama_cpp_python-0.3.36.tar.gz uses a
local copy of the sdist instead of downloading it (it is still hash-checked).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIN = json.loads((HERE / "llama_cpp_pin.json").read_text())

# Parts of vendor/llama.cpp the static library build reads.  ggml backends that
# led_cpp does not offer a switch for are left out to keep the tree small enough
# to travel to a GPU machine.
KEEP_PREFIXES = (
    "CMakeLists.txt",
    "LICENSE",
    "licenses/",
    "cmake/",
    "include/",
    "src/",
    "vendor/",
    "ggml/CMakeLists.txt",
    "ggml/LICENSE",
    "ggml/cmake/",
    "ggml/include/",
    "ggml/src/",
)
DROP_PREFIXES = tuple(
    f"ggml/src/ggml-{name}/"
    for name in (
        "sycl",
        "opencl",
        "hexagon",
        "cann",
        "et",
        "openvino",
        "webgpu",
        "zdnn",
        "zendnn",
        "virtgpu",
        "rpc",
        "vulkan",
    )
) + ("vendor/miniaudio/miniaudio.h",)

STAMP = ".led_cpp_source_stamp"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_sdist(downloads: Path) -> Path:
    local = os.environ.get("LED_CPP_LLAMA_SDIST")
    if local:
        return Path(local)
    target = downloads / PIN["sdist"]
    if target.is_file() and sha256_of(target) == PIN["sha256"]:
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "-d",
        str(downloads),
        f"{PIN['package']}=={PIN['version']}",
    ]
    print("led_cpp: fetching the pinned llama.cpp source:", " ".join(command), flush=True)
    result = subprocess.run(command)
    if result.returncode != 0 or not target.is_file():
        raise SystemExit(
            f"led_cpp: could not download {PIN['package']}=={PIN['version']} from PyPI with pip.\n"
            "Either give the build network access to PyPI, set LED_CPP_LLAMA_SDIST to a local copy of "
            f"{PIN['sdist']}, or point the build at your own llama.cpp checkout with "
            "LLAMA_CPP_DIR=/path/to/llama.cpp (environment) or -DLLAMA_CPP_DIR=... (CMake)."
        )
    return target


def wanted(name: str) -> bool:
    return name.startswith(KEEP_PREFIXES) and not name.startswith(DROP_PREFIXES)


def unpack(sdist: Path, dest: Path) -> None:
    actual = sha256_of(sdist)
    if actual != PIN["sha256"]:
        raise SystemExit(
            f"led_cpp: {sdist} has sha256 {actual}, but the pin in third_party/llama_cpp_pin.json is "
            f"{PIN['sha256']}. Delete the file and build again, or set LLAMA_CPP_DIR to your own checkout."
        )
    root = f"{PIN['sdist'][: -len('.tar.gz')]}/{PIN['tree']}/"
    staging = Path(tempfile.mkdtemp(prefix=".llama.cpp-", dir=dest.parent))
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            if not member.name.startswith(root) or not (member.isfile() or member.isdir()):
                continue
            relative = member.name[len(root) :]
            if not relative or not wanted(relative):
                continue
            member.name = relative
            archive.extract(member, staging, filter="data")
    # miniaudio is only used by llama.cpp's multimodal tools; its CMake target needs the file to exist.
    audio = staging / "vendor/miniaudio/miniaudio.h"
    if audio.parent.is_dir() and not audio.exists():
        audio.write_text("/* left out by led_cpp: not used by the library build */\n")
    (staging / STAMP).write_text(PIN["sha256"] + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)


TEMPLATES = "models/templates/"


def read_templates(sdist: Path) -> dict:
    """The chat templates the pinned sdist carries (``models/templates/*.jinja``): file name -> text.
    Read straight from the hash-checked tarball, for the tests that render them."""
    actual = sha256_of(sdist)
    if actual != PIN["sha256"]:
        raise ValueError(f"{sdist} has sha256 {actual}, not the pinned {PIN['sha256']}")
    prefix = f"{PIN['sdist'][: -len('.tar.gz')]}/{PIN['tree']}/{TEMPLATES}"
    templates = {}
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".jinja"):
                templates[member.name[len(prefix) :]] = archive.extractfile(member).read().decode("utf-8")
    return dict(sorted(templates.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--downloads", type=Path, default=HERE / "downloads")
    args = parser.parse_args()
    dest = args.dest.resolve()
    stamp = dest / STAMP
    if stamp.is_file() and stamp.read_text().strip() == PIN["sha256"]:
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    unpack(download_sdist(args.downloads.resolve()), dest)
    print(f"led_cpp: llama.cpp {PIN['llama_cpp_version']} from {PIN['sdist']} unpacked into {dest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
