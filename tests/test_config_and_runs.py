"""Configs reject what they do not know; run folders never overwrite."""

from __future__ import annotations

import pytest

from hardsight.config import TrainConfig, load_config, save_config
from hardsight.errors import ConfigError, RunError
from hardsight.runs import RunFolder


def test_unknown_setting_suggests_the_close_one():
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig.from_dict({"task": "text", "data": "d", "epocs": 3})


def test_values_are_checked():
    with pytest.raises(ConfigError, match="split"):
        TrainConfig(task="text", data="d", split=(0.5, 0.2, 0.2))
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(task="text", data="d", batch_size=0)


def test_yaml_round_trip_with_overrides(tmp_path):
    cfg = TrainConfig(task="text", data="d", split=(0.7, 0.2, 0.1), max_minutes=2.5)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert load_config(tmp_path / "c.yaml", {"epochs": 7, "seed": None}).epochs == 7


def test_run_folders_auto_increment_and_never_overwrite(tmp_path):
    a = RunFolder.create(None, "text", "crnn", root=tmp_path)
    (a.path / "config.yaml").write_text("x")
    b = RunFolder.create(None, "text", "crnn", root=tmp_path)
    assert (a.path.name, b.path.name) == ("crnn-1", "crnn-2")
    with pytest.raises(RunError, match="--resume"):
        RunFolder.create(a.path, "text", "crnn")


def test_opening_a_non_run_is_a_clear_error(tmp_path):
    with pytest.raises(RunError, match="not a run folder"):
        RunFolder.open(tmp_path)


def test_precision_reads_from_yaml_numbers_and_names_its_choices(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: image\ndata: d\nprecision: 32\n")
    assert load_config(path).precision == "32"
    path.write_text("task: image\ndata: d\nprecision: fp8\n")
    with pytest.raises(ConfigError, match=r"precision must be one of \['32', 'bf16-mixed', '16-mixed'\]"):
        load_config(path)
