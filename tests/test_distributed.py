"""Several processes (Lightning's DDP on CPU, gloo): one run folder, metrics over the whole validation split, resume;
and the experiment logs (TensorBoard with the run's hyperparameters)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from hardsight.config import TrainConfig
from hardsight.errors import ConfigError, RunError
from tests.cli_runner import run_cli

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


@pytest.fixture(scope="module")
def tiles(tmp_path_factory) -> Path:
    """3 colour classes x 14 small tiles."""
    root = tmp_path_factory.mktemp("tiles")
    for k, (name, colour) in enumerate(COLOURS.items()):
        for i in range(14):
            a = np.random.default_rng(100 * k + i).normal(0, 25, (24, 24, 3)) + np.array(colour)
            (root / name).mkdir(exist_ok=True)
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(root / name / f"{name}{i}.png")
    return root


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "metrics.csv").open()))


def _rescore_val(run: Path) -> dict[str, float]:
    """The validation metrics of last.ckpt computed in this one process, over the whole validation split."""
    from hardsight.data.image.prepare import ImageItemDataset, prepare_image_data
    from hardsight.runs.folder import RunFolder
    from hardsight.tasks import ImageClassifier

    folder = RunFolder.open(run)
    cfg = folder.load_config()
    data = prepare_image_data(cfg, folder.load_split(), folder.load_labels())
    ds = ImageItemDataset(data.items["val"], data.classes, cfg.image_size)
    assert len(ds) % 2 == 1  # shards of unequal size: padding them would have scored an image twice
    module = ImageClassifier.load_from_checkpoint(folder.last, map_location="cpu").eval()
    x, y = (torch.stack(t) for t in zip(*(ds[i] for i in range(len(ds)))))
    with torch.no_grad():
        logits = module(x)
        module._val = [(module.probabilities(logits).numpy(), y.numpy())]
        module._val_loss = [float(module.loss(logits, y)) * len(x)]
    return module.validation_metrics()


def test_two_process_ddp_training_writes_one_run_folder_and_resumes(tiles, tmp_path):
    runs = tmp_path / "runs"
    ddp = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]
    run_cli("train", "image", tiles, "--model", "compact", "--out", runs / "ddp", "--epochs", "2", "--batch-size", "8", "--image-size", "32",
            "--split", "0.7,0.15,0.15", *ddp, subprocess_=True)
    run = runs / "ddp"
    assert [p.name for p in runs.iterdir()] == ["ddp"]
    for name in ("config.yaml", "labels.json", "split.json", "env.json", "metrics.csv", "report.md",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert json.loads((run / "env.json").read_text())["distributed"]["world_size"] == 2
    rows = _rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for r in rows:
        for k in ("val/accuracy", "val/balanced_accuracy", "val/macro_f1"):
            assert 0 <= float(r[k]) <= 1
        assert math.isfinite(float(r["train/loss"])) and float(r["val/loss"]) > 0
    # ranks scored 4 + 3 validation images; gathered, they give what one process gives on all 7
    rescored = _rescore_val(run)
    for k in ("val/accuracy", "val/balanced_accuracy", "val/macro_f1"):
        assert rescored[k] == pytest.approx(float(rows[-1][k]), abs=1e-5)

    run_cli("train", "image", tiles, "--out", run, "--resume", "--epochs", "3", *ddp, subprocess_=True)
    assert [p.name for p in runs.iterdir()] == ["ddp"]
    assert [r["epoch"] for r in _rows(run)] == ["1", "2", "3"]
    assert "3 epochs" in (run / "report.md").read_text()


def _gather_worker(rank: int, init: str, out: str) -> None:
    """One of two gloo ranks: score its shard of the predictions; rank 0 saves what the gathered metrics were."""
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    text, image = _modules()
    pairs, batches = _predictions()
    text._val, text._val_loss = pairs[rank::2], [0.5 * len(pairs[rank::2])]
    image._val, image._val_loss = batches[rank::2], [0.7 * sum(len(p) for p, _ in batches[rank::2])]
    result = {"text": text.validation_metrics(), "image": image.validation_metrics()}
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


def _modules():
    from hardsight.tasks import ImageClassifier, TextReader

    text = TextReader("crnn", "abcd", {"height": 32, "width": 64, "channels": 1}, max_length=4)
    return text, ImageClassifier("compact", ["a", "b", "c"], 32)


def _predictions():
    """9 decoded strings with their references; 5 batches of class probabilities with one-hot truth."""
    refs = ["abcd", "dcba", "aabb", "cd", "abc", "bbbb", "da", "cab", "dd"]
    preds = ["abcd", "dcb", "aabb", "cdd", "abd", "bbbb", "a", "cab", "db"]
    rng = np.random.default_rng(0)
    batches = []
    for n in (3, 2, 4, 1, 3):
        probs = rng.dirichlet(np.ones(3), n).astype(np.float32)
        batches.append((probs, np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]))
    return list(zip(preds, refs)), batches


def test_gathered_validation_metrics_equal_the_single_process_ones(tmp_path):
    out = tmp_path / "gathered.json"
    torch.multiprocessing.spawn(_gather_worker, args=(f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2)
    gathered = json.loads(out.read_text())
    text, image = _modules()
    pairs, batches = _predictions()
    text._val, text._val_loss = pairs, [0.5 * len(pairs)]
    image._val, image._val_loss = batches, [0.7 * sum(len(p) for p, _ in batches)]
    assert gathered["text"] == pytest.approx(text.validation_metrics(), rel=1e-9)
    assert gathered["image"] == pytest.approx(image.validation_metrics(), rel=1e-6)


def test_balanced_sampler_is_dealt_out_across_ranks_without_overlap(tiles):
    """Lightning wraps the seeded WeightedRandomSampler per rank: together the ranks draw what one process draws."""
    from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
    from lightning.pytorch.utilities.data import _is_dataloader_shuffled

    from hardsight.data.image.prepare import ImageDataModule, prepare_image_data

    cfg = TrainConfig(task="image", model="compact", data=str(tiles), sampler="balanced", image_size=16, batch_size=4)
    data = prepare_image_data(cfg)
    single = ImageDataModule(data, cfg).train_dataloader().sampler
    ranks = []
    for rank in (0, 1):
        loader = ImageDataModule(data, cfg).train_dataloader()
        ranks.append(_get_distributed_sampler(loader, _is_dataloader_shuffled(loader), 0, num_replicas=2, rank=rank))
    for _ in range(2):  # the draws differ between epochs, alike on every rank
        draw = list(single)
        draw += draw[: len(draw) % 2]  # DistributedSampler pads to equal shares
        assert [list(r) for r in ranks] == [draw[0::2], draw[1::2]]


def test_tensorboard_logs_metrics_and_hyperparameters(captchas, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from hardsight import train

    result = train(TrainConfig(task="text", data=str(captchas), out=str(tmp_path / "tb"), epochs=1, seed=3, lr=2e-3,
                               logger="tensorboard"), progress=False)
    tb = result.run.path / "tensorboard"
    assert list(tb.glob("events.out.tfevents.*")) and (result.run.path / "metrics.csv").is_file()
    events = EventAccumulator(str(tb))
    events.Reload()
    assert {"val/cer", "train/loss", "hp/val_objective", "hp/test_cer"} <= set(events.Tags()["scalars"])
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(2e-3)
    assert start.hparams["seed"].number_value == 3 and start.hparams["logger"].string_value == "tensorboard"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert "hp/val_objective" in {m.name.tag for m in experiment.metric_infos}


def test_missing_tensorboard_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util

    from hardsight.engine.experiment_log import make_logger
    from hardsight.runs.folder import RunFolder

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        make_logger(TrainConfig(task="text", data="d", logger="tensorboard"), RunFolder(tmp_path))


@pytest.mark.parametrize("setting, match", [
    ({"devices": 0}, "devices must be a whole number, at least 1"),
    ({"num_nodes": 0}, "num_nodes"),
    ({"accelerator": "tpu"}, r"accelerator must be one of \['auto', 'cpu', 'gpu'\]"),
    ({"logger": "wandb"}, r"logger must be one of \['csv', 'tensorboard'\]"),
    ({"strategy": "dpp"}, "unknown strategy 'dpp'; close: .*'ddp'"),
    ({"lr_find": True, "devices": 2}, "hardsight lr-find"),
])
def test_hardware_settings_are_checked(setting, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(task="image", data="d", **setting)


def test_ranks_started_by_a_launcher_need_out():
    from hardsight.engine.distributed import check_launch

    torchrun = SimpleNamespace(world_size=2, num_nodes=1, strategy=SimpleNamespace(
        cluster_environment=SimpleNamespace(creates_processes_externally=True)))
    with pytest.raises(ConfigError, match="need --out"):
        check_launch(torchrun, out_given=False)
    check_launch(torchrun, out_given=True)


def test_other_ranks_wait_for_rank_0_then_check_the_split(tmp_path, monkeypatch):
    from hardsight.engine.distributed import join_run_folder, launch_id, mark_run_folder
    from hardsight.runs.folder import RunFolder

    monkeypatch.delenv("HARDSIGHT_RUN_FOLDER", raising=False)
    rank1 = SimpleNamespace(global_rank=1)
    run = RunFolder(tmp_path / "run")
    with pytest.raises(RunError, match="rank 0 did not set up"):
        join_run_folder(rank1, run, {}, wait=True, timeout=0.2)
    run = RunFolder.create(run.path, "image", "compact")
    split = {"seed": 0, "train": [["a.png"]], "val": [["b.png"]], "test": []}
    run.write_start(TrainConfig(task="image", data="d"), {}, split)
    rank0 = SimpleNamespace(world_size=2, num_nodes=1, strategy=SimpleNamespace())
    mark_run_folder(rank0, run)
    assert json.loads(run.env.read_text())["distributed"]["launch"] == launch_id()
    join_run_folder(rank1, run, split, wait=True, timeout=5)
    with pytest.raises(RunError, match="split the data differently"):
        join_run_folder(rank1, run, {**split, "val": [["c.png"]]}, wait=True, timeout=5)
