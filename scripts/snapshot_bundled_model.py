"""Write the regression snapshot of a bundled model: predictions on a few fixed structures.

The test ``tests/test_bundled_model.py`` compares the installed model against this file, so any change
to the weights, the architecture code or the data layer that moves a prediction is caught.

Run (after bundling): python scripts/snapshot_bundled_model.py --model mf-universal
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ase import Atoms
from ase.build import bulk, molecule

from universal_mfp.models import load_model

ROOT = Path(__file__).resolve().parents[1]


def snapshot_structures() -> dict[str, Atoms]:
    """Fixed structures: crystals (rattled deterministically) and a molecule."""
    si = bulk("Si", "diamond", a=5.43) * (2, 1, 1)
    si.rattle(0.05, seed=1)
    cu = bulk("Cu", "fcc", a=3.61)
    mgo = bulk("MgO", "rocksalt", a=4.21)
    mgo.rattle(0.03, seed=2)
    lifeo2 = Atoms(
        "LiFeO2",
        scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]],
        cell=[[0, 2.9, 2.9], [2.9, 0, 2.9], [2.9, 2.9, 0]],
        pbc=True,
    )
    water = molecule("H2O")
    # two Li atoms at 0.7 Å: inside the pair repulsion's cutoff (0.97 Å for Li-Li at 0.38 covalent sums)
    close_pair = Atoms("Li2", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.7]], pbc=False)
    return {
        "Si16-rattled": si,
        "Cu-fcc": cu,
        "MgO-rattled": mgo,
        "LiFeO2": lifeo2,
        "H2O": water,
        "Li2-at-0.7": close_pair,
    }


def main() -> None:
    """Evaluate the model on the snapshot structures at every fidelity and write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mf-universal")
    args = parser.parse_args()
    loaded = load_model(args.model, dtype="float64")
    structures = snapshot_structures()
    record = {
        "model": args.model,
        "structures": {
            name: {
                "numbers": atoms.numbers.tolist(),
                "positions": atoms.positions.tolist(),
                "cell": atoms.cell.array.tolist(),
                "pbc": atoms.pbc.tolist(),
            }
            for name, atoms in structures.items()
        },
        "predictions": {},
    }
    for fidelity in loaded.fidelities:
        predictions = loaded.predict(list(structures.values()), fidelity=fidelity)
        record["predictions"][fidelity] = {
            name: {
                "energy": p.energy,
                "forces": p.forces.tolist(),
                "stress": None if p.stress is None else p.stress.tolist(),
            }
            for name, p in zip(structures, predictions, strict=True)
        }
    path = ROOT / "tests" / "snapshots" / f"{args.model}.json"
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
