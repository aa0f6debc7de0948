"""Data efficiency of multi-fidelity learning against single-fidelity, transfer and delta learning.

Real data: the PBE and r2SCAN dimer curves (same geometries at both levels of theory; frames within
--max-above-minimum eV/atom of their curve's minimum, forces up to --max-force) and the MatPES
elemental crystals at both levels, from ../shared/data/frames. A test set of r2SCAN frames is held out
(and their PBE twins are removed from every training set, so no test geometry is seen at any level).
Each method then trains on 5/10/25/100 % of the remaining r2SCAN frames, sampled per dimer curve or
crystal so every system keeps at least one r2SCAN frame, plus the PBE frames where the method uses them:

  mf            one model, both fidelities, r2SCAN energies + forces + stresses
  mf_energy     one model, both fidelities, r2SCAN energies only (forces and stresses removed)
  single        r2SCAN-only model
  transfer      PBE-only model, then all weights fine-tuned on the r2SCAN frames
  delta         PBE-only model + a model of (r2SCAN - PBE) trained on the r2SCAN frames' PBE twins

Multi-fidelity runs repeat the r2SCAN frames so they are about a third of the samples (--no-balance
turns this off). Every method gets the same number of optimiser steps in total (2 x --steps): the PBE pre-training of
transfer and delta counts against their budget. Reports r2SCAN test energy MAE (meV/atom) and force MAE
(meV/Å), writes a markdown table, a JSON file and a learning-curve PNG.

With --data teacher, the same comparison runs on compounds: the paired teacher dataset (datasets/teacher:
CHGNet 0.3.0 GGA(+U) labels as "pbe", CHGNet r2SCAN labels as "r2scan", on the same structures). The test set
is every r2SCAN frame of the dataset's test compositions (a test composition is never seen in training, at
any fidelity); the r2SCAN fractions are sampled per composition. Its table goes into its own section of
docs/data_efficiency.md, beside the elemental one.

Run: python benchmarks/data_efficiency.py [--data elemental|teacher] [--steps 400] [--fractions 0.05 0.1 0.25 1.0]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
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
from universal_mfp.model import ModelConfig, build_model, count_parameters
from universal_mfp.training.baselines import delta_learning, single_fidelity_config, train_model, transfer_learning
from universal_mfp.training.evaluation import evaluate_errors
from universal_mfp.training.loss import LossWeights
from universal_mfp.training.trainer import TrainerSettings

ROOT = Path(__file__).resolve().parents[1]
FRAMES = Path(os.environ.get("UMFP_SHARED_DATA", ROOT.parent / "shared" / "data")) / "frames"
METHODS = ("mf", "mf_energy", "single", "transfer", "delta")
MODEL = dict(
    cutoff=5.0, num_layers=2, hidden_irreps="32x0e+8x1o+4x2e", lmax_edge=2, radial_mlp_hidden=(32,), readout_hidden=16
)


def system_key(frame):
    return (
        frame.info.get("composition_group")
        or frame.info.get("pair")
        or frame.info.get("element")
        or frame.info["frame_id"]
    )


def near_minimum(dimers, max_above, max_force):
    """Dimer frames within ``max_above`` eV/atom of their own curve's minimum and with |F| <= ``max_force``."""
    lowest = defaultdict(lambda: math.inf)
    for frame in dimers:
        lowest[frame.info["pair"]] = min(lowest[frame.info["pair"]], frame.energy / frame.num_atoms)
    return [
        f
        for f in dimers
        if f.energy / f.num_atoms - lowest[f.info["pair"]] <= max_above and np.abs(f.forces).max() <= max_force
    ]


def load_data(max_above, max_force):
    pbe = near_minimum(read_extxyz(FRAMES / "diatomics_PBE.extxyz"), max_above, max_force)
    r2 = near_minimum(read_extxyz(FRAMES / "diatomics_r2SCAN.extxyz"), max_above, max_force)
    pbe += read_extxyz(FRAMES / "matpes_element_refs_PBE.extxyz")
    r2 += read_extxyz(FRAMES / "matpes_element_refs_r2SCAN.extxyz")
    return pbe, r2


def load_teacher_data(folder, max_compositions, seed):
    """Teacher pairs: (pbe train, r2SCAN train pool, r2SCAN test) by the dataset's composition-group split.

    ``max_compositions`` keeps a seeded sample of that many training compositions (every test composition stays).
    """
    from universal_mfp.data.readers import read_frames

    names = {"pbe_chgnet": "pbe", "r2scan_chgnet": "r2scan"}
    frames = [f.replace(fidelity=names[f.fidelity]) for f in read_frames(folder) if f.fidelity in names]
    train_groups = sorted({f.info["composition_group"] for f in frames if f.info["split"] == "train"})
    if max_compositions and len(train_groups) > max_compositions:
        order = np.random.default_rng(seed).permutation(len(train_groups))[:max_compositions]
        train_groups = [train_groups[k] for k in sorted(order)]
    keep = set(train_groups)
    train = [f for f in frames if f.info["split"] == "train" and f.info["composition_group"] in keep]
    test = [f for f in frames if f.info["split"] == "test" and f.fidelity == "r2scan"]
    pbe = [f for f in train if f.fidelity == "pbe"]
    pool = [f for f in train if f.fidelity == "r2scan"]
    return pbe, pool, test


def split(pbe, r2, seed, test_fraction):
    rng = np.random.default_rng(seed)
    test_mask = rng.random(len(r2)) < test_fraction
    test = [f for f, t in zip(r2, test_mask, strict=True) if t]
    pool = [f for f, t in zip(r2, test_mask, strict=True) if not t]
    test_keys = {geometry_key(f) for f in test}
    pbe_train = [f for f in pbe if geometry_key(f) not in test_keys]
    return pbe_train, pool, test


def subsample(pool, fraction, seed):
    """``fraction`` of the frames of every system (at least one each), nested across fractions."""
    if fraction >= 1.0:
        return list(pool)
    by_system = defaultdict(list)
    for frame in pool:
        by_system[system_key(frame)].append(frame)
    chosen = []
    for key in sorted(by_system):
        frames = by_system[key]
        order = np.random.default_rng([seed, len(key), sum(map(ord, key))]).permutation(len(frames))
        take = max(1, round(fraction * len(frames)))
        chosen.extend(frames[i] for i in order[:take])
    return chosen


def settings_for(num_frames, steps, batch_size, lr):
    epochs = max(1, math.ceil(steps / math.ceil(num_frames / batch_size)))
    return TrainerSettings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=min(50, steps // 10),
        ema_decay=0.99,
        weights=LossWeights(energy=5.0, forces=1.0, stress=0.01),
        progress=False,
    )


def test_errors(model, test):
    dataset = GraphDataset(test, model.config.cutoff, model.fidelities)
    errors = evaluate_errors(model, dataset, batch_size=64).errors["r2scan"]
    return {"energy_mae": errors["energy_mae"], "forces_mae": errors.get("forces_mae", float("nan"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="optimiser steps per training stage")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.25, 1.0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-above-minimum",
        type=float,
        default=5.0,
        help="keep dimer frames within this many eV/atom of their curve's minimum",
    )
    parser.add_argument("--max-force", type=float, default=20.0, help="keep dimer frames with |F| <= this, eV/Å")
    parser.add_argument(
        "--no-balance",
        dest="balance",
        action="store_false",
        help="do not repeat the r2SCAN frames in multi-fidelity training (by default they are about 1/3 of samples)",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--data", choices=("elemental", "teacher"), default="elemental")
    parser.add_argument("--teacher-dataset", type=Path, default=ROOT / "datasets" / "teacher")
    parser.add_argument("--max-compositions", type=int, default=0, help="teacher data: training compositions kept")
    parser.add_argument("--output", type=Path, help="results stem (default: results/data_efficiency[_teacher])")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "data_efficiency.md")
    args = parser.parse_args()
    if args.output is None:
        suffix = "_teacher" if args.data == "teacher" else ""
        args.output = ROOT / "benchmarks" / "results" / f"data_efficiency{suffix}"
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()

    if args.data == "teacher":
        pbe, pool, test = load_teacher_data(args.teacher_dataset, args.max_compositions, args.seed)
        pbe_all, r2_all = pbe, pool + test
    else:
        pbe_all, r2_all = load_data(args.max_above_minimum, args.max_force)
        pbe, pool, test = split(pbe_all, r2_all, args.seed, args.test_fraction)
    elements = tuple(sorted({int(z) for f in pbe_all + r2_all for z in f.numbers}))
    config = ModelConfig(elements=elements, fidelities=("pbe", "r2scan"), **MODEL)
    print(f"PBE train frames {len(pbe)}, r2SCAN pool {len(pool)}, r2SCAN test {len(test)}, elements {len(elements)}")
    results = {}
    work = Path(tempfile.mkdtemp(prefix="umfp-data-efficiency-"))

    pbe_model = None
    if {"transfer", "delta"} & set(args.methods):
        t = time.perf_counter()
        pbe_model = train_model(
            pbe,
            [],
            single_fidelity_config(config, "pbe"),
            settings_for(len(pbe), args.steps, args.batch_size, args.lr),
            work / "pbe",
            seed=args.seed,
        )
        print(f"PBE pre-training: {time.perf_counter() - t:.0f} s")

    for fraction in args.fractions:
        r2 = subsample(pool, fraction, args.seed)
        energy_only = [f.replace(forces=None, stress=None) for f in r2]
        for method in args.methods:
            t = time.perf_counter()
            stage = work / f"{method}-{fraction}"
            if method in ("mf", "mf_energy"):
                # r2SCAN frames repeated so they are about a third of what the model sees (balanced sampling)
                repeats = max(1, math.ceil(len(pbe) / (2 * len(r2)))) if args.balance else 1
                data = pbe + (r2 if method == "mf" else energy_only) * repeats
                model = train_model(
                    data,
                    [],
                    config,
                    settings_for(len(data), 2 * args.steps, args.batch_size, args.lr),
                    stage,
                    seed=args.seed,
                )
            elif method == "single":
                model = train_model(
                    r2,
                    [],
                    single_fidelity_config(config, "r2scan"),
                    settings_for(len(r2), 2 * args.steps, args.batch_size, args.lr),
                    stage,
                    seed=args.seed,
                )
            elif method == "transfer":
                # transfer_learning copies the weights into a new model; pbe_model itself is not changed
                model = transfer_learning(
                    pbe_model, r2, [], "r2scan", settings_for(len(r2), args.steps, args.batch_size, args.lr / 2), stage
                )
            else:
                model = delta_learning(
                    pbe_model,
                    pbe,
                    r2,
                    [],
                    "r2scan",
                    config,
                    settings_for(len(r2), args.steps, args.batch_size, args.lr),
                    stage,
                    seed=args.seed,
                )
            model.eval()
            errors = test_errors(model, test)
            results[f"{method}@{fraction}"] = {
                "method": method,
                "fraction": fraction,
                "r2scan_frames": len(r2),
                **errors,
                "seconds": time.perf_counter() - t,
            }
            print(
                f"{method:10s} {fraction:5.2f} ({len(r2):5d} r2SCAN frames): E {errors['energy_mae']:9.1f} meV/atom, "
                f"F {errors['forces_mae']:8.1f} meV/Å  [{time.perf_counter() - t:.0f} s]",
                flush=True,
            )

    total = time.perf_counter() - started
    params = count_parameters(build_model(config))
    meta = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seconds": total,
        "model": MODEL,
        "parameters": params,
        "steps_per_stage": args.steps,
        "batch_size": args.batch_size,
        "test_frames": len(test),
        "pbe_train_frames": len(pbe),
        "r2scan_pool_frames": len(pool),
        "seed": args.seed,
        "max_above_minimum_eV_per_atom": args.max_above_minimum,
        "max_force_eV_per_A": args.max_force,
        "balanced_multi_fidelity_sampling": args.balance,
        "data": args.data,
        "max_compositions": args.max_compositions,
        "train_compositions": len({system_key(f) for f in pool}) if args.data == "teacher" else None,
        "test_compositions": len({system_key(f) for f in test}) if args.data == "teacher" else None,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    plot(results, args.fractions, args.methods, args.output.with_suffix(".png"))
    if args.data == "teacher":
        write_teacher_section(results, args.fractions, args.methods, meta, args.docs, args.output.with_suffix(".png"))
    else:
        write_markdown(results, args.fractions, args.methods, meta, args.docs, args.output.with_suffix(".png"))
    print(f"done in {total / 60:.1f} min; {params} parameters; results in {args.output}.json/.png and {args.docs}")


def plot(results, fractions, methods, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method in methods:
        rows = [results[f"{method}@{f}"] for f in fractions]
        x = [r["r2scan_frames"] for r in rows]
        axes[0].plot(x, [r["energy_mae"] for r in rows], "o-", label=method)
        axes[1].plot(x, [r["forces_mae"] for r in rows], "o-", label=method)
    for ax, label in zip(axes, ("r2SCAN test energy MAE (meV/atom)", "r2SCAN test force MAE (meV/Å)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("r2SCAN training frames")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table_lines(results, fractions, methods):
    """The markdown table of r2SCAN test errors: one row per fraction, one column per method."""
    lines = [
        "r2SCAN test energy MAE (meV/atom) / force MAE (meV/Å):",
        "",
        "| r2SCAN fraction | frames | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for f in fractions:
        n = results[f"{methods[0]}@{f}"]["r2scan_frames"]
        cells = [f"{results[f'{m}@{f}']['energy_mae']:.1f} / {results[f'{m}@{f}']['forces_mae']:.0f}" for m in methods]
        lines.append(f"| {f:.0%} | {n} | " + " | ".join(cells) + " |")
    return lines


def write_markdown(results, fractions, methods, meta, path, png):
    sampling = (
        "repeat the r2SCAN frames so they are about a third of the samples"
        if meta["balanced_multi_fidelity_sampling"]
        else "sample PBE and r2SCAN frames in proportion to their counts"
    )
    lines = [
        "# Data efficiency: multi-fidelity vs. baselines (measured)",
        "",
        f"Written by `benchmarks/data_efficiency.py` ({meta['seconds'] / 60:.1f} min on {meta['threads']} CPU threads; "
        f"torch {meta['torch']}). Model: {meta['parameters']} parameters, {MODEL}. "
        f"{meta['steps_per_stage']} optimiser steps per stage, batch {meta['batch_size']}; every method gets "
        f"{2 * meta['steps_per_stage']} steps in total; MSE loss with weights 5 (energy per atom, eV), "
        f"1 (forces, eV/Å), 0.01 (stress, GPa). Multi-fidelity runs {sampling}. "
        f"r2SCAN test set: {meta['test_frames']} frames "
        f"(dimers and MatPES crystals; their PBE twins are excluded from training); PBE training frames: "
        f"{meta['pbe_train_frames']}. Dimer frames more than {meta['max_above_minimum_eV_per_atom']} eV/atom above "
        f"their curve's minimum or with a force above {meta['max_force_eV_per_A']} eV/Å (the hard-core wall, up to "
        "170 eV/atom) are left out of every set.",
        "",
        *table_lines(results, fractions, methods),
    ]
    lines += ["", f"![learning curves]({os.path.relpath(png, path.parent)})", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


TEACHER_BEGIN = "<!-- data_efficiency --data teacher: begin -->"
TEACHER_END = "<!-- data_efficiency --data teacher: end -->"


def write_teacher_section(results, fractions, methods, meta, path, png):
    """Write (or replace) the compounds section of the docs page, leaving the elemental section as it is."""
    lines = [
        TEACHER_BEGIN,
        "## Compounds: the paired teacher dataset (measured)",
        "",
        f"Written by `benchmarks/data_efficiency.py --data teacher` ({meta['seconds'] / 60:.1f} min on "
        f"{meta['threads']} CPU threads; torch {meta['torch']}). Data: datasets/teacher, CHGNet 0.3.0 labels as "
        "`pbe` and CHGNet r2SCAN labels as `r2scan` on the same structures; "
        f"{meta['train_compositions']} training compositions "
        f"({meta['pbe_train_frames']} PBE frames, {meta['r2scan_pool_frames']} r2SCAN frames in the pool); the test "
        f"set is every r2SCAN frame of the {meta['test_compositions']} test compositions ({meta['test_frames']} "
        "frames), never seen in training at either fidelity. Same model and recipe as above: "
        f"{meta['parameters']} parameters, {meta['steps_per_stage']} steps per stage, every method "
        f"{2 * meta['steps_per_stage']} steps in total, batch {meta['batch_size']}.",
        "",
        *table_lines(results, fractions, methods),
    ]
    lines += ["", f"![learning curves on compounds]({os.path.relpath(png, path.parent)})", TEACHER_END]
    text = path.read_text() if path.is_file() else ""
    if TEACHER_BEGIN in text and TEACHER_END in text:
        head, rest = text.split(TEACHER_BEGIN, 1)
        tail = rest.split(TEACHER_END, 1)[1]
        text = head + "\n".join(lines) + tail
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
