"""``umfp screen``: parser registration and handler (wired into ``universal_mfp/cli.py``).

The model argument is resolved by ``universal_mfp.hub.load_model``: a registered name, a checkpoint folder
or a Hub id.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path
from typing import Any

from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)


def resolve_model(name: str, *, device: str = "cpu", dtype: str = "float32") -> MultiFidelityPotential:
    """Return the potential for a registered model name, a checkpoint folder or a Hub id (``load_model``)."""
    from universal_mfp.models import load_model

    return load_model(name, device=device, dtype=dtype).model


def add_screen_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``screen`` on an ``argparse`` sub-parsers object and return its parser."""
    parser = subparsers.add_parser(
        "screen",
        help="energies above hull of candidate structures at one fidelity",
        description=(
            "Screen candidate structures (CIF, POSCAR/CONTCAR/.vasp, extxyz, or folders of them) for stability: "
            "energies of candidates and every competing phase come from the model at one fidelity."
        ),
    )
    parser.add_argument("candidates", nargs="+", help="structure files or folders")
    parser.add_argument("--model", required=True, help="model name (registry) or checkpoint folder")
    parser.add_argument("--fidelity", required=True, help="fidelity of every energy, e.g. r2scan or pbe")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="evaluation precision")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--references", nargs="*", default=[], help="reference structure files or folders")
    parser.add_argument(
        "--mp-entries", nargs="*", default=[], help="JSON files of Materials Project ComputedStructureEntry lists"
    )
    parser.add_argument(
        "--no-bundled-references", action="store_true", help="do not add the bundled elemental references"
    )
    parser.add_argument(
        "--references-only-hull",
        action="store_true",
        help="build the hull from references only (candidates do not compete; matbench-discovery style)",
    )
    parser.add_argument("--relax", action="store_true", help="relax candidates and references first")
    parser.add_argument("--optimizer", default="FIRE", choices=["FIRE", "BFGS"])
    parser.add_argument("--fmax", type=float, default=0.05, help="force convergence threshold, eV/Å")
    parser.add_argument("--max-steps", type=int, default=500, help="maximum optimizer steps")
    parser.add_argument("--max-step", type=float, default=None, help="largest step of the optimizer, Å")
    parser.add_argument(
        "--mp2020", action="store_true", help="also report MP2020-corrected values (pbe fidelity only, comparison)"
    )
    parser.add_argument("--labels", default=None, help="CSV with columns id,e_above_hull (eV/atom) for metrics")
    parser.add_argument("--output-dir", default="screening", help="folder for results.csv, summary.json, plots")
    parser.add_argument("--max-atoms-per-batch", type=int, default=4096)
    parser.add_argument("--no-plots", action="store_true", help="skip the hull plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run_screen)
    return parser


def run_screen(args: argparse.Namespace) -> int:
    """Handle ``umfp screen``: screen, write ``results.csv``, ``summary.json`` and one plot per system."""
    from universal_mfp.hull.workflow import ScreeningRequest, run_screening

    request = ScreeningRequest(
        candidates=[Path(p) for p in args.candidates],
        fidelity=args.fidelity,
        output_dir=Path(args.output_dir),
        references=[Path(p) for p in args.references],
        mp_entries=[Path(p) for p in args.mp_entries],
        use_bundled_references=not args.no_bundled_references,
        candidates_compete=not args.references_only_hull,
        relax=args.relax,
        optimizer=args.optimizer,
        fmax=args.fmax,
        max_steps=args.max_steps,
        max_step=args.max_step,
        mp2020=args.mp2020,
        labels=None if args.labels is None else Path(args.labels),
        plots=not args.no_plots,
        progress=not args.no_progress,
        max_atoms_per_batch=args.max_atoms_per_batch,
    )
    model = resolve_model(args.model, device=args.device, dtype=args.dtype)
    summary = run_screening(model, request, model_name=args.model)
    sys.stdout.write(format_results_table(Path(summary["outputs"]["csv"])) + "\n")
    sys.stdout.write(f"results: {summary['outputs']['csv']}\n")
    return 0


_TABLE_COLUMNS = (
    ("id", "id", "{}"),
    ("formula", "formula", "{}"),
    ("E (eV/atom)", "energy_per_atom", "{:.4f}"),
    ("E_form (eV/atom)", "formation_energy_per_atom", "{:.4f}"),
    ("E_hull (meV/atom)", "e_above_hull", "{:.1f}"),
    ("stable", "stable", "{}"),
    ("relaxation", "relaxation_status", "{}"),
)


def format_results_table(csv_path: Path) -> str:
    """The screening results as an aligned text table (energy above hull in meV/atom)."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = [[title for title, _, _ in _TABLE_COLUMNS]]
    for row in rows:
        cells = []
        for _, key, fmt in _TABLE_COLUMNS:
            value = row.get(key, "")
            if key == "e_above_hull" and value not in ("", None):
                value = 1000.0 * float(value)
            elif fmt != "{}" and value not in ("", None):
                value = float(value)
            cells.append(fmt.format(value) if value not in ("", None) else "-")
        table.append(cells)
    widths = [max(len(r[k]) for r in table) for k in range(len(_TABLE_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
