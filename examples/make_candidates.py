"""Write examples/candidates.extxyz: a handful of textbook crystals to screen (built with ase.build).

Elemental polymorphs (the ground state and competing structures, at their experimental or typical
lattice constants) and a few binary compounds. Run: python examples/make_candidates.py
"""

from pathlib import Path

from ase.build import bulk
from ase.io import write

CANDIDATES = [
    ("Si-diamond", bulk("Si", "diamond", a=5.43)),
    ("Si-fcc", bulk("Si", "fcc", a=3.85)),
    ("Si-bcc", bulk("Si", "bcc", a=3.08)),
    ("Al-fcc", bulk("Al", "fcc", a=4.05)),
    ("Al-bcc", bulk("Al", "bcc", a=3.24)),
    ("Cu-fcc", bulk("Cu", "fcc", a=3.61)),
    ("Cu-bcc", bulk("Cu", "bcc", a=2.87)),
    ("Fe-bcc", bulk("Fe", "bcc", a=2.87)),
    ("Fe-fcc", bulk("Fe", "fcc", a=3.60)),
    ("Mg-hcp", bulk("Mg", "hcp", a=3.21, c=5.21)),
    ("Mg-fcc", bulk("Mg", "fcc", a=4.53)),
    ("Li-bcc", bulk("Li", "bcc", a=3.44)),
    ("C-diamond", bulk("C", "diamond", a=3.567)),
    ("SiC-zincblende", bulk("SiC", "zincblende", a=4.36)),
    ("MgO-rocksalt", bulk("MgO", "rocksalt", a=4.21)),
    ("NaCl-rocksalt", bulk("NaCl", "rocksalt", a=5.64)),
]


def main() -> None:
    """Write the candidates next to this script."""
    frames = []
    for name, atoms in CANDIDATES:
        atoms.info["id"] = name
        frames.append(atoms)
    path = Path(__file__).with_name("candidates.extxyz")
    write(path, frames, format="extxyz")


if __name__ == "__main__":
    main()
