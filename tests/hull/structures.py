"""Small real crystal structures for the model-driven tests (Li C O Na Si Cu)."""

from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal


def li2o() -> Atoms:
    return crystal(["O", "Li"], basis=[(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=225, cellpar=[4.61] * 3 + [90] * 3)


def candidates() -> list[Atoms]:
    structures = {
        "SiC": bulk("SiC", "zincblende", a=4.36),
        "Si-diamond": bulk("Si", "diamond", a=5.47),
        "Cu-fcc": bulk("Cu", "fcc", a=3.63),
        "Cu-bcc": bulk("Cu", "bcc", a=2.89),
        "Li2O": li2o(),
        "NaCu": bulk("NaCu", "rocksalt", a=5.2),
    }
    out = []
    for name, atoms in structures.items():
        atoms.info["id"] = name
        out.append(atoms)
    return out
