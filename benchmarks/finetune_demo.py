"""Fine-tuning demonstration: add r2SCAN to a PBE-only model from 48 energy-only r2SCAN frames.

Real data from ../shared/data/frames, restricted to 12 elements (H Li Be C O Na Mg Al Si Cl Ca Cu):

- PBE model: a small single-fidelity model trained on the PBE dimer curves (frames with max |F| <= 20 eV/Å)
  and the MatPES PBE elemental crystals.
- r2SCAN test set: a random --test-fraction of the r2SCAN dimer frames (max |F| <= 20 eV/Å), with forces.
  Their PBE twins (same pair and distance) are removed from the PBE training set, so no test geometry is
  seen at any level of theory.
- r2SCAN training set: 48 frames, energies only: per element its MatPES r2SCAN crystal and 3 dimer frames
  from the non-test pool.

Methods, each scored on the r2SCAN test set (energy MAE meV/atom, force MAE meV/Å) and on the held-out PBE
twins at PBE fidelity (forgetting):

  slot_only        the new r2scan slot right after it is added (PBE model + refitted element references)
  ft_readout       umfp finetune, new r2scan fidelity, train=readout (only r2scan's own rows train)
  ft_all_replay    umfp finetune, train=all-but-embedding, with 48 PBE training frames replayed
  scratch          a single-fidelity r2SCAN model trained from scratch on the 48 frames
  transfer         plain transfer learning (baselines.transfer_learning: all weights, references refitted)

Every method after the PBE model gets the same number of optimiser steps (--steps).

Run: OMP_NUM_THREADS=1 python benchmarks/finetune_demo.py [--pbe-steps 3000] [--steps 1000]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.pairs import geometry_key
from universal_mfp.data.readers import read_extxyz
from universal_mfp.finetuning import finetune
from universal_mfp.finetuning.slots import add_fidelity, fit_reference_shift
from universal_mfp.model import ModelConfig, count_parameters
from universal_mfp.training.baselines import single_fidelity_config, train_model, transfer_learning
from universal_mfp.training.evaluation import evaluate_errors
from universal_mfp.training.loss import LossWeights
from universal_mfp.training.trainer import TrainerSettings

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT.parent / "shared" / "data" / "frames"
ELEMENTS = ("H", "Li", "Be", "C", "O", "Na", "Mg", "Al", "Si", "Cl", "Ca", "Cu")
MODEL = dict(cutoff=5.0, num_layers=2, hidden_irreps="16x0e+8x1o", radial_mlp_hidden=(16,), readout_hidden=16)
METHODS = ("slot_only", "ft_readout", "ft_all_replay", "scratch", "transfer")


def load(seed, test_fraction, max_force):
    def dimers(name):
        frames = read_extxyz(FRAMES / name)
        return [f for f in frames if f.info["pair"].split("-")[0] in ELEMENTS and np.abs(f.forces).max() <= max_force]

    def crystals(name):
        return [f for f in read_extxyz(FRAMES / name) if f.info["element"] in ELEMENTS]

    pbe_dimers, r2_dimers = dimers("diatomics_PBE.extxyz"), dimers("diatomics_r2SCAN.extxyz")
    rng = np.random.default_rng(seed)
    is_test = rng.random(len(r2_dimers)) < test_fraction
    test = [f for f, t in zip(r2_dimers, is_test, strict=True) if t]
    pool = [f for f, t in zip(r2_dimers, is_test, strict=True) if not t]
    test_keys = {geometry_key(f) for f in test}
    pbe_test = [f for f in pbe_dimers if geometry_key(f) in test_keys]
    pbe_train = [f for f in pbe_dimers if geometry_key(f) not in test_keys] + crystals("matpes_element_refs_PBE.extxyz")
    by_element = defaultdict(list)
    for frame in pool:
        by_element[frame.info["pair"].split("-")[0]].append(frame)
    r2_train = list(crystals("matpes_element_refs_r2SCAN.extxyz"))
    for element in ELEMENTS:
        frames = by_element[element]
        r2_train += [frames[i] for i in sorted(rng.choice(len(frames), 3, replace=False))]
    r2_train = [f.replace(forces=None, stress=None) for f in r2_train]  # energies only
    return pbe_train, pbe_test, r2_train, test


def settings_for(num_frames, steps, batch_size, lr, seed):
    return TrainerSettings(
        epochs=max(1, math.ceil(steps / math.ceil(num_frames / batch_size))),
        batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=min(20, steps // 10),
        ema_decay=0.99,
        weights=LossWeights(energy=1.0, forces=10.0, stress=0.01),
        seed=seed,
        progress=False,
    )


def errors(model, frames, fidelity):
    frames = [f.replace(fidelity=fidelity) for f in frames]
    values = evaluate_errors(model, GraphDataset(frames, model.config.cutoff, model.fidelities), batch_size=64)
    entry = values.errors[fidelity]
    return {"energy_mae": entry["energy_mae"], "forces_mae": entry["forces_mae"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pbe-steps", type=int, default=3000, help="optimiser steps of the PBE pre-training")
    parser.add_argument("--steps", type=int, default=1000, help="optimiser steps of every method on the 48 frames")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--max-force", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "finetune_demo.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="umfp-finetune-demo-"))

    pbe_train, pbe_test, r2_train, test = load(args.seed, args.test_fraction, args.max_force)
    elements = tuple(sorted({int(z) for f in pbe_train + test for z in f.numbers}))
    config = ModelConfig(elements=elements, fidelities=("pbe", "r2scan"), **MODEL)
    print(f"PBE train {len(pbe_train)}, PBE test {len(pbe_test)}, r2SCAN train {len(r2_train)} (energies only), ")
    print(f"r2SCAN test {len(test)}, elements {len(elements)}", flush=True)

    t = time.perf_counter()
    pbe_settings = settings_for(len(pbe_train), args.pbe_steps, args.batch_size, args.lr, args.seed)
    pbe_model = train_model(pbe_train, [], single_fidelity_config(config, "pbe"), pbe_settings, work / "pbe")
    pbe_model.eval()
    base = {"pbe_test": errors(pbe_model, pbe_test, "pbe"), "r2scan_test_as_pbe": errors(pbe_model, test, "pbe")}
    base["seconds"] = time.perf_counter() - t
    print(f"PBE model: {base}", flush=True)

    n = len(r2_train)
    results = {}
    for method in METHODS:
        t = time.perf_counter()
        settings = settings_for(n, args.steps, args.batch_size, args.lr, args.seed)
        if method == "slot_only":
            shift, _ = fit_reference_shift(pbe_model, r2_train, "pbe")
            model = add_fidelity(pbe_model, "r2scan", init_from="pbe", reference_shift=shift)
        elif method == "ft_readout":
            model = finetune(pbe_model, r2_train, "r2scan", work / method, train="readout", settings=settings).model
        elif method == "ft_all_replay":
            settings = settings_for(2 * n, args.steps, args.batch_size, args.lr / 2, args.seed)
            model = finetune(
                pbe_model,
                r2_train,
                "r2scan",
                work / method,
                train="all-but-embedding",
                replay=pbe_train,
                replay_count=n,
                settings=settings,
            ).model
        elif method == "scratch":
            r2 = [f.replace(fidelity="r2scan") for f in r2_train]
            model = train_model(r2, [], single_fidelity_config(config, "r2scan"), settings, work / method)
        else:
            half = settings_for(n, args.steps, args.batch_size, args.lr / 2, args.seed)
            r2 = [f.replace(fidelity="r2scan") for f in r2_train]
            model = transfer_learning(pbe_model, r2, [], "r2scan", half, work / method)
        model.eval()
        row = {"r2scan_test": errors(model, test, "r2scan")}
        if "pbe" in model.fidelities:
            row["pbe_test"] = errors(model, pbe_test, "pbe")
        row["seconds"] = time.perf_counter() - t
        results[method] = row
        pbe_text = f", PBE test E {row['pbe_test']['energy_mae']:.1f}" if "pbe_test" in row else ""
        print(
            f"{method:14s} r2SCAN test E {row['r2scan_test']['energy_mae']:8.1f} meV/atom, "
            f"F {row['r2scan_test']['forces_mae']:7.1f} meV/Å{pbe_text}  [{row['seconds']:.0f} s]",
            flush=True,
        )

    meta = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seconds": time.perf_counter() - started,
        "model": MODEL,
        "parameters": count_parameters(pbe_model.requires_grad_(True)),
        "elements": list(ELEMENTS),
        "pbe_steps": args.pbe_steps,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "seed": args.seed,
        "max_force_eV_per_A": args.max_force,
        "frames": {"pbe_train": len(pbe_train), "pbe_test": len(pbe_test), "r2scan_train": n, "r2scan_test": len(test)},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"meta": meta, "pbe_model": base, "results": results}, indent=2) + "\n")
    print(f"wrote {args.output} ({meta['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
