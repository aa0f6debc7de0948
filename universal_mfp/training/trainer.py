"""The training loop: AdamW, warm-up + cosine learning rate, EMA, clipping, validation, best model, resume.

One code path serves a single process and ``torchrun`` data parallelism: every rank evaluates its share
of each global batch, losses are normalised by the global label counts, and gradients are summed, so
the loss curve does not depend on the number of processes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from universal_mfp.data import keys
from universal_mfp.data.batching import batch_to
from universal_mfp.data.dataset import GraphDataset, epoch_batches, rank_slice
from universal_mfp.model.potential import MultiFidelityPotential
from universal_mfp.training.distributed import (
    DistributedContext,
    all_reduce_gradients,
    all_reduce_sum,
    barrier,
)
from universal_mfp.training.ema import ExponentialMovingAverage
from universal_mfp.training.evaluation import error_metrics, evaluate_errors
from universal_mfp.training.fidelity_prior import PRIOR_TERM, FidelityPrior, FidelityPriors
from universal_mfp.training.loss import TERMS, HuberDelta, LossWeights, combine, huber_delta_for, loss_sums
from universal_mfp.training.state_io import latest_state, load_training_state, save_training_state

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
BEST_DIR = "best_model"
STATES_DIR = "states"  # the resumable training states of a run folder

# How the best epoch is chosen (lower is better):
# - "loss": the weighted training loss over the validation set;
# - "energy_mae": the mean over fidelities of the validation energy MAE per atom (a few force or stress
#   outliers then cannot hide energies that still improve);
# - "last": the final epoch (the EMA weights at the end of the cosine schedule), validated but not chosen
#   by a noisy validation set.
SELECTION_METRICS = ("loss", "energy_mae", "last")


class NonFiniteLossError(FloatingPointError, ValueError):
    """Training produced a NaN or infinite loss or gradient: the run stops instead of training on it."""


def selection_score(metric: str, val_loss: float, val_errors: dict[str, dict[str, float]], epoch: int = 0) -> float:
    """The number the best model minimises, from one validation pass after ``epoch``."""
    if metric == "last":
        return float(-epoch)
    if metric == "loss":
        return val_loss
    if metric == "energy_mae":
        maes = [v["energy_mae"] for v in val_errors.values() if "energy_mae" in v]
        if not maes:
            raise ValueError("selection_metric 'energy_mae' needs validation structures with energies")
        return float(np.mean(maes))
    raise ValueError(f"unknown selection metric {metric!r}; choose one of {list(SELECTION_METRICS)}")


@dataclass(frozen=True)
class TrainerSettings:
    """Optimisation settings (all JSON-able)."""

    epochs: int = 50
    batch_size: int = 16
    learning_rate: float = 2e-3
    min_learning_rate_factor: float = 0.02
    warmup_steps: int = 20
    weight_decay: float = 1e-5
    ema_decay: float = 0.99
    grad_clip: float = 10.0
    seed: int = 0
    loss_kind: str = "mse"
    # Huber threshold (loss_kind "huber"): one number, or one per term in its unit,
    # {"energy": eV/atom, "forces": eV/Å, "stress": GPa}
    huber_delta: HuberDelta = 0.01
    weights: LossWeights = field(default_factory=LossWeights)
    checkpoint_every_steps: int = 0
    patience: int | None = None
    eval_batch_size: int = 32
    progress: bool = True
    selection_metric: str = "loss"
    train_element_references: bool = True
    # end the run after this many epochs while the learning-rate schedule still spans ``epochs``: a first
    # cycle cut short, so that a second run (``init_from``) starts from it
    stop_after_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.stop_after_epochs is not None and not 1 <= self.stop_after_epochs <= self.epochs:
            raise ValueError(
                f"stop_after_epochs must be between 1 and epochs ({self.epochs}), got {self.stop_after_epochs}"
            )
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.loss_kind not in ("mse", "huber"):
            raise ValueError(f"loss_kind must be 'mse' or 'huber', got {self.loss_kind!r}")
        for term in TERMS:
            huber_delta_for(self.huber_delta, term)
        if self.selection_metric not in SELECTION_METRICS:
            raise ValueError(
                f"selection_metric must be one of {list(SELECTION_METRICS)}, got {self.selection_metric!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out = asdict(self)
        out["weights"] = {
            **asdict(self.weights),
            "per_fidelity": {k: dict(v) for k, v in self.weights.per_fidelity.items()},
        }
        return out


@dataclass
class TrainResult:
    """Outcome of ``Trainer.fit``."""

    best_epoch: int
    best_score: float
    best_model_dir: Path | None
    history: list[dict[str, Any]]


def learning_rate_at(step: int, total_steps: int, settings: TrainerSettings) -> float:
    """Linear warm-up to ``learning_rate`` then cosine decay to ``min_learning_rate_factor`` of it."""
    base = settings.learning_rate
    if settings.warmup_steps > 0 and step < settings.warmup_steps:
        return base * (step + 1) / settings.warmup_steps
    span = max(total_steps - settings.warmup_steps, 1)
    progress = min(max(step - settings.warmup_steps, 0) / span, 1.0)
    floor = base * settings.min_learning_rate_factor
    return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Trains a ``MultiFidelityPotential`` on graph datasets.

    Args:
        model: the potential (its normalisation, references and scales, must already be set).
        train: training graphs.
        val: validation graphs (selects the best model; may be ``None``).
        settings: optimisation settings.
        output_dir: where states, the metrics log and the best model go.
        context: data-parallel context (single process by default).
        parameters: the parameters to train (default: all); others stay frozen.
        training_summary: JSON-able description of the data and run, stored with the best model.
        prior: a cross-fidelity prior term added to the training loss (``training.fidelity_prior``).
    """

    def __init__(
        self,
        model: MultiFidelityPotential,
        train: GraphDataset,
        val: GraphDataset | None,
        settings: TrainerSettings,
        output_dir: str | Path,
        *,
        context: DistributedContext | None = None,
        parameters: Sequence[torch.nn.Parameter] | None = None,
        training_summary: dict[str, Any] | None = None,
        prior: FidelityPrior | FidelityPriors | None = None,
    ) -> None:
        if len(train) == 0:
            raise ValueError("the training set is empty")
        self.model = model
        self.train_set = train
        self.val_set = val if val is not None and len(val) > 0 else None
        self.settings = settings
        self.output_dir = Path(output_dir)
        self.context = context or DistributedContext()
        self.training_summary = training_summary or {}
        self.prior = prior
        self.terms = (*TERMS, PRIOR_TERM) if prior is not None else TERMS
        trainable = list(parameters) if parameters is not None else [p for p in model.parameters() if p.requires_grad]
        if not settings.train_element_references:  # e.g. fixed to isolated-atom energies
            trainable = [p for p in trainable if p is not model.element_references]
        trainable_ids = {id(p) for p in trainable}
        for param in model.parameters():
            param.requires_grad_(id(param) in trainable_ids)
        self.parameters = trainable
        # reference energies are physical offsets (eV), not weights: no decay towards zero
        no_decay = {id(model.element_references)}
        groups = [
            {"params": [p for p in trainable if id(p) not in no_decay], "weight_decay": settings.weight_decay},
            {"params": [p for p in trainable if id(p) in no_decay], "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=settings.learning_rate)
        self.ema = ExponentialMovingAverage(model, settings.ema_decay)
        self.loss_weights = settings.weights.table(model.fidelities)
        graphs = train.graphs
        self.compute_forces = bool(self.loss_weights[:, 1].max() > 0) and any(
            bool(g[keys.HAS_FORCES][0]) for g in graphs
        )
        self.compute_stress = bool(self.loss_weights[:, 2].max() > 0) and any(
            bool(g[keys.HAS_STRESS][0]) for g in graphs
        )
        self.steps_per_epoch = math.ceil(len(train) / settings.batch_size)
        self.total_steps = self.steps_per_epoch * settings.epochs

    # --- one optimisation step -------------------------------------------------------------------
    def _step(self, global_batch: Any, step: int) -> dict[str, float]:
        device = self.model.device
        local = rank_slice(global_batch, self.context.rank, self.context.world_size)
        self.optimizer.zero_grad(set_to_none=True)
        if len(local) > 0:
            batch = batch_to(self.train_set.collate(local), device)
            out = self.model(
                batch,
                compute_forces=self.compute_forces,
                compute_stress=self.compute_stress,
                create_graph=True,
                return_features=self.prior is not None,
            )
            sums, counts = loss_sums(
                out, batch, self.loss_weights, kind=self.settings.loss_kind, huber_delta=self.settings.huber_delta
            )
            if self.prior is not None:  # the prior's heads read the features of this forward pass
                sums[PRIOR_TERM], counts[PRIOR_TERM] = self.prior.loss_sum(
                    self.model, batch, out[keys.ENERGY], out[keys.NODE_FEATURES]
                )
        else:  # more ranks than structures in this batch: contribute nothing
            sums = {t: torch.zeros((), dtype=torch.float64, requires_grad=True) for t in self.terms}
            counts = {t: torch.zeros((), dtype=torch.float64) for t in self.terms}
        terms = [t for t in self.terms if t in sums]
        global_counts = all_reduce_sum(torch.stack([counts[t].detach() for t in terms]), self.context)
        loss = combine({t: sums[t] for t in terms}, dict(zip(terms, global_counts, strict=True)))
        if not bool(torch.isfinite(loss.detach())):
            parts = {t: float(sums[t].detach()) for t in terms}
            raise NonFiniteLossError(f"the loss became {float(loss.detach())} {self._where(local, step, parts)}")
        loss.backward()
        all_reduce_gradients(self.parameters, self.context)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.grad_clip)
        if not bool(torch.isfinite(grad_norm)):
            raise NonFiniteLossError(f"the gradient norm became {float(grad_norm)} {self._where(local, step, {})}")
        lr = learning_rate_at(step, self.total_steps, self.settings)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.ema.update(self.model)
        reported = all_reduce_sum(torch.stack([sums[t].detach() for t in terms]), self.context)
        parts = {t: float(reported[k] / global_counts[k].clamp(min=1.0)) for k, t in enumerate(terms)}
        return {
            "loss": float(sum(parts.values())),
            **{f"loss_{t}": v for t, v in parts.items()},
            "lr": lr,
            "grad_norm": float(grad_norm),
        }

    def _where(self, local: Any, step: int, parts: dict[str, float]) -> str:
        frames = [self.train_set.frames[int(i)] for i in local]
        ids = [str(f.info.get("frame_id") or f.info.get("material_id") or "?") for f in frames][:8]
        terms = f"; loss terms (sums) {parts}" if parts else ""
        return (
            f"at step {step}{terms}; batch frames {ids}. Training stopped; lower the learning rate or check these "
            "frames' labels (the last saved state is untouched)"
        )

    # --- validation and best model ---------------------------------------------------------------
    def _validate(self) -> tuple[float, dict[str, dict[str, float]]]:
        if self.val_set is None:
            return float("nan"), {}
        self.ema.swap_into(self.model)
        try:
            evaluation = evaluate_errors(
                self.model,
                self.val_set,
                batch_size=self.settings.eval_batch_size,
                context=self.context,
                loss_weights=self.loss_weights,
                loss_kind=self.settings.loss_kind,
                huber_delta=self.settings.huber_delta,
            )
        finally:
            self.ema.swap_into(self.model)
        return float(evaluation.loss or 0.0), evaluation.errors

    def _save_best(self, epoch: int, val_errors: dict[str, dict[str, float]]) -> Path:
        from universal_mfp.hub.checkpoint import save_checkpoint

        summary = {**self.training_summary, "settings": self.settings.to_dict(), "best_epoch": epoch}
        metrics = {fid: {"val": values} for fid, values in error_metrics(val_errors).items()}
        self.ema.swap_into(self.model)
        try:
            return save_checkpoint(
                self.model, self.output_dir / BEST_DIR, training=summary, metrics=metrics, overwrite=True
            )
        finally:
            self.ema.swap_into(self.model)

    # --- logging ----------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if self.context.is_main:
            with (self.output_dir / METRICS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def _truncate_log(self, global_step: int) -> list[dict[str, Any]]:
        path = self.output_dir / METRICS_FILE
        if not path.exists():
            return []
        kept = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [r for r in kept if r["step"] <= global_step]
        if self.context.is_main:
            path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        return kept

    def _save_state(self, global_step: int, counters: dict[str, Any]) -> None:
        if self.context.is_main:
            save_training_state(
                self.output_dir / STATES_DIR,
                global_step=global_step,
                model=self.model,
                ema_shadow=self.ema.shadow,
                optimizer=self.optimizer,
                counters={**counters, "ema_updates": self.ema.num_updates},
            )
        barrier(self.context)

    # --- the loop ---------------------------------------------------------------------------------
    def fit(self, *, resume: bool = True) -> TrainResult:
        """Train for ``settings.epochs`` epochs, resuming from the newest saved state when ``resume``."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        counters: dict[str, Any] = {
            "epoch": 0,
            "step_in_epoch": 0,
            "best_score": None,
            "best_epoch": -1,
            "bad_epochs": 0,
        }
        global_step = 0
        history: list[dict[str, Any]] = []
        state = latest_state(self.output_dir / STATES_DIR) if resume else None
        if state is not None:
            global_step, shadow, counters = load_training_state(state, model=self.model, optimizer=self.optimizer)
            self.ema.shadow = {k: v.to(self.model.device) for k, v in shadow.items()}
            self.ema.num_updates = int(counters.pop("ema_updates"))
            history = self._truncate_log(global_step)
            logger.info("resumed from %s (epoch %d, step %d)", state, counters["epoch"], global_step)
        elif self.context.is_main:
            (self.output_dir / METRICS_FILE).unlink(missing_ok=True)
        barrier(self.context)

        self.model.train()
        stop = False
        for epoch in range(int(counters["epoch"]), self.settings.epochs):
            if self.settings.stop_after_epochs is not None and epoch >= self.settings.stop_after_epochs:
                logger.info("stopping after epoch %d of %d (stop_after_epochs)", epoch - 1, self.settings.epochs)
                break
            batches = epoch_batches(len(self.train_set), self.settings.batch_size, seed=self.settings.seed, epoch=epoch)
            start_step = int(counters["step_in_epoch"]) if epoch == counters["epoch"] else 0
            iterator = range(start_step, len(batches))
            if self.settings.progress and self.context.is_main:
                from tqdm.auto import tqdm

                iterator = tqdm(iterator, desc=f"epoch {epoch}", total=len(batches), initial=start_step, leave=False)
            started = time.perf_counter()
            for k in iterator:
                record = self._step(batches[k], global_step)
                global_step += 1
                entry = {"kind": "train", "epoch": epoch, "step": global_step, **record}
                history.append(entry)
                self._log(entry)
                every = self.settings.checkpoint_every_steps
                if every and global_step % every == 0 and k + 1 < len(batches):
                    self._save_state(global_step, {**counters, "epoch": epoch, "step_in_epoch": k + 1})
            val_loss, val_errors = self._validate()
            score = (
                selection_score(self.settings.selection_metric, val_loss, val_errors, epoch) if self.val_set else None
            )
            entry = {
                "kind": "val",
                "epoch": epoch,
                "step": global_step,
                "val_loss": val_loss,
                "errors": val_errors,
                "selection_metric": self.settings.selection_metric,
                "score": score,
                "seconds": time.perf_counter() - started,
            }
            history.append(entry)
            self._log(entry)
            best = counters["best_score"]
            improved = score is not None and (best is None or score < best)
            if improved:
                counters.update(best_score=score, best_epoch=epoch, bad_epochs=0)
                if self.context.is_main:
                    self._save_best(epoch, val_errors)
            else:
                counters["bad_epochs"] = int(counters["bad_epochs"]) + 1
            if self.settings.patience is not None and counters["bad_epochs"] > self.settings.patience:
                logger.info("early stop after epoch %d (no improvement for %d epochs)", epoch, counters["bad_epochs"])
                stop = True
            counters.update(epoch=epoch + 1, step_in_epoch=0)
            self._save_state(global_step, counters)
            if self.context.is_main:
                logger.info(
                    "epoch %d: val loss %.6g, %s %s %s",
                    epoch,
                    val_loss,
                    self.settings.selection_metric,
                    score,
                    json.dumps(val_errors),
                )
            if stop:
                break
        if self.val_set is None and self.context.is_main:
            self._save_best(self.settings.epochs - 1, {})
        self.ema.swap_into(self.model)  # leave the averaged weights in the model
        best_dir = self.output_dir / BEST_DIR
        return TrainResult(
            best_epoch=int(counters["best_epoch"]),
            best_score=float(counters["best_score"]) if counters["best_score"] is not None else float("nan"),
            best_model_dir=best_dir if best_dir.exists() else None,
            history=history,
        )
