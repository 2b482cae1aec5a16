"""Text augmentation held off until the reader reads, then ramped up: what the training batches get, and when."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from hardsight.config import InputSpec
from hardsight.data.text.curriculum import AugmentWhenReading
from hardsight.data.text.datamodule import TextDataModule, TextSample


def _module(n: int = 8) -> TextDataModule:
    grey = torch.full((1, 32, 96), 128, dtype=torch.uint8)
    samples = [TextSample(path=None, label="ab", image=grey.clone()) for _ in range(n)]
    return TextDataModule(samples, samples, samples, InputSpec(32, 96), batch_size=4, augment=1.0, seed=0)


def _changed(dm: TextDataModule) -> bool:
    """Whether a training batch differs from the plain images (augmentation noise and contrast move a grey image)."""
    x, _ = next(iter(dm.train_dataloader()))
    return not torch.allclose(x, torch.full_like(x, 128 / 255.0))


def _trainer(dm, step: int, read: float | None) -> SimpleNamespace:
    metrics = {} if read is None else {"train/exact_match": torch.tensor(read)}
    return SimpleNamespace(datamodule=dm, global_step=step, callback_metrics=metrics, is_global_zero=True)


def test_training_images_stay_plain_until_an_epoch_reads_then_the_augmentation_ramps_up():
    dm, ramp = _module(), AugmentWhenReading(start=0.1, ramp_steps=100)
    ramp.on_train_start(_trainer(dm, 0, None), None)
    assert not any(_changed(dm) for _ in range(3))  # on the plateau: plain images
    ramp.on_train_epoch_end(_trainer(dm, 46, 0.05), None)  # 5% read: not yet
    ramp.on_train_batch_end(_trainer(dm, 47, 0.05), None, None, None, 0)
    assert ramp.started_at is None and float(dm.augment_share) == 0.0
    ramp.on_train_epoch_end(_trainer(dm, 92, 0.2), None)  # an epoch reads 20%: the ramp starts here
    ramp.on_train_batch_end(_trainer(dm, 142, 0.2), None, None, None, 0)
    assert float(dm.augment_share) == 0.5  # half-way up the ramp
    ramp.on_train_batch_end(_trainer(dm, 192, 0.2), None, None, None, 0)
    assert float(dm.augment_share) == 1.0 and _changed(dm)
    val_x, _ = next(iter(dm.val_dataloader()))
    assert torch.allclose(val_x, torch.full_like(val_x, 128 / 255.0))  # validation is never augmented


def test_the_ramp_continues_where_a_resumed_run_left_it():
    ramp = AugmentWhenReading(ramp_steps=100)
    ramp.on_train_epoch_end(_trainer(_module(), 92, 0.5), None)
    resumed = AugmentWhenReading(ramp_steps=100)
    resumed.load_state_dict(ramp.state_dict())
    dm = _module()
    resumed.on_train_start(_trainer(dm, 300, None), None)
    assert resumed.started_at == 92 and float(dm.augment_share) == 1.0


def test_workers_see_the_share_change():
    dm = _module()
    dm.workers = 1
    loader = dm.train_dataloader()  # persistent worker, started before the share changes
    dm.set_augment_share(0.0)
    x, _ = next(iter(loader))
    assert torch.allclose(x, torch.full_like(x, 128 / 255.0))
    dm.set_augment_share(1.0)
    assert any(not torch.allclose(x, torch.full_like(x, 128 / 255.0)) for x, _ in loader)
