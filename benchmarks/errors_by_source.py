"""Errors of a trained model per data source, split and fidelity (energy meV/atom, forces meV/Å, stress GPa).

Re-reads a training run's data through its config, re-creates its split, and evaluates the model on every
(source file, split) group, so a model card can say where the model is accurate and where it is not.

Run: python benchmarks/errors_by_source.py --model mf-universal --config configs/mf-universal.yaml
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from universal_mfp.data.coverage import is_teacher_labelled
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.frame import Frame
from universal_mfp.model.potential import MultiFidelityPotential
from universal_mfp.models import load_model
from universal_mfp.training.config import RunConfig, load_run_config
from universal_mfp.training.evaluation import evaluate_errors
from universal_mfp.training.run import read_sources, run_splits


def source_name(frame: Frame) -> str:
    """The data source a frame came from: the teacher (``teacher:chgnet:r2scan``) or the file name's stem."""
    if is_teacher_labelled(frame):
        return str(frame.info.get("source"))
    return Path(str(frame.info.get("frame_id", "?")).split(":")[0]).name


def errors_table(
    model: MultiFidelityPotential, config: RunConfig, splits_wanted: tuple[str, ...] = ("train", "val", "test")
) -> list[dict[str, Any]]:
    """Energy, force and stress errors per (source, split, fidelity) of the run's data, split as in training."""
    frames = read_sources(config)
    splits, _, _ = run_splits(config, frames, model.fidelities, model.config.elements, cutoff=model.config.cutoff)
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for split, indices in splits.items():
        if split not in splits_wanted:
            continue
        for i in indices:
            groups[(source_name(frames[i]), split)].append(frames[i])
    table = []
    for (source, split), subset in sorted(groups.items()):
        errors = evaluate_errors(model, GraphDataset(subset, model.config.cutoff, model.fidelities)).errors
        for fidelity, values in errors.items():
            if values.get("n_energy") or values.get("n_forces"):
                table.append({"source": source, "split": split, "fidelity": fidelity, **values})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the table")
    args = parser.parse_args()
    table = errors_table(load_model(args.model).model, load_run_config(args.config))
    print(f"{'source':45s} {'split':5s} {'fidelity':13s} {'n':>5s} {'E MAE':>9s} {'F MAE':>9s} {'S MAE':>7s}")
    for row in table:
        e, f, s = (row.get(f"{q}_mae", float("nan")) for q in ("energy", "forces", "stress"))
        n = row.get("n_energy") or row.get("n_forces")
        print(f"{row['source']:45s} {row['split']:5s} {row['fidelity']:13s} {n:5d} {e:9.1f} {f:9.1f} {s:7.3f}")
    if args.output is not None:
        args.output.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
