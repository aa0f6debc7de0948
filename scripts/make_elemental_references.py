"""Write the bundled elemental reference structures for energies above hull.

Reads the MatPES elemental ground states (PBE and r2SCAN) shipped in the ``matcalc`` 0.7.0 sdist
(``src/matcalc/elemental_refs``, BSD-3-Clause, Copyright (c) 2023 Materialyze AI), as copied into
``../shared/data/frames/matpes_element_refs_{PBE,r2SCAN}.extxyz``, and writes structures only (no
energies, forces or stresses) to ``universal_mfp/hull/data/elemental_references.extxyz``. Each frame
carries ``ref_id`` (``<element>-<functional>``), ``structure_functional`` (the functional whose ground
state it is), ``matpes_id`` and ``mp_id``. Energies are always recomputed by the model at the fidelity
asked for, so the hull stays self-consistent.

Usage: ``python scripts/make_elemental_references.py [--shared-data ../shared/data]``
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import ase.io
from ase import Atoms

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "universal_mfp" / "hull" / "data" / "elemental_references.extxyz"
FUNCTIONALS = ("PBE", "r2SCAN")


def structure_only(atoms: Atoms, functional: str) -> Atoms:
    """Return a copy of ``atoms`` with geometry and provenance only (no labels)."""
    symbols = set(atoms.get_chemical_symbols())
    if len(symbols) != 1:
        raise ValueError(f"{atoms.info.get('matpes_id')}: not an elemental structure ({sorted(symbols)})")
    element = symbols.pop()
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)
    out.info = {
        "ref_id": f"{element}-{functional}",
        "structure_functional": functional,
        "matpes_id": str(atoms.info.get("matpes_id", "")),
        "mp_id": str(atoms.info.get("mp_id", "")),
    }
    return out


def main() -> None:
    """Read the MatPES elemental references and write the bundled structure file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    frames = []
    for functional in FUNCTIONALS:
        source = args.shared_data / "frames" / f"matpes_element_refs_{functional}.extxyz"
        structures = [structure_only(atoms, functional) for atoms in ase.io.read(source, index=":")]
        structures.sort(key=lambda a: a.info["ref_id"])
        print(f"{source.name}: {len(structures)} elemental ground states")
        frames.extend(structures)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(args.output, frames, format="extxyz")
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {len(frames)} structures to {args.output} (sha256 {digest})")


if __name__ == "__main__":
    main()
