"""The training run configuration (``umfp train CONFIG.yaml``): data sources, model size, optimisation."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ase.data import chemical_symbols

from universal_mfp.data.formulas import reduced_formulas
from universal_mfp.training.fidelity_prior import FidelityPriorSpec
from universal_mfp.training.isolated_atoms import IsolatedAtomSource
from universal_mfp.training.loss import LossWeights
from universal_mfp.training.trainer import TrainerSettings


@dataclass(frozen=True)
class DataSource:
    """One input file or shard folder.

    ``fidelity`` overrides the per-frame labels; ``repeat`` makes each of the source's training frames
    appear that many times per epoch (oversampling a small source; validation and test are unaffected).
    """

    path: Path
    fidelity: str | None = None
    repeat: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.repeat, bool) or not isinstance(self.repeat, int) or self.repeat < 1:
            raise ValueError(f"data source {self.path}: repeat must be a whole number >= 1, got {self.repeat!r}")


@dataclass(frozen=True)
class DataSettings:
    """Where the frames come from, which are kept, and how they are split.

    ``elements`` restricts the run to frames made only of these elements (and the model to them);
    ``max_force`` drops frames with any force component larger than this (eV/Å);
    ``max_binding_energy`` drops frames whose energy per atom lies further than this (eV/atom) from the sum of
    their element references (fitted on the training frames), i.e. failed labels (``run.binding_energy_outliers``);
    ``exclude_compositions`` drops every frame, of every source, whose reduced formula is one of these (the
    materials that evaluations judge the model on stay out of training, validation and every fit);
    ``exclude_frames`` maps frame ids (``info["frame_id"]``, e.g. ``mp_pbe_element_polymorphs:558``) to the
    reason each label is left out (a label known to be wrong); every id must name a frame of the sources;
    ``isolated_atom_energies`` says, per fidelity, where the free-atom energies that become the element
    references come from (see ``universal_mfp.training.isolated_atoms``).
    """

    sources: tuple[DataSource, ...]
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    fidelity_map: Mapping[str, str] = field(default_factory=dict)
    fidelities: tuple[str, ...] | None = None
    elements: tuple[int, ...] | None = None
    max_force: float | None = None
    max_binding_energy: float | None = None
    exclude_compositions: tuple[str, ...] = ()
    exclude_frames: Mapping[str, str] = field(default_factory=dict)
    isolated_atom_energies: Mapping[str, IsolatedAtomSource] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """A complete training run."""

    output_dir: Path
    data: DataSettings
    model: Mapping[str, Any]
    training: TrainerSettings
    seed: int = 0
    fidelity_priors: tuple[FidelityPriorSpec, ...] = ()
    init_from: Path | None = None  # a checkpoint folder whose weights start the run (new optimizer and schedule)


def _atomic_number(value: int | str) -> int:
    if isinstance(value, int):
        return value
    if value not in chemical_symbols[1:]:
        raise ValueError(f"unknown element {value!r} in data.elements")
    return chemical_symbols.index(value)


def _frame_exclusions(given: Any) -> dict[str, str]:
    """``data.exclude_frames``: a mapping of frame id to the reason its label is left out."""
    if not isinstance(given, Mapping):
        raise ValueError(f"data.exclude_frames must map frame ids to reasons, got {given!r}")
    exclusions = {}
    for frame_id, reason in given.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"data.exclude_frames: frame {frame_id!r} needs a reason (a non-empty text)")
        exclusions[str(frame_id)] = reason.strip()
    return exclusions


def _expand(path: str, base: Path) -> Path:
    expanded = Path(os.path.expanduser(os.path.expandvars(path)))
    return expanded if expanded.is_absolute() else (base / expanded).resolve()


def _check_keys(section: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"config section {section!r}: unknown keys {unknown}; allowed are {sorted(allowed)}")


def parse_run_config(raw: Mapping[str, Any], *, base_dir: Path) -> RunConfig:
    """Validate a config mapping; relative paths are taken relative to ``base_dir`` (the config's folder)."""
    _check_keys("top level", raw, {"output_dir", "data", "model", "training", "seed", "init_from"})
    for required in ("output_dir", "data"):
        if required not in raw:
            raise ValueError(f"config needs {required!r}")
    data = dict(raw["data"])
    _check_keys(
        "data",
        data,
        {
            "sources",
            "val_fraction",
            "test_fraction",
            "fidelity_map",
            "fidelities",
            "elements",
            "max_force",
            "max_binding_energy",
            "exclude_compositions",
            "exclude_frames",
            "isolated_atom_energies",
        },
    )
    if not data.get("sources"):
        raise ValueError("config data.sources must list at least one file or folder")
    sources = []
    for item in data["sources"]:
        entry = {"path": item} if isinstance(item, str) else dict(item)
        _check_keys("data.sources[]", entry, {"path", "fidelity", "repeat"})
        sources.append(
            DataSource(
                path=_expand(str(entry["path"]), base_dir),
                fidelity=entry.get("fidelity"),
                repeat=entry.get("repeat", 1),
            )
        )
    isolated: dict[str, IsolatedAtomSource] = {}
    for fidelity, given in (data.get("isolated_atom_energies") or {}).items():
        if not isinstance(given, Mapping):
            raise ValueError(f"data.isolated_atom_energies.{fidelity} must be a mapping")
        spec = dict(given)
        _check_keys(
            f"data.isolated_atom_energies.{fidelity}",
            spec,
            {f.name for f in dataclasses.fields(IsolatedAtomSource)},
        )
        for key in ("file", "offsets"):
            if key in spec:
                spec[key] = _expand(str(spec[key]), base_dir)
        isolated[str(fidelity)] = IsolatedAtomSource(**spec)
    seed = int(raw.get("seed", 0))
    training = dict(raw.get("training") or {})
    priors = _fidelity_priors(training.pop("fidelity_prior", None), base_dir)
    allowed = {f.name for f in dataclasses.fields(TrainerSettings)}
    _check_keys("training", training, allowed)
    weights = training.pop("weights", None)
    if weights is not None:
        _check_keys("training.weights", weights, {"energy", "forces", "stress", "per_fidelity"})
        training["weights"] = LossWeights(**weights)
    training.setdefault("seed", seed)
    model = dict(raw.get("model") or {})
    for key in ("elements", "fidelities"):
        if key in model:
            raise ValueError(f"set {key} under data:, not model: (the model's are derived from the data)")
    return RunConfig(
        output_dir=_expand(str(raw["output_dir"]), base_dir),
        data=DataSettings(
            sources=tuple(sources),
            val_fraction=float(data.get("val_fraction", 0.1)),
            test_fraction=float(data.get("test_fraction", 0.1)),
            fidelity_map=dict(data.get("fidelity_map") or {}),
            fidelities=tuple(data["fidelities"]) if data.get("fidelities") else None,
            elements=tuple(_atomic_number(z) for z in data["elements"]) if data.get("elements") else None,
            max_force=float(data["max_force"]) if data.get("max_force") is not None else None,
            max_binding_energy=(
                float(data["max_binding_energy"]) if data.get("max_binding_energy") is not None else None
            ),
            exclude_compositions=reduced_formulas(
                data.get("exclude_compositions") or (), setting="data.exclude_compositions"
            ),
            exclude_frames=_frame_exclusions(data.get("exclude_frames") or {}),
            isolated_atom_energies=isolated,
        ),
        model=model,
        training=TrainerSettings(**training),
        seed=seed,
        fidelity_priors=priors,
        init_from=_expand(str(raw["init_from"]), base_dir) if raw.get("init_from") else None,
    )


def _fidelity_priors(given: Any, base_dir: Path) -> tuple[FidelityPriorSpec, ...]:
    """``training.fidelity_prior``: one mapping, or a list of them (one prior per pair of fidelities)."""
    if given is None:
        return ()
    items = given if isinstance(given, list | tuple) else [given]
    return tuple(_fidelity_prior(item, base_dir) for item in items)


def _fidelity_prior(given: Any, base_dir: Path) -> FidelityPriorSpec:
    if not isinstance(given, Mapping):
        raise ValueError("training.fidelity_prior must be a mapping or a list of mappings")
    spec = dict(given)
    _check_keys("training.fidelity_prior", spec, {f.name for f in dataclasses.fields(FidelityPriorSpec)})
    for key in ("table", "element_offsets", "target_element_energies"):
        if spec.get(key) is not None:
            spec[key] = _expand(str(spec[key]), base_dir)
    spec["exclude"] = tuple(str(i) for i in spec.get("exclude") or ())
    spec["weight"] = float(spec.get("weight", 1.0))
    return FidelityPriorSpec(**spec)


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such config file: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        raise ValueError(f"{path}: not valid YAML{line} ({problem})") from error
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: the config must be a mapping at the top level")
    return parse_run_config(raw, base_dir=path.parent.resolve())
