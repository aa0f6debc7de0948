"""Model vs Materials Project r2SCAN energies of the Li-Fe-O compounds whose structures the data holds.

The data has no r2SCAN compound with a structure to train on. ``raw/rxnnet`` lists MP's r2SCAN total energies
and formation enthalpies (per atom, no structures) for about 1,200 materials by mp-id. Four of them (Li2O,
Li2O2, Fe2O3, Fe3O4) are among the MP GGA/GGA+U entries of ``frames/mp_LiFeO_entries.extxyz``, whose
structures are MP's GGA(+U)-relaxed ones. This script screens them with ``universal_mfp.hull.screen_structures``
at each MatPES fidelity against the bundled MatPES elemental ground states only (the structures the DFT
references use: bcc Li mp-51, bcc Fe mp-13, O2 mp-611836 at r2SCAN), and compares the model's energies and
formation energies per atom with MP's r2SCAN values. MP's r2SCAN and MatPES' r2SCAN agree on these
elements: MP's formation enthalpies follow from MP's compound energies and the MatPES elemental energies to
within 3 meV/atom (``tests/hull/test_r2scan_formation_reference.py``).

The GGA(+U) geometry is not the r2SCAN one; near a minimum that costs a few meV/atom, small next to the errors
measured here. The r2SCAN energies are MP's, not a label any model here was trained on.

Usage: ``python benchmarks/r2scan_formation_energies.py --model NAME_OR_CHECKPOINT [--output f.json]``
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np

from universal_mfp.data.frame import Frame
from universal_mfp.data.readers import read_extxyz
from universal_mfp.hull import screen_structures

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FIDELITIES = ("r2scan", "pbe_matpes")  # the MatPES setups, whose elemental ground states are bundled


def read_mp_r2scan(path: Path) -> dict[str, dict[str, float]]:
    """MP r2SCAN energy and formation enthalpy per atom (eV/atom) by mp-id, where the table has them."""
    out = {}
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["e_r2scan"] and row["hf_r2scan"]:
                out[row["likely_mpid"]] = {"energy": float(row["e_r2scan"]), "formation": float(row["hf_r2scan"])}
    return out


def compounds_with_structures(entries: list[Frame], table: dict[str, dict[str, float]]) -> list[Frame]:
    """The entries (one per mp-id) whose mp-id has an MP r2SCAN energy; ``info["id"]`` is the mp-id."""
    found = {}
    for frame in entries:
        match = re.match(r"(mp-\d+)", str(frame.info.get("entry_id", "")))
        if match and match.group(1) in table and match.group(1) not in found:
            found[match.group(1)] = frame.replace(info={**frame.info, "id": match.group(1)})
    return list(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name or checkpoint folder")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, default=None, help="write the table (JSON)")
    args = parser.parse_args()

    from universal_mfp.hull.cli import resolve_model

    model = resolve_model(args.model)
    table = read_mp_r2scan(args.data / "raw" / "rxnnet" / "rxnnet_mp_gga_r2scan_energies.csv.gz")
    compounds = compounds_with_structures(read_extxyz(args.data / "frames" / "mp_LiFeO_entries.extxyz"), table)
    ids = [str(f.info["id"]) for f in compounds]
    dft_formation = np.array([table[i]["formation"] for i in ids])
    dft_energy = np.array([table[i]["energy"] for i in ids])
    rows = {}
    for fidelity in (f for f in FIDELITIES if f in model.fidelities):
        result = screen_structures(model, compounds, fidelity=fidelity, candidates_compete=False)
        rows[fidelity] = {row.id: row for row in result.rows}
    record: dict[str, object] = {"model": args.model, "compounds": ids, "dft_formation": dft_formation.tolist()}
    print(f"{'mp-id':<10s} {'formula':<8s} {'r2SCAN Hf':>9s}" + "".join(f" {f:>10s}" for f in rows))
    for k, frame in enumerate(compounds):
        predicted = "".join(f" {rows[f][ids[k]].formation_energy_per_atom:10.3f}" for f in rows)
        print(f"{ids[k]:<10s} {frame.formula:<8s} {dft_formation[k]:9.3f}{predicted}")
    for fidelity, by_id in rows.items():
        formation = np.array([by_id[i].formation_energy_per_atom for i in ids])
        mae = float(np.mean(np.abs(formation - dft_formation)))
        print(f"{fidelity}: formation energy MAE vs MP r2SCAN {1000 * mae:.0f} meV/atom")
        record[fidelity] = {"formation": formation.tolist(), "formation_mae": mae}
    if "r2scan" in rows:
        energy = np.array([rows["r2scan"][i].energy_per_atom for i in ids])
        mae = float(np.mean(np.abs(energy - dft_energy)))
        print(f"r2scan: total energy MAE vs MP r2SCAN {1000 * mae:.0f} meV/atom")
        record["r2scan_energy_mae"] = mae
    if args.output is not None:
        args.output.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
