"""How should teacher fidelities sit beside the real ones? Two layouts, one model, one budget, held-out data.

- ``separate``: the teachers are fidelities of their own (``pbe_chgnet``, ``r2scan_chgnet``) beside the real
  ``pbe`` (MP GGA/GGA+U), ``pbe_matpes`` and ``r2scan`` (MatPES); ``fidelity_conditioning: linear_delta`` (one
  shared network and readout, each fidelity a learned linear correction and its own element references), so
  the real fidelities are corrections on top of what the teachers teach.
- ``folded``: the teacher labels are folded into the real fidelities they imitate (CHGNet 0.3.0 -> ``pbe``,
  CHGNet r2SCAN -> ``r2scan``), the real frames repeated so that they keep weight; same conditioning.
- ``tied``: ``separate``, plus a prior on the teachers' frames that pulls each real fidelity to its teacher plus
  a per-element offset (``pbe`` to ``pbe_chgnet``, offset 0: the same raw MP scale; ``r2scan`` to
  ``r2scan_chgnet`` plus the MatPES-minus-MP r2SCAN offsets of ``datasets/teacher/r2scan_element_offsets.json``,
  measured on training elemental ground states). The recipe of ``configs/mf-universal-v1.yaml``.

Both train the same architecture for the same number of steps on the same frames: every real frame of
../shared/data (split by material / MatPES id / task / geometry with the bundled model's seed, 2026) and the
teacher dataset's training compositions (the compositions the r2SCAN and hull checks use are left out). Errors
are on held-out data only: the teacher dataset's test compositions (against the teacher labels, at the user
fidelities ``pbe``/``r2scan`` and, for ``separate``, at the teacher fidelities), and the real test frames of each
source. Writes benchmarks/results/teacher_layouts_<layout>.json (one process per layout can run in parallel).

Run: python benchmarks/teacher_layouts.py [--steps 3000] [--layouts separate folded tied] [--max-compositions N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from universal_mfp_pipelines.importer import read_extxyz_files

from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.readers import read_frames
from universal_mfp.data.splits import split_of
from universal_mfp.hub.checkpoint import save_checkpoint
from universal_mfp.model import ModelConfig, count_parameters
from universal_mfp.training.baselines import train_model
from universal_mfp.training.evaluation import evaluate_errors
from universal_mfp.training.fidelity_prior import FidelityPriorSpec
from universal_mfp.training.loss import LossWeights
from universal_mfp.training.trainer import TrainerSettings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UMFP_SHARED_DATA", ROOT.parent / "shared" / "data"))
FILE_FIDELITIES = {"diatomics_PBE.extxyz": "pbe_matpes", "matpes_element_refs_PBE.extxyz": "pbe_matpes"}
# compositions the r2SCAN formation-energy benchmark and the v1 checks evaluate: kept out of training
EVALUATION_COMPOSITIONS = ("Li2O", "Li2O2", "Fe3O4", "Fe2O3", "MgO", "SiC", "NaCl", "Al2O3", "LiF")
FOLD = {"pbe_chgnet": "pbe", "r2scan_chgnet": "r2scan"}
LAYOUTS = ("separate", "folded", "tied")
MODEL = dict(
    cutoff=5.0, num_layers=2, hidden_irreps="32x0e+8x1o+4x2e", lmax_edge=2, radial_mlp_hidden=(32,), readout_hidden=16
)


def real_frames(max_force: float):
    """Every real frame with its fidelity and its split (the bundled model's rule and seed)."""
    frames = read_extxyz_files([SHARED / "frames"], file_fidelities=FILE_FIDELITIES)
    frames = [f for f in frames if f.forces is None or np.abs(f.forces).max() <= max_force]
    return [
        f.replace(info={**f.info, "split": split_of(f, val_fraction=0.05, test_fraction=0.05, seed=2026)})
        for f in frames
    ]


def teacher_frames(folder: Path, max_compositions: int, seed: int):
    frames = read_frames(folder)
    frames = [f for f in frames if f.info["composition_group"] not in EVALUATION_COMPOSITIONS]
    groups = sorted({f.info["composition_group"] for f in frames if f.info["split"] == "train"})
    if max_compositions and len(groups) > max_compositions:
        keep = {groups[k] for k in np.random.default_rng(seed).permutation(len(groups))[:max_compositions]}
        frames = [f for f in frames if f.info["split"] != "train" or f.info["composition_group"] in keep]
    return frames


def errors_at(model, frames, fidelity):
    if not frames:
        return None
    relabelled = [f.replace(fidelity=fidelity) for f in frames]
    dataset = GraphDataset(relabelled, model.config.cutoff, model.fidelities)
    out = evaluate_errors(model, dataset, batch_size=64).errors[fidelity]
    return {k: round(float(v), 2) for k, v in out.items() if k in ("energy_mae", "forces_mae", "stress_mae")} | {
        "frames": len(frames)
    }


def r2scan_formation(checkpoint: Path) -> dict:
    script = ROOT / "benchmarks" / "r2scan_formation_energies.py"
    out = checkpoint.parent / "r2scan_formation.json"
    subprocess.run(  # noqa: S603 (our own script, our own paths)
        [sys.executable, str(script), "--model", str(checkpoint), "--output", str(out)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return json.loads(out.read_text())


def run_layout(layout, real, teacher, args, work):
    if layout == "folded":
        teacher = [f.replace(fidelity=FOLD[f.fidelity]) for f in teacher]
        fidelities = ("pbe", "r2scan", "pbe_matpes")
    else:
        fidelities = ("pbe", "r2scan", "pbe_matpes", "pbe_chgnet", "r2scan_chgnet")
    train_real = [f for f in real if f.info["split"] == "train"]
    train_teacher = [f for f in teacher if f.info["split"] == "train"]
    repeats = max(1, round(args.real_share * len(train_teacher) / ((1 - args.real_share) * len(train_real))))
    train = train_teacher + train_real * repeats
    priors = ()
    if layout == "tied":
        offsets = args.teacher_dataset / "r2scan_element_offsets.json"
        priors = (
            FidelityPriorSpec(source="pbe_chgnet", target="pbe", weight=2.0),
            FidelityPriorSpec(source="r2scan_chgnet", target="r2scan", element_offsets=offsets, weight=2.0),
        )
    elements = tuple(sorted({int(z) for f in real + teacher for z in f.numbers}))
    config = ModelConfig(elements=elements, fidelities=fidelities, fidelity_conditioning="linear_delta", **MODEL)
    epochs = max(1, math.ceil(args.steps / math.ceil(len(train) / args.batch_size)))
    settings = TrainerSettings(
        epochs=epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=100,
        ema_decay=0.995,
        weights=LossWeights(energy=5.0, forces=1.0, stress=0.01),
        progress=False,
        seed=args.seed,
    )
    started = time.perf_counter()
    model = train_model(train, [], config, settings, work / layout, seed=args.seed, priors=priors)
    model.eval()
    seconds = time.perf_counter() - started
    checkpoint = save_checkpoint(model, work / layout / "model", overwrite=True)
    test_teacher = [f for f in teacher if f.info["split"] == "test"]
    by_fid = {fid: [f for f in test_teacher if f.fidelity == fid] for fid in {f.fidelity for f in test_teacher}}
    result = {
        "fidelities": fidelities,
        "priors": [p.to_dict() for p in priors],
        "train_frames": len(train),
        "real_repeats": repeats,
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "parameters": count_parameters(model),
        "teacher_test": {},
        "real_test": {},
    }
    # teacher test compositions, against the teacher labels, at the user fidelities (and the teachers' own)
    for fid, frames in sorted(by_fid.items()):
        user = FOLD.get(fid, fid)
        result["teacher_test"][f"{fid} labels at {user}"] = errors_at(model, frames, user)
        if user != fid:
            result["teacher_test"][f"{fid} labels at {fid}"] = errors_at(model, frames, fid)
    for source in sorted({f.info["source"] for f in real}):
        test = [f for f in real if f.info["source"] == source and f.info["split"] == "test"]
        if test:
            result["real_test"][source] = errors_at(model, test, test[0].fidelity)
    try:
        result["r2scan_formation"] = r2scan_formation(checkpoint)
    except (subprocess.CalledProcessError, OSError, ValueError) as error:
        result["r2scan_formation"] = {"error": str(error)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument("--teacher-dataset", type=Path, default=ROOT / "datasets" / "teacher")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.004)
    parser.add_argument("--real-share", type=float, default=0.25, help="share of real frames among the samples")
    parser.add_argument("--max-compositions", type=int, default=0, help="teacher training compositions kept")
    parser.add_argument("--max-force", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "teacher_layouts")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results", help="folder for the JSON")
    args = parser.parse_args()
    real = real_frames(args.max_force)
    teacher = teacher_frames(args.teacher_dataset, args.max_compositions, args.seed)
    print(f"real frames {len(real)}, teacher frames {len(teacher)}", flush=True)
    for layout in args.layouts:
        result = run_layout(layout, real, teacher, args, args.work)
        print(json.dumps({layout: result}, indent=1), flush=True)
        meta = {
            "machine": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "model": MODEL,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "real_share": args.real_share,
            "max_compositions": args.max_compositions,
            "seed": args.seed,
            "evaluation_compositions_left_out": EVALUATION_COMPOSITIONS,
        }
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / f"teacher_layouts_{layout}.json").write_text(
            json.dumps({"meta": meta, layout: result}, indent=1)
        )


if __name__ == "__main__":
    main()
