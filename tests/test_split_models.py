"""The model-file check covers every part of a split GGUF model (split.no, split.count,
split.tensors.count, each part's structure) before llama.cpp opens them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import led_cpp
from led_cpp.gguf_check import ModelFileError, ModelFileNotFoundError, check_gguf_model
from tests.support.tiny_models import write_tiny_model

PARTS = [f"tiny-{index:05d}-of-00003.gguf" for index in (1, 2, 3)]


@pytest.fixture
def split_dir(tmp_path: Path) -> Path:
    write_tiny_model(tmp_path / "tiny.gguf", "llama", split_max_tensors=16)
    assert sorted(path.name for path in tmp_path.iterdir()) == PARTS
    return tmp_path


def test_every_part_is_checked(split_dir):
    summary = check_gguf_model(split_dir / PARTS[0])
    assert [Path(part).name for part in summary.parts] == PARTS
    assert (summary.split_no, summary.split_count, summary.split_tensors_count) == (0, 3, 4 * 9 + 3)
    assert summary.architecture == "llama"
    whole = check_gguf_model(write_tiny_model(split_dir / "whole.gguf", "llama").path)
    assert (whole.split_count, len(whole.parts)) == (1, 1)


def test_a_later_part_is_refused(split_dir):
    with pytest.raises(ModelFileError, match="part 2 of 3 of a split model.*Load the first part"):
        check_gguf_model(split_dir / PARTS[1])
    with pytest.raises(ModelFileError, match="part 2 of 3"):
        led_cpp.Model(split_dir / PARTS[1], n_ctx=64, n_threads=1)


def test_a_missing_part(split_dir):
    (split_dir / PARTS[2]).unlink()
    with pytest.raises(ModelFileNotFoundError, match=r"part 3 of 3 \(tiny-00003-of-00003.gguf\) is missing"):
        check_gguf_model(split_dir / PARTS[0])


def test_parts_in_the_wrong_places(split_dir):
    second, third = split_dir / PARTS[1], split_dir / PARTS[2]
    second.rename(split_dir / "swap")
    third.rename(second)
    (split_dir / "swap").rename(third)
    with pytest.raises(ModelFileError, match="says part 3 of 3, but its name makes it part 2 of 3"):
        check_gguf_model(split_dir / PARTS[0])


def test_a_first_part_not_named_as_llama_cpp_finds_parts(split_dir):
    renamed = split_dir / "tiny.gguf"
    (split_dir / PARTS[0]).rename(renamed)
    with pytest.raises(ModelFileError, match="does not end in '-00001-of-00003.gguf'"):
        check_gguf_model(renamed)


def test_a_part_of_another_model(split_dir, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    write_tiny_model(other / "tiny.gguf", "llama", n_layer=5, split_max_tensors=20)  # 48 tensors: 20+20+8
    shutil.copyfile(other / PARTS[2], split_dir / PARTS[2])
    with pytest.raises(ModelFileError, match="the parts hold 40 tensors, but .split.tensors.count. says 39"):
        check_gguf_model(split_dir / PARTS[0])
