"""Pairing rate: GGA/r2SCAN pairs verified per second on perturbed real structures.

Base structures are real (../shared/data/frames: MP Li-Fe-O entries, MP element polymorphs,
MatPES element references; periodic, at most 40 atoms). Each becomes a material with a GGA record
(the structure itself) and an r2SCAN record (isotropic strain of -3..+3 % in volume, a random
+-1 % shear strain, Gaussian displacements of 0.02 Å). One material in ten gets, instead, another
base structure of the same formula as its r2SCAN record (an expected mismatch).

    python benchmarks/pairing_rate.py [--materials 600] [--workers 1]

Beyond the number of base structures (about 1,100), bases repeat under new material ids, which
the cross-material check then (correctly) reports as ambiguous duplicates.

Writes benchmarks/results/pairing_rate.json and prints the rate and the extrapolated time for
30,000 materials.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from ase.io import read
from universal_mfp_pipelines.pair import pair_records

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UMFP_SHARED_DATA", ROOT.parent / "shared" / "data"))
FILES = ("mp_LiFeO_entries.extxyz", "mp_pbe_element_polymorphs.extxyz", "matpes_element_refs_PBE.extxyz")


def base_structures(max_atoms: int = 40):
    atoms_list = []
    for name in FILES:
        atoms_list += [a for a in read(SHARED / "frames" / name, ":") if a.pbc.all() and len(a) <= max_atoms]
    return atoms_list


def make_records(n_materials: int, seed: int = 0):
    from pymatgen.core import Composition

    rng = np.random.default_rng(seed)
    bases = base_structures()
    bases = [bases[j] for j in rng.permutation(len(bases))]  # a mix of all files, each base used once
    by_formula = defaultdict(list)
    for i, a in enumerate(bases):
        by_formula[Composition(a.get_chemical_formula()).reduced_formula].append(i)
    records = []
    for k in range(n_materials):
        i = k % len(bases)
        base = bases[i]
        formula = Composition(base.get_chemical_formula()).reduced_formula
        mid = f"bench-{k}"
        cell = base.cell.array
        records.append(
            {
                "record_id": f"{mid}:gga",
                "material_id": mid,
                "fidelity": "pbe",
                "run_type": "GGA",
                "formula": formula,
                "numbers": base.numbers.tolist(),
                "positions": base.positions.tolist(),
                "cell": cell.tolist(),
                "energy": -1.0,
            }
        )
        partner = base
        others = [j for j in by_formula[formula] if j != i and len(bases[j]) != len(base)]
        if k % 10 == 9 and others:
            partner = bases[others[k % len(others)]]
        scale = (1 + rng.uniform(-0.03, 0.03)) ** (1 / 3)
        shear = np.eye(3) + rng.uniform(-0.01, 0.01, (3, 3))
        deform = scale * (shear + shear.T) / 2
        frac = partner.get_scaled_positions()
        new_cell = partner.cell.array @ deform
        positions = frac @ new_cell + rng.normal(0, 0.02, (len(partner), 3))
        records.append(
            {
                "record_id": f"{mid}:r2scan",
                "material_id": mid,
                "fidelity": "r2scan",
                "run_type": "r2SCAN",
                "formula": formula,
                "numbers": partner.numbers.tolist(),
                "positions": positions.tolist(),
                "cell": new_cell.tolist(),
                "energy": -1.0,
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--materials", type=int, default=600)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pairing_rate.json")
    args = parser.parse_args()
    records = make_records(args.materials)
    start = time.perf_counter()
    _, summary = pair_records(records, workers=args.workers)
    elapsed = time.perf_counter() - start
    rate = args.materials / elapsed
    result = {
        "benchmark": "pairing_rate",
        "materials": args.materials,
        "records": len(records),
        "workers": args.workers,
        "elapsed_s": round(elapsed, 3),
        "pairs_per_second": round(rate, 2),
        "extrapolated_30000_materials_min": round(30000 / rate / 60, 2),
        "status": summary["status"],
        "reasons": summary["reasons"],
        "tolerances": summary["tolerances"],
        "base_structures": FILES,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"paired {args.materials} materials in {elapsed:.1f} s: {rate:.1f} pairs/s "
        f"(30,000 materials: {result['extrapolated_30000_materials_min']} min with {args.workers} worker(s))"
    )
    print(f"status: {summary['status']}  reasons: {summary['reasons']}")


if __name__ == "__main__":
    main()
