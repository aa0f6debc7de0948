"""``umfp screen``: parser registration and handler (wired into ``universal_mfp/cli.py``).

The model argument is resolved by ``resolve_model``: a loader registered with ``set_model_loader`` when
there is one, else ``universal_mfp.hub.load_model(name).model`` (imported lazily).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)

ModelLoader = Callable[[str], Any]
_MODEL_LOADER: list[ModelLoader] = []


def set_model_loader(loader: ModelLoader | None) -> None:
    """Register how ``--model`` names are turned into models (``None`` restores the default, the hub)."""
    _MODEL_LOADER.clear()
    if loader is not None:
        _MODEL_LOADER.append(loader)


def resolve_model(name: str) -> MultiFidelityPotential:
    """Return the ``MultiFidelityPotential`` for a model name or checkpoint folder.

    Raises:
        RuntimeError: if no loader is registered and ``universal_mfp.hub`` is not available.
    """
    if _MODEL_LOADER:
        loaded = _MODEL_LOADER[0](name)
    else:
        try:
            from universal_mfp.hub import load_model  # type: ignore[attr-defined]
        except ImportError as error:
            raise RuntimeError(
                f"cannot load model {name!r}: universal_mfp.hub is not available and no loader was registered "
                "with universal_mfp.hull.cli.set_model_loader"
            ) from error
        loaded = load_model(name)
    model = getattr(loaded, "model", loaded)
    if not isinstance(model, MultiFidelityPotential):
        raise TypeError(f"model loader returned {type(model).__name__}, expected a MultiFidelityPotential")
    return model


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
    summary = run_screening(resolve_model(args.model), request, model_name=args.model)
    logger.info("wrote %s", summary["outputs"]["csv"])
    return 0
