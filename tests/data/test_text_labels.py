"""Reading labelled text sets: where labels come from and what happens to bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hardsight.config import InputSpec
from hardsight.data.io import load_image
from hardsight.data.text.labels import Skipped, TextLabelling, filter_charset, infer_charset, read_text_labels
from hardsight.data.text.datamodule import infer_spec, load_samples
from hardsight.errors import DataError


def _img(path: Path, size=(120, 40), mode="RGB", color=(0, 0, 0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode != "RGBA" else (0, 0, 0, 0)).save(path)
    return path


def test_labels_come_from_file_stems_recursively(tmp_path):
    _img(tmp_path / "2g7nm.png")
    _img(tmp_path / "sub" / "abc12.jpg")
    files, skipped = read_text_labels(tmp_path, TextLabelling())
    assert sorted(f.label for f in files) == ["2g7nm", "abc12"]
    assert skipped.total == 0


def test_label_pattern_extracts_group_and_reports_non_matching(tmp_path):
    _img(tmp_path / "ab12x-7.png")
    _img(tmp_path / "zz9-12.png")
    _img(tmp_path / "nodash.png")
    files, skipped = read_text_labels(tmp_path, TextLabelling(label_pattern=r"(.+)-\d+$"))
    assert sorted(f.label for f in files) == ["ab12x", "zz9"]
    assert [Path(f).name for f, _ in skipped.bad_label] == ["nodash.png"]


def test_lowercase_folds_labels(tmp_path):
    _img(tmp_path / "AbC.png")
    files, _ = read_text_labels(tmp_path, TextLabelling(lowercase=True))
    assert files[0].label == "abc"


def test_csv_manifest_resolves_relative_to_csv_and_reports_missing(tmp_path):
    _img(tmp_path / "imgs" / "a.png")
    _img(tmp_path / "imgs" / "b.png")
    (tmp_path / "labels.csv").write_text("file,label\nimgs/a.png,xy7\nimgs/b.png,k2\nimgs/missing.png,zz\n")
    files, skipped = read_text_labels(tmp_path / "labels.csv", TextLabelling())
    assert [(f.path.name, f.label) for f in files] == [("a.png", "xy7"), ("b.png", "k2")]
    assert len(skipped.unreadable) == 1 and "missing.png" in skipped.unreadable[0][1]


def test_csv_without_label_column_is_a_clear_error(tmp_path):
    (tmp_path / "m.csv").write_text("path,text\na.png,x\n")
    with pytest.raises(DataError, match="'file' and 'label'"):
        read_text_labels(tmp_path / "m.csv", TextLabelling())


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        read_text_labels(tmp_path, TextLabelling())
    with pytest.raises(DataError, match="no such file or folder"):
        read_text_labels(tmp_path / "nope", TextLabelling())


def test_charset_is_inferred_and_labels_outside_it_are_skipped_by_name(tmp_path):
    _img(tmp_path / "abc.png")
    _img(tmp_path / "abz.png")
    files, skipped = read_text_labels(tmp_path, TextLabelling())
    assert infer_charset([f.label for f in files]) == "abcz"
    kept = filter_charset(files, "abc", skipped)
    assert [f.label for f in kept] == ["abc"]
    assert "abz.png" in skipped.bad_label[0][0] and "'z'" in skipped.bad_label[0][1]


def test_rgba_transparency_is_composited_on_white(tmp_path):
    path = tmp_path / "t.png"
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :10] = (0, 0, 0, 255)  # opaque black left half, transparent right half
    Image.fromarray(rgba, "RGBA").save(path)
    grey = np.asarray(load_image(path, "L"))
    assert grey[:, :10].max() == 0 and grey[:, 10:].min() == 255


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "bmp"])
def test_common_formats_decode(tmp_path, ext):
    path = _img(tmp_path / f"ab.{ext}", size=(50, 20), color=(255, 255, 255))
    assert load_image(path, "L").size == (50, 20)


def test_undecodable_and_truncated_files_are_skipped_and_counted(tmp_path):
    good = _img(tmp_path / "good.png", size=(100, 40))
    (tmp_path / "junk.png").write_bytes(b"this is not a png")
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    files, skipped = read_text_labels(tmp_path, TextLabelling())
    samples, sk = load_samples(files, InputSpec(32, 128), workers=2, progress=None)
    skipped.merge(sk)
    assert [s.label for s in samples] == ["good"]
    assert sorted(Path(f).name for f, _ in skipped.unreadable) == ["cut.png", "junk.png"]


def test_variable_widths_keep_aspect_up_to_the_widest(tmp_path):
    sizes = [(200, 80), (640, 80), (400, 80)]
    spec = infer_spec(sizes, height=32, width=None, channels=1, keep_aspect=True)
    assert spec.width == 256  # 640 * 32 / 80
    for i, (w, h) in enumerate(sizes):
        _img(tmp_path / f"{'abcdefgh'[: 4 + i]}.png", size=(w, h))
    files, _ = read_text_labels(tmp_path, TextLabelling())
    samples, _ = load_samples(files, spec, workers=1, progress=None)
    assert sorted(s.image.shape[-1] for s in samples) == [80, 160, 256]
    assert all(s.image.shape[-2] == 32 for s in samples)
    assert sorted(len(s.label) for s in samples) == [4, 5, 6]


def test_skipped_counts_both_reasons():
    s = Skipped(unreadable=[("a", "x")], bad_label=[("b", "y"), ("c", "z")])
    assert s.total == 3
