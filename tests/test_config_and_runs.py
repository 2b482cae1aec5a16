"""Configs reject what they do not know; run folders never overwrite."""

from __future__ import annotations

import pytest

from hardsight.config import TrainConfig, load_config, save_config
from hardsight.errors import ConfigError, RunError
from hardsight.runs.folder import RunFolder


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


def test_python_and_cli_share_the_task_defaults(tmp_path):
    """`TrainConfig(task=...)` from Python gets the same defaults as `hardsight train TASK` (config.py's tables)."""
    from hardsight.cli.train import _config
    from hardsight.config import SCRATCH, TEXT_DEFAULTS

    assert _config("image", {"data": "d", "model": "compact"}, None) == TrainConfig(task="image", data="d",
                                                                                  model="compact")
    image = TrainConfig(task="image", data="d", model="compact")
    assert {k: getattr(image, k) for k in SCRATCH} == SCRATCH
    scratch = TrainConfig(task="text", data="d", pretrained=False)
    assert {k: getattr(scratch, k) for k in TEXT_DEFAULTS} == TEXT_DEFAULTS
    (tmp_path / "c.yaml").write_text("task: image\ndata: d\nbatch_size: 8\nmodel_args: {dropout: 0.1}\n")
    cfg = load_config(tmp_path / "c.yaml", {"model": "compact", "lr": 1e-3, "model_args": {"blocks": 2}})
    assert (cfg.batch_size, cfg.lr, cfg.image_size, cfg.model_args) == (8, 1e-3, 64, {"dropout": 0.1, "blocks": 2})
    with pytest.raises(ConfigError, match="freeze_epochs 2 is for the image task"):
        TrainConfig(task="text", data="d", freeze_epochs=2)  # freezing is image-only
    from hardsight.config import TEXT_FROM_READER

    started = TrainConfig(task="text", data="d", weights="general")  # a reader started from a trained one
    assert {k: getattr(started, k) for k in TEXT_FROM_READER} == TEXT_FROM_READER
    saved = TrainConfig(task="text", data="d")
    save_config(saved, tmp_path / "t.yaml")
    assert load_config(tmp_path / "t.yaml") == saved  # a text config stores the neutral image-only values


def test_a_run_folder_from_a_newer_format_is_refused_and_todays_opens(tmp_path):
    import json

    from hardsight.runs.folder import FORMAT_VERSION

    run = RunFolder.create(tmp_path / "r", "text", "crnn")
    save_config(TrainConfig(task="text", data="d"), run.config)
    run.env.write_text(json.dumps({"hardsight": "0.1.0"}))  # written before format_version existed: format 1
    assert RunFolder.open(run.path).format_version() == 1
    run.env.write_text(json.dumps({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(RunError, match="newer hardsight"):
        RunFolder.open(run.path)
