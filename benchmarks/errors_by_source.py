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

from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.splits import split_by_group
from universal_mfp.models import load_model
from universal_mfp.training.config import load_run_config
from universal_mfp.training.evaluation import evaluate_errors
from universal_mfp.training.run import read_sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the table")
    args = parser.parse_args()
    model = load_model(args.model).model
    config = load_run_config(args.config)
    frames = read_sources(config)
    splits = split_by_group(
        frames, val_fraction=config.data.val_fraction, test_fraction=config.data.test_fraction, seed=config.seed
    )
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for split, indices in splits.items():
        for i in indices:
            source = Path(str(frames[i].info.get("frame_id", "?")).split(":")[0]).name
            groups[(source, split)].append(frames[i])
    table = []
    print(f"{'source':45s} {'split':5s} {'fidelity':8s} {'n':>5s} {'E MAE':>9s} {'F MAE':>9s} {'S MAE':>7s}")
    for (source, split), subset in sorted(groups.items()):
        errors = evaluate_errors(model, GraphDataset(subset, model.config.cutoff, model.fidelities)).errors
        for fidelity, values in errors.items():
            if not values.get("n_energy"):
                continue
            row = {"source": source, "split": split, "fidelity": fidelity, **values}
            table.append(row)
            e, f, s = (values.get(f"{q}_mae", float("nan")) for q in ("energy", "forces", "stress"))
            print(f"{source:45s} {split:5s} {fidelity:8s} {values['n_energy']:5d} {e:9.1f} {f:9.1f} {s:7.3f}")
    if args.output is not None:
        args.output.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
