"""Screening rate: 1,000 real candidates of 10-50 atoms, no relaxation, default-size model, full hull pipeline.

Candidates are real structures from ``../shared/data/frames`` (MP task frames, MP Li-Fe-O entries, MP
elemental polymorphs, MatPES elemental ground states): small cells are repeated into supercells of
10-50 atoms, larger ones kept when they have at most 50 atoms; the pool is shuffled (seeded) and, if it
holds fewer than 1,000 structures, cycled with small seeded rattles (0.02 Å). The model has the
default ``ModelConfig`` size (random weights: speed does not depend on them). Timing covers
``screen_structures`` end to end at the r2SCAN fidelity: graphs, batched energies of candidates and
bundled elemental references, and one hull per chemical system.

Usage: ``python benchmarks/screening_rate.py [--num 1000] [--threads N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import ase
import ase.io
import e3nn
import numpy as np
import pymatgen.core
import torch
from ase import Atoms

from universal_mfp import ModelConfig, build_model
from universal_mfp.hull import bundled_elements, screen_structures
from universal_mfp.model import count_parameters

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT.parent / "shared" / "data" / "frames"
SOURCES = (
    "mp_gga_task_frames.extxyz",
    "mp_LiFeO_entries.extxyz",
    "mp_pbe_element_polymorphs.extxyz",
    "matpes_element_refs_PBE.extxyz",
)
MIN_ATOMS, MAX_ATOMS = 10, 50


def _sized(atoms: Atoms) -> Atoms | None:
    """A supercell of ``atoms`` with 10-50 atoms (repeating the shortest cell vector first), or None."""
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=True)
    while len(out) < MIN_ATOMS:
        lengths = out.cell.lengths()
        reps = [1, 1, 1]
        reps[int(np.argmin(lengths))] = 2
        out = out.repeat(reps)
    return out if len(out) <= MAX_ATOMS else None


def build_candidates(num: int, seed: int = 0) -> tuple[list[Atoms], dict[str, int]]:
    allowed = set(bundled_elements("r2scan"))
    pool, counts = [], {}
    for name in SOURCES:
        kept = 0
        for k, atoms in enumerate(ase.io.read(FRAMES / name, index=":")):
            if not set(atoms.get_chemical_symbols()) <= allowed or not atoms.pbc.all():
                continue
            sized = _sized(atoms)
            if sized is not None:
                sized.info["id"] = f"{Path(name).stem}:{k}"
                pool.append(sized)
                kept += 1
        counts[name] = kept
    rng = np.random.default_rng(seed)
    pool = [pool[k] for k in rng.permutation(len(pool))]  # mix the sources
    candidates = []
    for i in range(num):
        atoms = pool[i % len(pool)].copy()
        if i >= len(pool):
            atoms.positions += rng.normal(scale=0.02, size=atoms.positions.shape)
        atoms.info["id"] = f"{atoms.info['id']}#{i}"
        candidates.append(atoms)
    return candidates, counts


def _git_commit() -> str:
    try:
        command = ["git", "rev-parse", "HEAD"]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "screening_rate.json")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    candidates, counts = build_candidates(args.num)
    sizes = np.array([len(a) for a in candidates])
    elements = sorted({int(z) for a in candidates for z in a.numbers})
    model = build_model(ModelConfig(elements=tuple(elements), fidelities=("pbe", "r2scan")), seed=0)
    print(f"{len(candidates)} candidates, {sizes.sum()} atoms ({sizes.min()}-{sizes.max()} per structure)")
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = screen_structures(model, candidates, fidelity="r2scan", progress=True)
    seconds = time.perf_counter() - start
    rate = len(candidates) / seconds
    systems = len({row.chemsys for row in result.rows})
    print(f"screened {len(candidates)} candidates ({systems} chemical systems) in {seconds:.1f} s")
    print(f"rate: {rate:.2f} candidates/s")
    record = {
        "benchmark": "screening_rate",
        "description": "screen_structures without relaxation at r2scan: candidates + bundled references + hulls",
        "num_candidates": len(candidates),
        "atoms_per_candidate": {"min": int(sizes.min()), "mean": float(sizes.mean()), "max": int(sizes.max())},
        "total_atoms": int(sizes.sum()),
        "num_references": len(result.references),
        "num_chemical_systems": systems,
        "pool_per_source": counts,
        "seconds": seconds,
        "candidates_per_second": rate,
        "model": {"config": "default ModelConfig", "num_parameters": count_parameters(model), "dtype": "float32"},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "e3nn": e3nn.__version__,
            "ase": ase.__version__,
            "pymatgen": pymatgen.core.__version__,
            "universal_mfp_commit": _git_commit(),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
