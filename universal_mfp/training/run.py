"""A whole training run from a ``RunConfig``: read, split, normalise, train, test, save."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.data import chemical_symbols

from universal_mfp.data.coverage import COVERAGE_KEY, element_coverage
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.frame import Frame, check_finite_labels
from universal_mfp.data.readers import read_frames
from universal_mfp.data.splits import split_by_group
from universal_mfp.data.statistics import average_num_neighbors, energy_scales, fit_element_references
from universal_mfp.fidelity import CANONICAL_FIDELITIES
from universal_mfp.model.config import ModelConfig
from universal_mfp.model.potential import MultiFidelityPotential, build_model
from universal_mfp.training.config import RunConfig
from universal_mfp.training.distributed import DistributedContext, init_distributed
from universal_mfp.training.evaluation import error_metrics, evaluate_errors
from universal_mfp.training.fidelity_prior import FidelityPriors, build_fidelity_prior
from universal_mfp.training.init_from import start_from_checkpoint
from universal_mfp.training.isolated_atoms import isolated_atom_energies
from universal_mfp.training.state_io import latest_state
from universal_mfp.training.trainer import BEST_DIR, STATES_DIR, Trainer, TrainerSettings

logger = logging.getLogger(__name__)

PRIOR_SHIFT_FILE = "fidelity_prior_shift.json"  # the fitted composition shift, in the run's output folder


@dataclass
class RunSummary:
    """What a run produced: the best model folder and its metrics per fidelity and split."""

    best_model_dir: Path
    metrics: dict[str, dict[str, dict[str, float]]]
    model: MultiFidelityPotential


def ordered_fidelities(frames: Sequence[Frame]) -> tuple[str, ...]:
    """The fidelities present in ``frames``: canonical ones first (``pbe``, ``r2scan``), then the rest sorted."""
    present = {f.fidelity for f in frames if f.fidelity is not None}
    return tuple(f for f in CANONICAL_FIDELITIES if f in present) + tuple(sorted(present - set(CANONICAL_FIDELITIES)))


def read_sources(config: RunConfig) -> list[Frame]:
    """Read every data source of the run (after the element and force filters)."""
    return read_sources_with_repeats(config)[0]


def read_sources_with_repeats(config: RunConfig) -> tuple[list[Frame], np.ndarray]:
    """Read every data source; also return, per kept frame, its source's ``repeat`` (training oversampling)."""
    frames: list[Frame] = []
    repeats: list[int] = []
    for source in config.data.sources:
        read = read_frames(source.path, fidelity=source.fidelity, fidelity_map=config.data.fidelity_map)
        check_finite_labels(read, str(source.path))
        frames.extend(read)
        repeats.extend([source.repeat] * len(read))
    if not frames:
        raise ValueError("the data sources hold no frames")
    keep = np.ones(len(frames), dtype=bool)
    if config.data.elements:
        allowed = set(config.data.elements)
        keep &= np.array([set(f.numbers.tolist()) <= allowed for f in frames])
    if config.data.exclude_compositions:
        keep &= ~excluded_compositions(frames, config.data.exclude_compositions)
    if config.data.exclude_frames:
        keep &= ~excluded_frames(frames, config.data.exclude_frames)
    if config.data.max_force is not None:
        limit = config.data.max_force
        keep &= np.array([f.forces is None or float(np.abs(f.forces).max()) <= limit for f in frames])
    if not keep.all():
        logger.info("kept %d of %d frames (the data filters)", int(keep.sum()), len(frames))
    if not keep.any():
        raise ValueError("no frame passes the data filters (elements, exclude_compositions, exclude_frames, max_force)")
    kept = [f for f, k in zip(frames, keep, strict=True) if k]
    return kept, np.asarray(repeats)[keep]


def run_splits(
    config: RunConfig, frames: Sequence[Frame], fidelities: Sequence[str], elements: Sequence[int], *, cutoff: float
) -> tuple[dict[str, list[int]], dict[str, dict[int, float]], dict[str, int]]:
    """The run's splits (frame indices), its isolated-atom energies, and the binding-energy outliers left out.

    Everything is fitted on the training split only. With ``data.max_binding_energy`` the frames of every split
    whose binding energy exceeds it (``binding_energy_outliers``, with the training references) are left out.
    """
    splits = split_by_group(
        frames, val_fraction=config.data.val_fraction, test_fraction=config.data.test_fraction, seed=config.seed
    )
    train_frames = [frames[i] for i in splits["train"]]
    isolated = isolated_atom_energies(  # from training frames only: no validation or test energy leaks in
        train_frames, fidelities, config.data.isolated_atom_energies, cutoff=cutoff
    )
    dropped: dict[str, int] = {}
    if config.data.max_binding_energy is not None:
        references, _ = fit_element_references(train_frames, elements, fidelities, fixed=isolated)
        far = binding_energy_outliers(frames, references, elements, fidelities, config.data.max_binding_energy)
        dropped = {name: int(far[np.asarray(idx, dtype=int)].sum()) for name, idx in splits.items()}
        splits = {name: [i for i in idx if not far[i]] for name, idx in splits.items()}
        logger.info("left out %s frames whose binding energy exceeds the limit", dropped)
    return splits, isolated, dropped


def binding_energy_outliers(
    frames: Sequence[Frame],
    references: np.ndarray,
    elements: Sequence[int],
    fidelities: Sequence[str],
    limit: float,
) -> np.ndarray:
    """Which frames' binding energy, ``|E − Σ ref| / N`` with their fidelity's references, exceeds ``limit``.

    Real binding energies stay within about 10 eV/atom of free atoms; far larger ones are labels that failed
    (e.g. a teacher network extrapolating to a structure unlike its training data). Frames without an energy
    are never outliers.
    """
    column = {int(z): k for k, z in enumerate(elements)}
    row = {name: f for f, name in enumerate(fidelities)}
    out = np.zeros(len(frames), dtype=bool)
    for i, frame in enumerate(frames):
        if frame.energy is None or frame.fidelity not in row:
            continue
        reference = references[row[frame.fidelity], [column[int(z)] for z in frame.numbers]].sum()
        out[i] = abs(float(frame.energy) - reference) / frame.num_atoms > limit
    return out


def prior_sources(config: RunConfig) -> dict[str, list[str]]:
    """For each fidelity a fidelity prior pulls, the fidelities it is pulled towards (its teachers)."""
    sources: dict[str, list[str]] = {}
    for spec in config.fidelity_priors:
        sources.setdefault(spec.target, []).append(spec.source)
    return sources


def excluded_compositions(frames: Sequence[Frame], formulas: Sequence[str]) -> np.ndarray:
    """Per frame, whether its reduced formula is one of ``formulas`` (given as reduced formulas)."""
    from pymatgen.core import Composition

    wanted = set(formulas)
    verdict: dict[str, bool] = {}
    out = np.zeros(len(frames), dtype=bool)
    for index, frame in enumerate(frames):
        counts = Counter(frame.numbers.tolist())
        key = " ".join(f"{z}:{n}" for z, n in sorted(counts.items()))
        if key not in verdict:
            composition = Composition({chemical_symbols[int(z)]: n for z, n in counts.items()})
            verdict[key] = composition.reduced_formula in wanted
        out[index] = verdict[key]
    return out


def excluded_frames(frames: Sequence[Frame], frame_ids: Iterable[str]) -> np.ndarray:
    """Per frame, whether its ``frame_id`` is one of ``frame_ids``; every id must name one of the frames."""
    wanted = set(frame_ids)
    ids = [str(f.info.get("frame_id", "")) for f in frames]
    missing = sorted(wanted - set(ids))
    if missing:
        raise ValueError(f"data.exclude_frames: no frame of the sources has the id(s) {missing}")
    return np.array([frame_id in wanted for frame_id in ids], dtype=bool)


def normalised_model(
    train_frames: Sequence[Frame],
    train_set: GraphDataset,
    config: ModelConfig,
    *,
    seed: int,
    isolated_atoms: Mapping[str, Mapping[int, float]] | None = None,
) -> MultiFidelityPotential:
    """Build a model whose references, scales and neighbour normalisation are fitted on the training data.

    ``isolated_atoms`` (per fidelity, by atomic number) fixes those references to free-atom energies.
    """
    edges, atoms = train_set.edge_and_atom_counts()
    config = config.replace(avg_num_neighbors=round(average_num_neighbors(edges, atoms), 4))
    references, _ = fit_element_references(train_frames, config.elements, config.fidelities, fixed=isolated_atoms)
    scales = energy_scales(train_frames, config.elements, config.fidelities, references)
    model = build_model(config, seed=seed)
    model.set_energy_normalization(torch.as_tensor(references), torch.as_tensor(scales))
    return model


def label_counts(frames: Sequence[Frame]) -> dict[str, dict[str, int]]:
    """Frames and atoms per fidelity, with how many carry an energy, forces and a stress."""
    table: dict[str, Counter] = {}
    for frame in frames:
        counter = table.setdefault(str(frame.fidelity), Counter())
        counter["frames"] += 1
        counter["atoms"] += frame.num_atoms
        counter["with_energy"] += frame.energy is not None
        counter["with_forces"] += frame.forces is not None
        counter["with_stress"] += frame.stress is not None
    return {k: dict(v) for k, v in table.items()}


def data_summary(frames: Sequence[Frame], splits: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """Counts of frames per split and fidelity, with the labels they carry, and the sources."""
    return {
        "splits": {split: label_counts([frames[i] for i in indices]) for split, indices in splits.items()},
        "sources": sorted({str(f.info.get("source", "?")) for f in frames}),
    }


def train_from_config(
    config: RunConfig, *, resume: bool = True, context: DistributedContext | None = None
) -> RunSummary:
    """Run training as configured and return the best model with its validation and test errors."""
    context = context or init_distributed()
    frames, repeats = read_sources_with_repeats(config)
    fidelities = config.data.fidelities or ordered_fidelities(frames)
    elements = config.data.elements or tuple(sorted({int(z) for f in frames for z in np.unique(f.numbers)}))
    model_config = ModelConfig(elements=elements, fidelities=fidelities, **config.model)
    splits, isolated, dropped = run_splits(config, frames, fidelities, elements, cutoff=model_config.cutoff)
    train_frames = [frames[i] for i in splits["train"]]
    datasets = {
        name: GraphDataset([frames[i] for i in idx], model_config.cutoff, fidelities) for name, idx in splits.items()
    }
    model = normalised_model(train_frames, datasets["train"], model_config, seed=config.seed, isolated_atoms=isolated)
    summary = data_summary(frames, splits)
    if config.init_from is not None:
        resuming = resume and latest_state(config.output_dir / STATES_DIR) is not None
        if resuming and not config.init_from.exists():
            # the saved state holds the weights; the start checkpoint matters only to a run's first step
            logger.warning("init_from %s is absent: resuming from the saved state without it", config.init_from)
            summary["init_from"] = {"checkpoint": str(config.init_from), "absent_at_resume": True}
        else:
            model, summary["init_from"] = start_from_checkpoint(model, config.init_from, seed=config.seed)
    summary.update(seed=config.seed, elements=model.config.element_symbols)
    summary[COVERAGE_KEY] = element_coverage(train_frames, prior_sources(config))
    if config.data.exclude_frames:
        summary["frames_left_out"] = dict(config.data.exclude_frames)
    if config.data.max_binding_energy is not None:
        summary["binding_energy_outliers_left_out"] = dropped
    if isolated:
        summary["isolated_atom_energies"] = {fid: len(values) for fid, values in isolated.items()}
    train_repeats = repeats[np.asarray(splits["train"], dtype=int)]
    if (train_repeats > 1).any():
        summary["train_samples_per_epoch"] = int(train_repeats.sum())
        summary["source_repeats"] = {str(s.path.name): s.repeat for s in config.data.sources if s.repeat > 1}
    prior = None
    if config.fidelity_priors:
        built = [build_fidelity_prior(spec, model) for spec in config.fidelity_priors]
        prior = FidelityPriors([term for term, _ in built])
        records = [
            {**spec.to_dict(), "fit": dict(shift.fit)}
            for spec, (_, shift) in zip(config.fidelity_priors, built, strict=True)
        ]
        summary["fidelity_prior"] = records[0] if len(records) == 1 else records
        if context.is_main:
            config.output_dir.mkdir(parents=True, exist_ok=True)
            shifts = [shift.to_dict() for _, shift in built]
            (config.output_dir / PRIOR_SHIFT_FILE).write_text(
                json.dumps(shifts[0] if len(shifts) == 1 else shifts, indent=1), encoding="utf-8"
            )
    trainer = Trainer(
        model,
        datasets["train"].repeated(train_repeats.tolist()),
        datasets["val"],
        config.training,
        config.output_dir,
        context=context,
        training_summary=summary,
        prior=prior,
    )
    trainer.fit(resume=resume)
    return finalize_run(model, datasets, config.output_dir, config.training, context, summary)


def finalize_run(
    model: MultiFidelityPotential,
    datasets: Mapping[str, GraphDataset],
    output_dir: Path,
    settings: TrainerSettings,
    context: DistributedContext,
    summary: Mapping[str, Any],
) -> RunSummary:
    """Evaluate the best model on every split and store those metrics in its checkpoint."""
    from universal_mfp.hub.checkpoint import load_checkpoint, save_checkpoint

    best_dir = output_dir / BEST_DIR
    saved = load_checkpoint(best_dir) if best_dir.exists() else None
    best = saved.model if saved is not None else model
    best_epoch = saved.metadata.get("training", {}).get("best_epoch") if saved is not None else None
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for split, dataset in datasets.items():
        if len(dataset) == 0:
            continue
        errors = evaluate_errors(best, dataset, batch_size=settings.eval_batch_size, context=context).errors
        for fidelity, values in error_metrics(errors).items():
            metrics.setdefault(fidelity, {})[split] = values
    if context.is_main:
        training = {**summary, "settings": settings.to_dict(), "best_epoch": best_epoch}
        save_checkpoint(best, best_dir, training=training, metrics=metrics, overwrite=True)
        logger.info("best model in %s; metrics %s", best_dir, metrics)
    return RunSummary(best_model_dir=best_dir, metrics=metrics, model=best)
