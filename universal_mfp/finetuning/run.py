"""Fine-tune a trained checkpoint at an existing or a new fidelity, with replay; save it as a checkpoint."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from universal_mfp.data.coverage import COVERAGE_KEY, element_coverage, merge_coverage
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.frame import Frame
from universal_mfp.fidelity import validate_fidelity_name
from universal_mfp.files import is_nonempty_dir
from universal_mfp.finetuning.freezing import TRAIN_MODES, describe_trainable, trainable_parameters
from universal_mfp.finetuning.slots import add_fidelity, closest_fidelity, fit_reference_shift
from universal_mfp.model.potential import MultiFidelityPotential
from universal_mfp.training.evaluation import error_metrics, evaluate_errors
from universal_mfp.training.run import label_counts
from universal_mfp.training.trainer import Trainer, TrainerSettings

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS = TrainerSettings(epochs=50, batch_size=8, learning_rate=5e-3, warmup_steps=10, progress=False)


@dataclass
class FinetuneResult:
    """The fine-tuned model, its checkpoint folder, metrics ``{fidelity: {split: ...}}`` and training summary."""

    model: MultiFidelityPotential
    checkpoint_dir: Path
    metrics: dict[str, dict[str, dict[str, float]]]
    summary: dict[str, Any]
    history: list[dict[str, Any]]


def sample_replay(
    frames: Sequence[Frame], *, fraction: float | None = None, count: int | None = None, seed: int = 0
) -> list[Frame]:
    """A reproducible random sample of ``frames``: ``count`` frames, or ``fraction`` of them (all if neither).

    Raises:
        ValueError: if both or an invalid value are given.
    """
    if fraction is not None and count is not None:
        raise ValueError("give a replay fraction or a replay count, not both")
    if fraction is not None and not 0.0 <= fraction <= 1.0:
        raise ValueError(f"replay fraction must be in [0, 1], got {fraction}")
    if count is not None and count < 0:
        raise ValueError(f"replay count must be non-negative, got {count}")
    size = len(frames) if fraction is None and count is None else count
    if fraction is not None:
        size = round(fraction * len(frames))
    order = np.random.default_rng(seed).permutation(len(frames))[: min(int(size), len(frames))]
    return [frames[i] for i in sorted(order)]


def _load_base(
    base: str | Path | MultiFidelityPotential,
) -> tuple[MultiFidelityPotential, dict[str, Any], dict[str, Any] | None]:
    """A trainable copy of the base model in its saved dtype, where it came from, and its coverage record.

    The coverage record (``universal_mfp.data.coverage``) is ``None`` when the base has none.
    """
    if isinstance(base, MultiFidelityPotential):
        model = MultiFidelityPotential(base.config).to(dtype=base.dtype)
        model.load_state_dict(base.state_dict())
        return model, {"name": "in-memory model", "fidelities": list(base.fidelities)}, None
    from universal_mfp.hub.checkpoint import load_checkpoint
    from universal_mfp.models import load_model

    loaded = load_model(base)
    checkpoint = load_checkpoint(loaded.path)  # saved dtype, trainable
    description = {
        "name": str(base),
        "source": loaded.metadata.get("source", {}),
        "code_version": checkpoint.metadata.get("code_version"),
        "fidelities": list(checkpoint.config.fidelities),
    }
    coverage = (checkpoint.metadata.get("training") or {}).get(COVERAGE_KEY)
    return checkpoint.model.train(), description, coverage


def _check_elements(frames: Sequence[Frame], model: MultiFidelityPotential, what: str) -> None:
    known = set(model.config.elements)
    for k, frame in enumerate(frames):
        if not set(frame.numbers.tolist()) <= known:
            raise ValueError(
                f"{what} frame {frame.info.get('frame_id', k)} has elements the model does not know; "
                f"it knows {model.config.element_symbols}"
            )


def finetune(
    base: str | Path | MultiFidelityPotential,
    frames: Sequence[Frame],
    fidelity: str,
    output_dir: str | Path,
    *,
    train: str = "readout",
    init_from: str | None = None,
    replay: Sequence[Frame] = (),
    replay_fraction: float | None = None,
    replay_count: int | None = None,
    val_frames: Sequence[Frame] = (),
    test_frames: Sequence[Frame] = (),
    settings: TrainerSettings = DEFAULT_SETTINGS,
    work_dir: str | Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune ``base`` on ``frames`` at ``fidelity`` (added as a new fidelity if the model lacks it).

    Args:
        base: a model, or a checkpoint folder / registered name / Hub id for ``load_model``.
        frames: training frames of the fidelity (relabelled to ``fidelity``); energies only are enough.
        fidelity: the fidelity to fine-tune or to add.
        output_dir: the checkpoint folder to write.
        train: ``readout``, ``all-but-embedding`` or ``all`` (see ``universal_mfp.finetuning.freezing``).
        init_from: for a new fidelity, the existing fidelity to start from; default: the one that fits
            ``frames`` best after refitting element references (``closest_fidelity``).
        replay: frames of the original training data (their own fidelities); frames with elements the model
            lacks are dropped, then ``replay_fraction`` or ``replay_count`` of the rest are sampled
            (``sample_replay``, seeded by ``settings.seed``; all of them if neither is given) and mixed in.
        replay_fraction: share of the replay frames to mix in.
        replay_count: number of replay frames to mix in.
        val_frames: validation frames at ``fidelity`` (selects nothing; reported in the metrics).
        test_frames: held-out frames at ``fidelity``, reported in the metrics.
        settings: optimisation settings.
        work_dir: where the trainer writes its states and log (default: a temporary folder).
        name: model name for the card (default: the folder name).
        overwrite: replace an existing non-empty ``output_dir``.

    Raises:
        ValueError: on an unknown mode, empty data, unknown elements or fidelities.
        FileExistsError: if ``output_dir`` is not empty and ``overwrite`` is false.
    """
    fidelity = validate_fidelity_name(fidelity)
    if train not in TRAIN_MODES:
        raise ValueError(f"unknown training mode {train!r}; use one of {list(TRAIN_MODES)}")
    if is_nonempty_dir(Path(output_dir)) and not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty; pass overwrite=True to replace it")
    frames, val_frames, test_frames = (
        [f.replace(fidelity=fidelity) for f in s] for s in (frames, val_frames, test_frames)
    )
    if not frames:
        raise ValueError("no frames to fine-tune on")
    model, base_description, base_coverage = _load_base(base)
    for what, subset in (("training", frames), ("validation", val_frames), ("test", test_frames)):
        _check_elements(subset, model, what)
    known = set(model.config.elements)
    usable = [f for f in replay if set(f.numbers.tolist()) <= known]
    if len(usable) < len(replay):
        logger.info(
            "replay: dropped %d of %d frames with elements the model lacks", len(replay) - len(usable), len(replay)
        )
    replay = sample_replay(usable, fraction=replay_fraction, count=replay_count, seed=settings.seed)

    new = fidelity not in model.fidelities
    slot: dict[str, Any] = {"fidelity": fidelity, "new": new}
    if new:
        rule = "given" if init_from is not None else "best least-squares fit after refitting element references"
        init_from = init_from if init_from is not None else closest_fidelity(model, frames)
        shift, rms = fit_reference_shift(model, frames, init_from)
        model = add_fidelity(model, fidelity, init_from=init_from, reference_shift=shift)
        slot.update(init_from=init_from, init_rule=rule, init_rms_meV_per_atom=round(1000 * rms, 3))
        logger.info(
            "added fidelity %s, initialised from %s (%.1f meV/atom after refit)", fidelity, init_from, 1e3 * rms
        )
    elif init_from is not None:
        raise ValueError(f"init_from only applies to a new fidelity; {fidelity!r} already exists")
    replay_fidelities = {str(f.fidelity) for f in replay}
    changing = {fidelity} if train == "readout" else {fidelity} | replay_fidelities
    if replay and train == "readout":
        logger.warning("readout mode freezes every other fidelity: the replay frames only enter the metrics")

    train_frames = [*frames, *replay]
    train_set = GraphDataset(train_frames, model.config.cutoff, model.fidelities)
    val_set = GraphDataset(val_frames, model.config.cutoff, model.fidelities) if val_frames else None
    summary: dict[str, Any] = {
        "description": f"Fine-tuned from {base_description['name']} at fidelity {fidelity}"
        + (f" (new, initialised from {init_from})." if new else "."),
        "base_model": base_description,
        "finetune": slot,
        "trained": describe_trainable(model, train, changing),
        "data": {"train": label_counts(frames), "val": label_counts(val_frames), "test": label_counts(test_frames)},
        "replay": label_counts(replay),
    }
    if base_coverage is not None:  # what the base saw, plus the elements of the fine-tuning frames
        summary[COVERAGE_KEY] = merge_coverage(base_coverage, element_coverage([*frames, *replay]))
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="umfp-finetune-"))
    with trainable_parameters(model, train, changing) as parameters:
        trainer = Trainer(model, train_set, val_set, settings, work, parameters=parameters, training_summary=summary)
        history = trainer.fit(resume=False).history
    final = MultiFidelityPotential(model.config).to(dtype=model.dtype)  # plain parameters, canonical order
    final.load_state_dict(model.state_dict())
    final.eval()

    metrics: dict[str, dict[str, dict[str, float]]] = {}
    splits = {"train": frames, "val": val_frames, "test": test_frames, "replay": replay}
    for split, subset in splits.items():
        if subset:
            dataset = GraphDataset(subset, final.config.cutoff, final.fidelities)
            errors = evaluate_errors(final, dataset, batch_size=settings.eval_batch_size).errors
            for fid, values in error_metrics(errors).items():
                metrics.setdefault(fid, {})[split] = values
    from universal_mfp.hub.checkpoint import save_checkpoint

    training = {**summary, "settings": settings.to_dict()}
    directory = save_checkpoint(final, output_dir, training=training, metrics=metrics, name=name, overwrite=overwrite)
    return FinetuneResult(model=final, checkpoint_dir=directory, metrics=metrics, summary=training, history=history)
