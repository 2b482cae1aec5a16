"""The shipped general reader and starting a text run from a trained reader: `general` opens wherever a run folder
is taken, the installed files are never written, a broken shipped reader means a start from scratch with one line,
and a named start loads its weights with each output row following its character."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from hardsight import TrainConfig
from hardsight.errors import ConfigError
from hardsight.runs import shipped
from hardsight.tasks.text import TextTask, reader_start
from tests.cli_runner import run_cli


def tree(folder: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*")}


def test_general_is_read_from_a_copy_and_the_installed_files_stay_as_they_were(captchas, tmp_path, monkeypatch):
    package = shipped.packaged("general")
    before = tree(package)
    result = json.loads(run_cli("evaluate", "general", captchas, "--json").stdout)
    assert 0.0 <= result["exact_match"] <= 1.0 and result["n"] == 80
    assert tree(package) == before  # evaluate wrote its sample figure beside the copy, not into the package
    copy = shipped.resolve("general")
    assert copy.parent == Path(os.environ["HARDSIGHT_CACHE"]) / "shipped" and (copy / "config.yaml").is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "general").mkdir()
    assert shipped.resolve("general") == Path("general")  # a folder of that name here wins


def test_a_broken_shipped_reader_means_scratch_with_one_line(tmp_path, monkeypatch, captchas, capsys):
    broken = tmp_path / "general"
    (broken / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "labels.json", "env.json"):
        (broken / name).write_bytes((shipped.packaged("general") / name).read_bytes())
    (broken / "checkpoints" / "best.ckpt").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(shipped, "packaged", lambda name: broken)
    monkeypatch.setenv("HARDSIGHT_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(task="text", data=str(captchas), pretrained=True)
    assert reader_start(cfg) is None
    said = capsys.readouterr()
    assert "from scratch: the shipped general reader cannot be read" in " ".join((said.out + said.err).split())
    (broken / "checkpoints" / "best.ckpt").unlink()
    assert reader_start(cfg) is None  # missing weights: the same
    with pytest.raises(Exception, match="--weights general: cannot start from it"):
        reader_start(cfg.replace(weights="general"))  # named by the user: an error, not a quiet scratch run


def test_a_run_starts_from_the_reader_it_names(trained_run, captchas):
    cfg = TrainConfig(task="text", data=str(captchas), weights=str(trained_run), seed=3)
    assert cfg.lr == 1e-3 and cfg.warmup_steps == 100  # the recipe of a start from a trained reader
    data, labels, module, _ = TextTask().assemble(cfg)
    source = torch.load(trained_run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(module.model.features[0][0].weight, source["model.features.0.0.weight"])
    assert labels["input"]["height"] == 32
    scratch = TextTask().assemble(cfg.replace(weights=None, pretrained=False))[2]
    assert not torch.equal(scratch.model.features[0][0].weight, source["model.features.0.0.weight"])


def test_start_settings_that_contradict_are_refused(trained_run, captchas, tmp_path):
    r = run_cli("train", "text", captchas, "--out", tmp_path / "r", "--weights", trained_run, "--from-scratch",
                check=False)
    assert r.returncode == 2 and "contradict" in r.stdout + r.stderr
    with pytest.raises(ConfigError, match="reads 32-px images"):
        TextTask().assemble(TrainConfig(task="text", data=str(captchas), weights=str(trained_run), height=48))
    with pytest.raises(ConfigError, match="is a crnn"):
        TextTask().assemble(TrainConfig(task="text", data=str(captchas), weights=str(trained_run), model="cnn"))


def test_a_text_run_starts_from_the_general_reader_by_default_unless_a_setting_rules_it_out(captchas, tmp_path,
                                                                                          monkeypatch, capsys):
    from hardsight.config import TEXT_DEFAULTS, TEXT_FROM_READER

    default = TrainConfig(task="text", data=str(captchas))
    assert {k: getattr(default, k) for k in TEXT_FROM_READER} == TEXT_FROM_READER and default.weights is None
    for given, said in (({"model": "cnn"}, "--model cnn: the general reader is a crnn"),
                        ({"height": 48}, "--height 48: the general reader reads 32-px images"),
                        ({"pretrained": False}, None)):
        cfg = TrainConfig(task="text", data=str(captchas), **given)
        assert {k: getattr(cfg, k) for k in TEXT_DEFAULTS if k not in given} == \
               {k: v for k, v in TEXT_DEFAULTS.items() if k not in given}
        out = " ".join("".join(capsys.readouterr()).split())
        assert (said is None and "start:" not in out) or f"start: from scratch ({said})" in out
    broken = tmp_path / "general"
    (broken / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "labels.json", "env.json"):
        (broken / name).write_bytes((shipped.packaged("general") / name).read_bytes())
    (broken / "checkpoints" / "best.ckpt").write_bytes(b"half a file")
    monkeypatch.setattr(shipped, "packaged", lambda name: broken)
    cfg = TrainConfig(task="text", data=str(captchas))  # a damaged installation: scratch, and its recipe
    assert not cfg.pretrained and cfg.lr == TEXT_DEFAULTS["lr"] and cfg.warmup_steps == TEXT_DEFAULTS["warmup_steps"]
    assert "weights are missing or damaged" in " ".join("".join(capsys.readouterr()).split())


def test_train_text_says_it_starts_from_the_general_reader(captchas, tmp_path):
    result = run_cli("train", "text", captchas, "--out", tmp_path / "r", "--epochs", "1")
    assert "start: the general reader's weights" in " ".join((result.stdout + result.stderr).split())
    saved = (tmp_path / "r" / "config.yaml").read_text()
    assert "pretrained: true" in saved and "epochs: 1" in saved
