"""Model vs DFT energies above the elemental hull on real MP elemental polymorphs (GGA).

Reads ``../shared/data/frames/mp_pbe_element_polymorphs.extxyz`` (789 MP elemental polymorphs with GGA
energies, from the ``matcalc`` sdist). The DFT energy above hull of each polymorph is computed from the
file's own energies with the same hull code (``universal_mfp.hull.energies_above_hull``; for one element it
is the energy per atom above the lowest polymorph). The model's energies above hull are computed the same
way from the model's own energies at the ``pbe`` fidelity, and the two are compared with the
matbench-discovery metrics (stable iff e_above_hull <= 0 eV/atom).

Usage: ``python benchmarks/element_polymorphs_hull.py --model NAME_OR_CHECKPOINT [--relax] [--output f.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from universal_mfp.data.frame import Frame
from universal_mfp.data.readers import read_extxyz
from universal_mfp.hull import PhaseEnergy, RelaxOptions, energies_above_hull, screen_structures, stable_metrics

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared" / "data" / "frames" / "mp_pbe_element_polymorphs.extxyz"


def read_polymorphs(path: Path = DEFAULT_FILE) -> list[Frame]:
    """Frames with GGA energies and ids ``polymorph:<index>``."""
    frames = read_extxyz(path, fidelity="pbe")
    return [f.replace(info={"id": f"polymorph:{k}", "source": f.info.get("source", "")}) for k, f in enumerate(frames)]


def dft_e_above_hull(frames: list[Frame]) -> dict[str, float]:
    """DFT energy above the elemental hull of every frame, from the frames' own energies (eV/atom)."""
    phases = [PhaseEnergy(str(f.info["id"]), f.formula, f.energy) for f in frames]
    return {p.id: p.e_above_hull for p in energies_above_hull(phases, [])}


def held_out_ids(frames: list[Frame], config_path: Path) -> list[str]:
    """Ids of the frames whose geometry is in the val or test split of a training run's config."""
    from universal_mfp.data.pairs import geometry_key
    from universal_mfp.data.splits import split_by_group
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.run import read_sources

    config = load_run_config(config_path)
    sources = read_sources(config)
    splits = split_by_group(
        sources, val_fraction=config.data.val_fraction, test_fraction=config.data.test_fraction, seed=config.seed
    )
    held = {geometry_key(sources[i]) for name in ("val", "test") for i in splits[name]}
    return [str(f.info["id"]) for f in frames if geometry_key(f) in held]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name or checkpoint folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--fidelity", default="pbe", help="model fidelity (the DFT energies are GGA)")
    parser.add_argument("--relax", action="store_true", help="relax every polymorph with the model first")
    parser.add_argument("--bundled-references", action="store_true", help="also let the bundled MatPES refs compete")
    parser.add_argument("--output", type=Path, default=None, help="write metrics and per-structure values (JSON)")
    parser.add_argument(
        "--held-out-of",
        type=Path,
        default=None,
        help="training config of the model: also report metrics on the polymorphs in its val/test splits only",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    from universal_mfp.hull.cli import resolve_model

    model = resolve_model(args.model)
    frames = read_polymorphs(args.data)
    known = set(model.config.element_symbols)
    usable = [f for f in frames if set(f.symbols) <= known]
    if len(usable) < len(frames):
        print(f"skipping {len(frames) - len(usable)} polymorphs of elements the model lacks")
    dft = dft_e_above_hull(usable)
    start = time.perf_counter()
    result = screen_structures(
        model,
        usable,
        fidelity=args.fidelity,
        use_bundled_references=args.bundled_references,
        relax=RelaxOptions() if args.relax else None,
        progress=True,
    )
    seconds = time.perf_counter() - start
    predicted = result.e_above_hull()
    ids = [str(f.info["id"]) for f in usable]
    metrics = stable_metrics([dft[i] for i in ids], [predicted[i] for i in ids])
    print(f"{len(ids)} polymorphs, {sum(dft[i] <= 0 for i in ids)} on the DFT hull, {seconds:.1f} s")
    for key in ("F1", "Precision", "Recall", "Accuracy", "DAF", "MAE", "RMSE", "R2"):
        print(f"{key:>10s}: {metrics[key]:.4f}")
    held_out_metrics = None
    if args.held_out_of is not None:
        held = held_out_ids(usable, args.held_out_of)
        held_out_metrics = stable_metrics([dft[i] for i in held], [predicted[i] for i in held])
        print(f"held out of training ({len(held)} polymorphs, {sum(dft[i] <= 0 for i in held)} on the DFT hull):")
        for key in ("F1", "Precision", "Recall", "Accuracy", "MAE", "RMSE", "R2"):
            print(f"{key:>10s}: {held_out_metrics[key]:.4f}")
    if args.output is not None:
        record = {
            "model": args.model,
            "fidelity": args.fidelity,
            "relax": args.relax,
            "data": str(args.data),
            "metrics": metrics,
            "held_out_metrics": held_out_metrics,
            "per_structure": {i: {"dft": dft[i], "model": predicted[i]} for i in ids},
        }
        args.output.write_text(json.dumps(record, indent=1, default=float))


if __name__ == "__main__":
    main()
