"""The mf-universal release goals on held-out data, for one model: the table the v1 card and note quote.

Every number comes from data the model did not train on, split as its training run split it:

- teacher fidelities (``pbe_chgnet``, ``r2scan_chgnet``), test compositions of ``datasets/teacher``: energy MAE
  <= 20 meV/atom, force MAE <= 50 meV/Å (``errors_by_source.py``);
- real MP GGA(+U) task frames of held-out materials at ``pbe``: energy <= 30 meV/atom, forces <= 60 meV/Å;
- MP elemental polymorph hull at ``pbe``, polymorphs held out of training: MAE <= 0.05 eV/atom, F1 >= 0.6
  (``element_polymorphs_hull.py --held-out-of CONFIG``);
- r2SCAN formation energies of Li2O, Li2O2, Fe3O4, Fe2O3 against MP: MAE <= 0.05 eV/atom
  (``r2scan_formation_energies.py``);
- graceful fallback: on held-out teacher compositions that hold an element never seen at r2SCAN in real DFT,
  the ``r2scan`` head is no worse than ``pbe_matpes`` against the r2SCAN teacher. The two fidelities have
  different total-energy scales, so both are compared on energies relative to their composition group's
  mean (rattles, strains and relaxation steps of one composition), per atom.

Run: python benchmarks/release_goals.py --model CHECKPOINT --config configs/mf-universal-v1.yaml
     [--output benchmarks/results/release_goals_<name>.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from errors_by_source import errors_table

from universal_mfp.data.coverage import ElementCoverage, is_teacher_labelled
from universal_mfp.inference import predict_structures
from universal_mfp.models import LoadedModel, load_model
from universal_mfp.training.config import RunConfig, load_run_config
from universal_mfp.training.run import read_sources, run_splits

HERE = Path(__file__).resolve().parent
TEACHER_FIDELITIES = ("pbe_chgnet", "r2scan_chgnet")
R2SCAN_TEACHER = "r2scan_chgnet"


def _goal(value: float, limit: float, *, at_least: bool = False) -> dict[str, Any]:
    met = value >= limit if at_least else value <= limit
    return {"value": round(float(value), 4), "limit": limit, "met": bool(met)}


def _script(name: str, *arguments: str) -> dict[str, Any]:
    """Run ``benchmarks/<name>.py`` with ``--output`` into a temporary file and return what it wrote."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "out.json"
        command = [sys.executable, str(HERE / f"{name}.py"), *arguments, "--output", str(output)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        return json.loads(output.read_text())


def error_goals(table: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The teacher and real-MP goals from the per-source error table's test rows."""
    goals: dict[str, dict[str, Any]] = {}
    for row in table:
        if row["split"] != "test":
            continue
        if row["source"].startswith("teacher:") and row["fidelity"] in TEACHER_FIDELITIES:
            goals[f"{row['fidelity']}_test_energy_mae_meV"] = _goal(row["energy_mae"], 20.0)
            goals[f"{row['fidelity']}_test_forces_mae_meV_per_A"] = _goal(row["forces_mae"], 50.0)
        if row["source"] == "mp_gga_task_frames" and row["fidelity"] == "pbe":
            goals["mp_tasks_test_pbe_energy_mae_meV"] = _goal(row["energy_mae"], 30.0)
            goals["mp_tasks_test_pbe_forces_mae_meV_per_A"] = _goal(row["forces_mae"], 60.0)
    return goals


def fallback_goal(loaded: LoadedModel, config: RunConfig) -> dict[str, Any]:
    """``r2scan`` vs ``pbe_matpes`` against the r2SCAN teacher on compositions with an element unseen at r2SCAN."""
    coverage = ElementCoverage.from_metadata(loaded.metadata)
    if coverage is None:
        raise SystemExit("the checkpoint records no element coverage; the fallback goal needs it")
    real_r2scan = coverage.dft.get("r2scan", frozenset())
    frames = read_sources(config)
    model = loaded.model
    splits, _, _ = run_splits(config, frames, model.fidelities, model.config.elements, cutoff=model.config.cutoff)
    groups: dict[str, list] = defaultdict(list)
    for i in splits["test"]:
        frame = frames[i]
        teacher_r2scan = frame.fidelity == R2SCAN_TEACHER and is_teacher_labelled(frame) and frame.energy is not None
        if teacher_r2scan and set(frame.numbers.tolist()) - real_r2scan:
            groups[str(frame.info.get("composition_group"))].append(frame)
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    if not groups:
        raise SystemExit("no held-out teacher composition with an element unseen at r2SCAN")
    errors: dict[str, list[float]] = {"r2scan": [], "pbe_matpes": []}
    for members in groups.values():
        label = np.array([f.energy / f.num_atoms for f in members])
        for fidelity, values in errors.items():
            predictions = predict_structures(
                loaded.model, members, fidelity=fidelity, compute_forces=False, compute_stress=False
            )
            predicted = np.array([p.energy_per_atom for p in predictions])
            deviation = (predicted - predicted.mean()) - (label - label.mean())
            values.extend(np.abs(deviation).tolist())
    mae = {fidelity: 1000 * float(np.mean(values)) for fidelity, values in errors.items()}
    return {
        "value": round(mae["r2scan"], 2),
        "limit": round(mae["pbe_matpes"], 2),
        "met": mae["r2scan"] <= mae["pbe_matpes"],
        "unit": "meV/atom, energies relative to the composition group's mean",
        "groups": len(groups),
        "frames": len(errors["r2scan"]),
    }


def main() -> None:
    """Measure every goal and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint folder or registered name")
    parser.add_argument("--config", type=Path, required=True, help="the model's training config (its splits)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    loaded = load_model(args.model)
    config = load_run_config(args.config)
    table = errors_table(loaded.model, config, ("test",))
    goals = error_goals(table)
    hull = _script("element_polymorphs_hull", "--model", args.model, "--held-out-of", str(args.config))
    held = hull["held_out_metrics"]
    goals["polymorph_hull_pbe_held_out_mae_eV"] = _goal(held["MAE"], 0.05)
    goals["polymorph_hull_pbe_held_out_F1"] = _goal(held["F1"], 0.6, at_least=True)
    formation = _script("r2scan_formation_energies", "--model", args.model)
    goals["r2scan_formation_Li_Fe_O_mae_eV"] = _goal(formation["r2scan"]["formation_mae"], 0.05)
    goals["r2scan_fallback_no_worse_than_pbe_matpes"] = fallback_goal(loaded, config)
    for name, goal in goals.items():
        print(f"{name:48s} {goal['value']:>10} (limit {goal['limit']}) {'met' if goal['met'] else 'NOT met'}")
    if args.output is not None:
        result = {"model": args.model, "config": args.config.as_posix(), "goals": goals, "errors_by_source": table}
        args.output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
