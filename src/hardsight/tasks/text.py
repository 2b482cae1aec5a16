"""The `text` task: a reader of strings over a charset (loss, decoding, validation metrics)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hardsight.config import InputSpec
from hardsight.console import console
from hardsight.data.text.curriculum import AugmentWhenReading
from hardsight.tasks.decoding import TextCodec, TextDecoder
from hardsight.engine.metrics import text_metrics
from hardsight.models import build_model
from hardsight.errors import ConfigError, RunError
from hardsight.models.text_readers import args_from_data, transplant
from hardsight.runs.folder import RunFolder, refusing_pickled_code
from hardsight.tasks.base import Recogniser, val_objective
from hardsight.tasks.spec import TaskSpec


class TextReader(Recogniser):
    """CTC (crnn*) or per-position cross-entropy (cnn) over a model from the registry."""

    accuracy_metric = "val/exact_match"

    def __init__(self, model: str, charset: str, spec: dict, max_length: int, lr: float = 3e-3,
                 weight_decay: float = 1e-4, schedule: str = "onecycle", beam_width: int = 1, optimizer: str = "adamw",
                 model_args: dict | None = None, schedule_settings: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.codec = TextCodec(charset)
        self.spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        self.ctc = model.startswith("crnn")
        self.decoder = TextDecoder(charset, self.ctc, beam_width)
        self.greedy = TextDecoder(charset, self.ctc, 1)  # training accuracy: a beam would slow every step
        self.model = build_model(model, "text", model_args=model_args, num_classes=len(charset), spec=self.spec,
                                 max_length=max_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> log-probabilities (B, T, K+1)."""
        return self.model(x).log_softmax(-1)

    def loss(self, log_probs: torch.Tensor, labels: list[str]) -> torch.Tensor:
        targets = [torch.tensor(self.codec.encode(t), dtype=torch.long) for t in labels]
        if self.ctc:
            b, t, _ = log_probs.shape
            return F.ctc_loss(log_probs.transpose(0, 1), torch.cat(targets), torch.full((b,), t, dtype=torch.long),
                              torch.tensor([len(x) for x in targets]), blank=0, zero_infinity=True)
        length = log_probs.shape[1]
        padded = torch.zeros(len(targets), length, dtype=torch.long)
        for i, tgt in enumerate(targets):
            padded[i, : min(length, len(tgt))] = tgt[:length]
        return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), padded.view(-1).to(log_probs.device))

    def configure_callbacks(self):
        return [AugmentWhenReading(self.accuracy_metric.replace("val/", "train/"))]

    def decode(self, log_probs: torch.Tensor) -> list[tuple[str, float]]:
        return self.decoder(log_probs)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, labels = batch
        log_probs = self(x)
        loss = self.loss(log_probs, labels)
        with torch.no_grad():
            read = self.greedy(log_probs.detach())
        self.log_train(loss, len(labels), sum(t == ref for (t, _), ref in zip(read, labels)) / len(labels))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, labels = batch
        log_probs = self(x)
        read = [(text, ref) for (text, _), ref in zip(self.decode(log_probs), labels)]  # (read, true) per image
        self.keep_val(read, self.loss(log_probs, labels), len(labels))

    def score_epoch(self, outputs: list[tuple[str, str]], loss_sum: float) -> dict[str, float]:
        m = text_metrics([p for p, _ in outputs], [r for _, r in outputs])
        return {"val/exact_match": m.exact_match, "val/char_accuracy": m.char_accuracy, "val/cer": m.cer,
                "val/objective": val_objective(m.cer, loss_sum / len(outputs))}


@dataclass(frozen=True)
class ReaderStart:
    """A trained reader a new text run starts from (`weights`: a text run folder, or the shipped `general`)."""

    name: str
    charset: str
    height: int
    model: str
    model_args: dict
    state: dict  # the checkpoint's weights, read once with its settings
    named: bool  # by the user (`weights`): a reader that does not fit is an error, not a start from scratch


def reader_start(cfg) -> ReaderStart | None:
    """The reader `cfg` starts from, or None from scratch. The shipped one that cannot be opened (missing, corrupt)
    is a one-line warning and a start from scratch; a reader the user named is an error."""
    if not cfg.pretrained:
        return None
    name = cfg.weights or "general"
    try:
        run = RunFolder.open(name)
        labels, source = run.load_labels(), run.load_config()
        if source.task != "text":
            raise ConfigError(f"--weights {name}: a {source.task} run, not a text reader")
        ckpt = run.checkpoint("best")
        with refusing_pickled_code(ckpt):
            loaded = torch.load(ckpt, map_location="cpu", weights_only=True)
        saved = loaded["hyper_parameters"]
    except (RunError, OSError, RuntimeError, KeyError, EOFError) as e:
        if cfg.weights:
            raise RunError(f"--weights {name}: cannot start from it ({e})") from None
        console.print(f"[yellow]from scratch: the shipped general reader cannot be read ({e})[/yellow]")
        return None
    if cfg.model != saved["model"]:
        raise ConfigError(f"--model {cfg.model}: the {name} reader is a {saved['model']}; start a {cfg.model} "
                          "--from-scratch, or leave --model out")
    return ReaderStart(name, labels["charset"], labels["input"]["height"], saved["model"],
                       {**(saved.get("model_args") or {}), **cfg.model_args}, loaded["state_dict"], bool(cfg.weights))


def start_from(module: TextReader, start: ReaderStart) -> bool:
    """Load `start`'s weights into a new run's reader; a reader of another shape is a warning and a start from
    scratch (True when the weights were loaded)."""
    state = {k.removeprefix("model."): v for k, v in start.state.items() if k.startswith("model.")}
    try:
        fresh = transplant(module.model, state, start.charset, module.codec.charset)
    except ValueError as e:
        if start.named:
            raise ConfigError(f"--weights {start.name}: its reader does not fit this run ({e})") from None
        console.print(f"[yellow]from scratch: the {start.name} reader does not fit this run ({e})[/yellow]")
        return False
    console.print(f"start: the {start.name} reader's weights"
                  + (f"; fresh output rows for the {len(fresh)} characters it never read ({fresh!r})" if fresh else "")
                  + " (--from-scratch trains without them)")
    return True


class TextTask(TaskSpec):
    """Read the text in an image: CTC or per-position readers, scored by exact match and CER."""

    name = "text"
    module = TextReader
    objective = "character error rate"
    finisher = "hardsight.engine.evaluator:finish_text_run"
    evaluator = "hardsight.engine.evaluator:evaluate_text"
    exporter = "hardsight.engine.exporter:export_text_run"
    predictor_class = "hardsight.engine.predictor:TextPredictor"

    def prepare(self, cfg, saved_split=None, saved_labels=None, start: ReaderStart | None = None):
        """The run's data (`hardsight assess` reads its pool so), its input height fixed by the reader it starts
        from (`start`, or the one `cfg` names)."""
        from hardsight.data.text.prepare import prepare_text_data

        start = start or reader_start(cfg)
        if start and cfg.height not in (None, start.height):
            raise ConfigError(f"--height {cfg.height}: the {start.name} reader reads {start.height}-px images; "
                              "leave --height out, or train --from-scratch")
        reads = start and (start.height, f"what the {start.name} reader reads")
        return prepare_text_data(cfg, saved_split, saved_labels, start_height=reads)

    def assemble(self, cfg, saved_split=None, saved_labels=None, preprocess=None, prepared=None):
        from hardsight.data.text.prepare import print_text_summary
        from hardsight.data.text.datamodule import TextDataModule

        start = reader_start(cfg)
        data = prepared or self.prepare(cfg, saved_split, saved_labels, start)
        print_text_summary(data)
        labels = data.labels_json()
        model_args = start.model_args if start else args_from_data(cfg.model, data.spec, data.max_length,
                                                                    cfg.model_args)
        module = TextReader(cfg.model, data.charset, labels["input"], data.max_length, lr=cfg.lr,
                            weight_decay=cfg.weight_decay, schedule=cfg.schedule, beam_width=cfg.beam_width,
                            optimizer=cfg.optimizer, model_args=model_args,
                            schedule_settings=cfg.schedule_settings())
        if start and not saved_labels:  # a resumed run's checkpoint holds its weights
            start_from(module, start)
        dm = TextDataModule(data.samples["train"], data.samples["val"], data.samples["test"], data.spec,
                            batch_size=cfg.batch_size, augment=cfg.augment, workers=cfg.workers, seed=cfg.seed)
        return data, labels, module, dm
