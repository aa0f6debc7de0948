"""Seed structures for generated crystals: common prototypes, pymatgen's AFLOW library, and real MP structures.

A ``Prototype`` is a small crystal with placeholder elements and, for each placeholder, a *role*: an
oxidation state (ionic prototypes, so every decoration that respects it is charge-balanced) or an element
class (``metal``, ``tm``, ``pmain``... for intermetallics). ``substitution`` decorates them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pymatgen.core import Lattice, Structure

logger = logging.getLogger(__name__)

Role = int | str  # an oxidation state, or the name of an element class


@dataclass(frozen=True)
class Prototype:
    """A seed crystal and the roles of its placeholder elements.

    Attributes:
        name: unique name (``rocksalt``, ``aflow:AB_cF8_225_a_b``, ``real:mp-149``).
        family: what kind of seed it is (``common``, ``aflow``, ``real``, ``elemental``).
        structure: the crystal with its placeholder (reference) elements, at the reference's volume.
        role_variants: each a mapping placeholder element -> role; a decoration picks one variant.
        weight: relative frequency in the plan.
    """

    name: str
    family: str
    structure: Structure
    role_variants: tuple[Mapping[str, Role], ...]
    weight: float = 1.0


def _sg(spacegroup: str, lattice: Lattice, species: list[str], coords: list[list[float]]) -> Structure:
    structure = Structure.from_spacegroup(spacegroup, lattice, species, coords)
    return structure.get_primitive_structure()


def _rocksalt_quaternary() -> Structure:
    """Conventional rocksalt (8 atoms) with two cations and two anions ordered on their sublattices."""
    return Structure(
        Lattice.cubic(5.64),
        ["Na", "K", "Na", "K", "Cl", "Br", "Br", "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5] * 3],
    )


def _double_perovskite() -> Structure:
    """Rocksalt-ordered double perovskite A2BB'X6 (Fm-3m, 10 atoms in the primitive cell)."""
    return _sg(
        "Fm-3m",
        Lattice.cubic(7.9),
        ["Sr", "Fe", "Mo", "O"],
        [[0.25, 0.25, 0.25], [0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0, 0]],
    )


def _quaternary_heusler() -> Structure:
    """LiMgPdSn-type quaternary Heusler (F-43m, 4 atoms)."""
    return _sg(
        "F-43m",
        Lattice.cubic(5.9),
        ["Co", "Fe", "Mn", "Si"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]],
    )


def common_prototypes() -> list[Prototype]:
    """Rocksalt, zincblende, wurtzite, fluorite, rutile, perovskite, spinel, layered, Heusler and more.

    Each comes with the charge-balanced role variants it is decorated with.
    """
    rocksalt = _sg("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    hexagonal = Lattice.hexagonal
    protos = [
        Prototype("rocksalt", "common", rocksalt, ({"Na": 1, "Cl": -1}, {"Na": 2, "Cl": -2}, {"Na": 3, "Cl": -3}), 3.0),
        Prototype(
            "cesium_chloride",
            "common",
            _sg("Pm-3m", Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
            ({"Cs": 1, "Cl": -1}, {"Cs": "metal", "Cl": "metal"}, {"Cs": "tm", "Cl": "pmain"}),
            3.0,
        ),
        Prototype(
            "zincblende",
            "common",
            _sg("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
            ({"Zn": 2, "S": -2}, {"Zn": 3, "S": -3}, {"Zn": 1, "S": -1}),
            2.0,
        ),
        Prototype(
            "wurtzite",
            "common",
            _sg("P6_3mc", hexagonal(3.25, 5.21), ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
            ({"Zn": 2, "O": -2}, {"Zn": 3, "O": -3}),
            1.5,
        ),
        Prototype(
            "nickel_arsenide",
            "common",
            _sg("P6_3/mmc", hexagonal(3.62, 5.03), ["Ni", "As"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]]),
            ({"Ni": 2, "As": -2}, {"Ni": 3, "As": -3}, {"Ni": "tm", "As": "pmain"}),
            1.5,
        ),
        Prototype(
            "fluorite",
            "common",
            _sg("Fm-3m", Lattice.cubic(5.46), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
            ({"Ca": 2, "F": -1}, {"Ca": 4, "F": -2}),
            2.0,
        ),
        Prototype(
            "antifluorite",
            "common",
            _sg("Fm-3m", Lattice.cubic(4.62), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
            ({"Li": 1, "O": -2}, {"Li": 2, "O": -4}),
            1.5,
        ),
        Prototype(
            "rutile",
            "common",
            _sg("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]),
            ({"Ti": 4, "O": -2}, {"Ti": 2, "O": -1}),
            2.0,
        ),
        Prototype(
            "cadmium_iodide_layered",
            "common",
            _sg("P-3m1", hexagonal(4.24, 6.84), ["Cd", "I"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]]),
            ({"Cd": 2, "I": -1}, {"Cd": 4, "I": -2}),
            2.0,
        ),
        Prototype(
            "corundum",
            "common",
            _sg("R-3c", hexagonal(4.76, 12.99), ["Al", "O"], [[0, 0, 0.352], [0.306, 0, 0.25]]),
            ({"Al": 3, "O": -2},),
            1.5,
        ),
        Prototype(
            "rhenium_trioxide",
            "common",
            _sg("Pm-3m", Lattice.cubic(3.75), ["Re", "O"], [[0, 0, 0], [0.5, 0, 0]]),
            ({"Re": 6, "O": -2}, {"Re": 3, "O": -1}),
            1.5,
        ),
        Prototype(
            "perovskite",
            "common",
            _sg("Pm-3m", Lattice.cubic(3.9), ["Sr", "Ti", "O"], [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]]),
            (
                {"Sr": 2, "Ti": 4, "O": -2},
                {"Sr": 1, "Ti": 2, "O": -1},
                {"Sr": 3, "Ti": 3, "O": -2},
                {"Sr": 1, "Ti": 5, "O": -2},
            ),
            3.0,
        ),
        Prototype(
            "spinel",
            "common",
            _sg(
                "Fd-3m",
                Lattice.cubic(8.08),
                ["Mg", "Al", "O"],
                [[0, 0, 0], [0.625, 0.625, 0.625], [0.3874, 0.3874, 0.3874]],  # origin choice 1
            ),
            ({"Mg": 2, "Al": 3, "O": -2}, {"Mg": 4, "Al": 2, "O": -2}),
            1.5,
        ),
        Prototype(
            "layered_delafossite",
            "common",
            _sg("R-3m", hexagonal(2.82, 14.05), ["Li", "Co", "O"], [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.24]]),
            ({"Li": 1, "Co": 3, "O": -2},),
            2.0,
        ),
        Prototype(
            "double_perovskite",
            "common",
            _double_perovskite(),
            ({"Sr": 2, "Fe": 3, "Mo": 5, "O": -2}, {"Sr": 2, "Fe": 2, "Mo": 6, "O": -2}),
            1.5,
        ),
        Prototype(
            "rocksalt_quaternary",
            "common",
            _rocksalt_quaternary(),
            ({"Na": 1, "K": 1, "Cl": -1, "Br": -1}, {"Na": 2, "K": 2, "Cl": -2, "Br": -2}),
            2.0,
        ),
        Prototype(
            "heusler",
            "common",
            _sg("Fm-3m", Lattice.cubic(5.75), ["Cu", "Mn", "Al"], [[0.25, 0.25, 0.25], [0, 0, 0], [0.5, 0.5, 0.5]]),
            ({"Cu": "tm", "Mn": "tm", "Al": "pmain"},),
            2.0,
        ),
        Prototype(
            "half_heusler",
            "common",
            _sg("F-43m", Lattice.cubic(5.9), ["Ni", "Mn", "Sb"], [[0.25, 0.25, 0.25], [0, 0, 0], [0.5, 0.5, 0.5]]),
            ({"Ni": "tm", "Mn": "tm", "Sb": "pmain"}, {"Ni": "metal", "Mn": "tm", "Sb": "pmain"}),
            2.0,
        ),
        Prototype(
            "quaternary_heusler",
            "common",
            _quaternary_heusler(),
            ({"Co": "tm", "Fe": "tm", "Mn": "tm", "Si": "pmain"},),
            1.5,
        ),
        Prototype(
            "cu3au_L12",
            "common",
            _sg("Pm-3m", Lattice.cubic(3.75), ["Au", "Cu"], [[0, 0, 0], [0.5, 0.5, 0]]),
            ({"Cu": "metal", "Au": "metal"}, {"Cu": "tm", "Au": "pmain"}),
            2.0,
        ),
        Prototype(
            "cuau_L10",
            "common",
            _sg("P4/mmm", Lattice.tetragonal(2.8, 3.7), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
            ({"Cu": "metal", "Au": "metal"},),
            1.0,
        ),
        Prototype(
            "laves_c15",
            "common",
            _sg("Fd-3m", Lattice.cubic(7.05), ["Mg", "Cu"], [[0, 0, 0], [0.625, 0.625, 0.625]]),  # origin choice 1
            ({"Mg": "metal", "Cu": "tm"},),
            1.5,
        ),
        Prototype(
            "aluminium_diboride",
            "common",
            _sg("P6/mmm", hexagonal(3.01, 3.26), ["Al", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]]),
            ({"Al": "metal", "B": "light"},),
            1.5,
        ),
    ]
    return protos


# element classes for intermetallic roles
_ALKALI = ("Li", "Na", "K", "Rb", "Cs", "Fr")
_ALKALINE_EARTH = ("Be", "Mg", "Ca", "Sr", "Ba", "Ra")
_TM = [
    "Sc",
    "Ti",
    "V",
    "Cr",
    "Mn",
    "Fe",
    "Co",
    "Ni",
    "Cu",
    "Zn",
    "Y",
    "Zr",
    "Nb",
    "Mo",
    "Tc",
    "Ru",
    "Rh",
    "Pd",
    "Ag",
    "Cd",
    "Hf",
    "Ta",
    "W",
    "Re",
    "Os",
    "Ir",
    "Pt",
    "Au",
    "Hg",
]
_LANTHANIDES = ["La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu"]
_ACTINIDES = ["Ac", "Th", "Pa", "U", "Np", "Pu"]
_P_MAIN = ["B", "Al", "Ga", "In", "Tl", "Si", "Ge", "Sn", "Pb", "As", "Sb", "Bi", "Te", "Po"]
_LIGHT = ["B", "C", "N", "Si", "P"]

ELEMENT_CLASSES: dict[str, tuple[str, ...]] = {
    "tm": tuple(_TM),
    "pmain": tuple(_P_MAIN),
    "light": tuple(_LIGHT),
    "metal": tuple((*_ALKALI, *_ALKALINE_EARTH, *_TM, *_LANTHANIDES, *_ACTINIDES, *_P_MAIN[1:6])),
}

# elements the teachers know (CHGNet embeds Z = 1..94)
TEACHER_ELEMENTS: tuple[str, ...] = tuple(
    [
        "H",
        "He",
        "Li",
        "Be",
        "B",
        "C",
        "N",
        "O",
        "F",
        "Ne",
        "Na",
        "Mg",
        "Al",
        "Si",
        "P",
        "S",
        "Cl",
        "Ar",
        "K",
        "Ca",
        "Sc",
        "Ti",
        "V",
        "Cr",
        "Mn",
        "Fe",
        "Co",
        "Ni",
        "Cu",
        "Zn",
        "Ga",
        "Ge",
        "As",
        "Se",
        "Br",
        "Kr",
        "Rb",
        "Sr",
        "Y",
        "Zr",
        "Nb",
        "Mo",
        "Tc",
        "Ru",
        "Rh",
        "Pd",
        "Ag",
        "Cd",
        "In",
        "Sn",
        "Sb",
        "Te",
        "I",
        "Xe",
        "Cs",
        "Ba",
        "La",
        "Ce",
        "Pr",
        "Nd",
        "Pm",
        "Sm",
        "Eu",
        "Gd",
        "Tb",
        "Dy",
        "Ho",
        "Er",
        "Tm",
        "Yb",
        "Lu",
        "Hf",
        "Ta",
        "W",
        "Re",
        "Os",
        "Ir",
        "Pt",
        "Au",
        "Hg",
        "Tl",
        "Pb",
        "Bi",
        "Po",
        "At",
        "Rn",
        "Fr",
        "Ra",
        "Ac",
        "Th",
        "Pa",
        "U",
        "Np",
        "Pu",
    ]
)


def elemental_prototypes() -> list[Prototype]:
    """fcc, bcc, hcp and diamond lattices with one placeholder (decorated by every teacher element)."""
    return [
        Prototype("fcc", "elemental", _sg("Fm-3m", Lattice.cubic(4.05), ["Al"], [[0, 0, 0]]), ({"Al": "any"},)),
        Prototype("bcc", "elemental", _sg("Im-3m", Lattice.cubic(3.2), ["Al"], [[0, 0, 0]]), ({"Al": "any"},)),
        Prototype(
            "hcp",
            "elemental",
            _sg("P6_3/mmc", Lattice.hexagonal(2.86, 4.67), ["Al"], [[1 / 3, 2 / 3, 0.25]]),
            ({"Al": "any"},),
        ),
        Prototype("diamond", "elemental", _sg("Fd-3m", Lattice.cubic(6.1), ["Al"], [[0, 0, 0]]), ({"Al": "any"},), 0.3),
    ]


def _oxidation_roles(structure: Structure) -> tuple[Mapping[str, Role], ...]:
    """Role variants of a real or library structure: its most likely oxidation states, else element classes."""
    composition = structure.composition
    guesses = ()
    if len(composition) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            guesses = composition.oxi_state_guesses(max_sites=-50)
    if guesses:
        best = guesses[0]
        if all(float(q).is_integer() and q != 0 for q in best.values()):
            return ({el: int(q) for el, q in best.items()},)
    roles: dict[str, Role] = {}
    for element in composition.elements:
        symbol = element.symbol
        roles[symbol] = next((name for name in ("tm", "pmain", "light") if symbol in ELEMENT_CLASSES[name]), "metal")
        if symbol not in ELEMENT_CLASSES["metal"] and roles[symbol] == "metal":
            roles[symbol] = "keep"  # a non-metal in an intermetallic (e.g. H in a hydride) stays as it is
    return (roles,)


@cache
def aflow_prototypes(max_atoms: int = 8, max_species: int = 4) -> tuple[Prototype, ...]:
    """The small prototypes of pymatgen's AFLOW library, with roles from their oxidation states."""
    from pymatgen.analysis.prototypes import AFLOW_PROTOTYPE_LIBRARY

    out = []
    for number, entry in enumerate(AFLOW_PROTOTYPE_LIBRARY):
        structure = entry["snl"].structure
        if len(structure) > max_atoms or not 1 < len(structure.composition) <= max_species:
            continue
        if not structure.is_ordered:
            continue
        label = entry["tags"].get("aflow", "") or entry["tags"].get("mineral", "")
        roles = _oxidation_roles(structure)
        out.append(Prototype(f"aflow:{number}:{label}", "aflow", structure, roles, 0.5))
    return tuple(out)


def real_structures(frames_dir: str | Path, max_atoms: int = 24) -> Iterator[tuple[str, Structure]]:
    """Distinct real MP structures (with their ids) from the shared frames folder, small cells only.

    Uses the final structure of each MP task, the Li-Fe-O entries, the elemental polymorphs and the MatPES
    elemental ground states.
    """
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    frames_dir = Path(frames_dir)
    files = {
        "mp_gga_task_frames.extxyz": "task_id",
        "mp_LiFeO_entries.extxyz": "entry_id",
        "mp_pbe_element_polymorphs.extxyz": None,
        "matpes_element_refs_PBE.extxyz": "matpes_id",
    }
    seen: set[str] = set()
    for name, key in files.items():
        path = frames_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"real seed structures: {path} not found (is ../shared/data there?)")
        for index, atoms in enumerate(read(path, ":")):
            if len(atoms) > max_atoms or not atoms.pbc.all():
                continue
            ident = f"{Path(name).stem}:{atoms.info.get(key) if key else index}"
            if ident in seen:  # e.g. the ionic steps of one task: keep its first structure only
                continue
            seen.add(ident)
            yield ident, AseAtomsAdaptor.get_structure(atoms)


def real_prototypes(frames_dir: str | Path, max_atoms: int = 12) -> list[Prototype]:
    """The real structures as decoration seeds (compounds only; roles from oxidation states)."""
    out = []
    for ident, structure in real_structures(frames_dir, max_atoms=max_atoms):
        if len(structure.composition) < 2:
            continue
        out.append(Prototype(f"real:{ident}", "real", structure, _oxidation_roles(structure), 0.3))
    return out
