"""Training on several processes, GPUs or nodes (Lightning's DDP): one run folder written by rank 0, found by the
other ranks, and validation outputs gathered from every rank. The communication is Lightning's and torch's.

How ranks agree on the run folder:
- `hardsight train --devices N --strategy ddp` on one machine: Lightning re-executes the same command line in N - 1
  child processes; they inherit RUN_ENV, set by rank 0 (which made the folder) just before it starts them.
- torchrun, SLURM or several nodes start every rank at once: all use `--out` as given (no auto-numbering); rank 0
  creates it and the others wait for its env.json to name their launch.
Every rank computes the split from the same seed; ranks other than 0 check theirs against rank 0's split.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import Dataset

from hardsight.errors import ConfigError, DataError, RunError
from hardsight.runs.folder import RunFolder, write_json

RUN_ENV = "HARDSIGHT_RUN_FOLDER"
WAIT_S = 600.0  # how long other ranks wait for rank 0 to write the run folder (it reads the data first)
_LAUNCH_KEYS = ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID", "MASTER_ADDR", "MASTER_PORT")


def is_relaunched_rank() -> bool:
    """A process Lightning's launcher started from rank 0's command line (it knows the folder from RUN_ENV)."""
    return bool(os.environ.get(RUN_ENV)) and int(os.environ.get("LOCAL_RANK", "0")) > 0


def quiet_other_ranks() -> None:
    """Only rank 0 talks: the data summary, the bar and the results would otherwise print once per process."""
    from hardsight.console import console

    if rank_zero_only.rank != 0:
        console.quiet = True


def threads_per_process(devices: int) -> int:
    """CPU threads for each of the `devices` processes of this node, so they do not fight over the cores."""
    return max(1, (os.cpu_count() or 1) // devices)


def planned_run_path(out: str | None, task: str, model: str) -> Path:
    """The run folder of this launch, the same on every rank; rank 0 creates it once the Trainer knows the ranks."""
    if is_relaunched_rank():
        return Path(os.environ[RUN_ENV])
    return RunFolder.planned(out, task, model)


def check_launch(trainer: L.Trainer, out_given: bool) -> None:
    """Ranks started apart (torchrun, SLURM, other nodes) cannot agree on an auto-numbered folder: they need --out."""
    if trainer.world_size == 1 or out_given or is_relaunched_rank():
        return
    env = getattr(trainer.strategy, "cluster_environment", None)
    if trainer.num_nodes > 1 or (env is not None and env.creates_processes_externally):
        raise ConfigError(f"{trainer.world_size} processes started by {type(env).__name__ if env else 'a launcher'} "
                          "need --out naming the run folder (the same on every rank, on a filesystem they share)")


def launch_id() -> str:
    """What every rank of one launch shares in its environment (torchrun's run id, SLURM's job, the master)."""
    return "|".join(f"{k}={os.environ.get(k, '')}" for k in _LAUNCH_KEYS)


def mark_run_folder(trainer: L.Trainer, run: RunFolder) -> None:
    """Rank 0: note the launch in env.json; ranks started apart wait for it (a stale folder has another launch)."""
    if trainer.world_size == 1:
        return
    env = json.loads(run.env.read_text()) if run.env.is_file() else {}
    env["distributed"] = {"world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
                          "strategy": type(trainer.strategy).__name__, "launch": launch_id()}
    write_json(run.env, env)  # atomic: a waiting rank never reads half a file


def join_run_folder(trainer: L.Trainer, run: RunFolder, split: dict[str, Any], wait: bool,
                    timeout: float = WAIT_S) -> None:
    """Ranks other than 0: wait (when started apart from rank 0) for the folder, then check the split matches."""
    if wait and not is_relaunched_rank():
        deadline = time.monotonic() + timeout
        while _launch_of(run) != launch_id():
            if time.monotonic() > deadline:
                raise RunError(f"rank {trainer.global_rank}: rank 0 did not set up {run.path} within {timeout:.0f} s; "
                               "see rank 0's output, and give every rank the same --out on a filesystem they share")
            time.sleep(0.5)
    saved = run.load_split()
    if any(saved.get(part) != split.get(part) for part in ("train", "val", "test")):
        raise RunError(f"rank {trainer.global_rank} split the data differently from rank 0 ({run.split}); every "
                       "rank needs the same data, --seed and settings")


def _launch_of(run: RunFolder) -> str | None:
    try:
        return json.loads(run.env.read_text()).get("distributed", {}).get("launch")
    except (OSError, json.JSONDecodeError):
        return None


@contextlib.contextmanager
def sharing_run_folder(run: RunFolder) -> Iterator[None]:
    """While fitting, processes Lightning starts from this command line learn the run folder from RUN_ENV."""
    before = os.environ.get(RUN_ENV)
    os.environ[RUN_ENV] = str(run.path.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_ENV, None)
        else:
            os.environ[RUN_ENV] = before


def gather_objects(obj: Any) -> list[Any]:
    """`obj` from every rank, in rank order; `[obj]` in a single process. Shards may differ in size."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [obj]
    world = torch.distributed.get_world_size()
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    torch.distributed.all_gather_object(out, obj)
    return out


def gather_epoch(outputs: list, loss_sums: list[float]) -> tuple[list, float]:
    """A validation epoch's outputs from every rank (rank order) and their summed loss: the inputs of metrics that
    must be computed over the whole split (CER, macro-F1), not averaged per rank."""
    shards = gather_objects((outputs, sum(loss_sums)))
    return [x for part, _ in shards for x in part], sum(s for _, s in shards)


def eval_sampler(dm: L.LightningDataModule, ds: Dataset) -> torch.utils.data.Sampler | None:
    """Under DDP, each rank validates its own items, none twice (Lightning's default pads the shards with repeats);
    None in a single process, which keeps the loader exactly as it was."""
    trainer = dm.trainer
    if trainer is None or trainer.world_size == 1:
        return None
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    if len(ds) < trainer.world_size:
        raise DataError(f"{len(ds)} validation items cannot be shared by {trainer.world_size} processes; use fewer "
                        "--devices or a larger validation split")
    return UnrepeatedDistributedSampler(ds, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False)


def world_size_of(dm: L.LightningDataModule) -> int:
    """Processes sharing the data of `dm` (1 before a Trainer holds it)."""
    return dm.trainer.world_size if dm.trainer is not None else 1
