"""The ``umfp`` command: thin subcommands over library functions.

Each subcommand is one ``_add_<name>(subparsers)`` function that registers its parser and sets
``handler``; add a subcommand by writing one such function and listing it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger("universal_mfp.cli")

_VOIGT = ("xx", "yy", "zz", "yz", "xz", "xy")


def _echo(text: str, *, error: bool = False) -> None:
    """Write one line of command output (the CLI's only terminal output)."""
    (sys.stderr if error else sys.stdout).write(text + "\n")


def _cmd_models(args: argparse.Namespace) -> int:
    from universal_mfp.hub.registry import load_registry

    registry = load_registry(args.registry)
    if not registry.entries:
        _echo(f"no models registered in {registry.path}")
        return 0
    for name in sorted(registry.entries):
        entry = registry.entries[name]
        where = []
        if entry.bundled_path:
            where.append(f"bundled:{entry.bundled_path}")
        if entry.repo_id:
            where.append(f"hub:{entry.repo_id}@{entry.revision}")
        aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        _echo(f"{name}{aliases}")
        _echo(f"    fidelities: {', '.join(entry.fidelities)}; default fidelity: {entry.default_fidelity or 'none'}")
        _echo(f"    source: {' '.join(where)}; license: {entry.license}")
        if entry.description:
            _echo(f"    {entry.description}")
    return 0


def _add_models(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the registered models")
    parser.add_argument("--registry", type=Path, default=None, help="registry file (default: the packaged one)")
    parser.set_defaults(handler=_cmd_models)


def _read_structures(paths: Sequence[Path]) -> list[tuple[str, int, object]]:
    from universal_mfp.data.structure_files import read_structures_by_file

    out = []
    for path, frames in read_structures_by_file(paths):
        out += [(str(path), k, frame.to_atoms()) for k, frame in enumerate(frames)]
    return out


def _csv_text(rows: list[tuple[str, int, object]], predictions: list) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["file", "index", "formula", "num_atoms", "fidelity", "energy_eV", "energy_per_atom_eV"]
    header += ["max_force_eV_per_A"] + [f"stress_{c}_eV_per_A3" for c in _VOIGT]
    writer.writerow(header)
    from universal_mfp.units import full_3x3_to_voigt_6

    for (path, index, atoms), pred in zip(rows, predictions, strict=True):
        max_force = float(np.linalg.norm(pred.forces, axis=1).max()) if pred.num_atoms else 0.0
        stress = full_3x3_to_voigt_6(pred.stress) if pred.stress is not None else [None] * 6
        values = [path, index, atoms.get_chemical_formula(), pred.num_atoms, pred.fidelity]
        values += [repr(pred.energy), repr(pred.energy_per_atom), repr(max_force)]
        values += ["" if s is None else repr(float(s)) for s in stress]
        writer.writerow(values)
    return buffer.getvalue()


def _write_extxyz(path: Path, rows: list[tuple[str, int, object]], predictions: list) -> None:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from universal_mfp.units import full_3x3_to_voigt_6

    frames = []
    for (source, index, original), pred in zip(rows, predictions, strict=True):
        atoms = original.copy()
        results = {"energy": pred.energy, "forces": pred.forces}
        if pred.stress is not None:
            results["stress"] = full_3x3_to_voigt_6(pred.stress)
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info.update({"source_file": source, "source_index": index, "fidelity": pred.fidelity})
        frames.append(atoms)
    write(str(path), frames, format="extxyz")


def _cmd_predict(args: argparse.Namespace) -> int:
    from universal_mfp.models import load_model

    loaded = load_model(args.model, device=args.device, dtype=args.dtype, registry=args.registry)
    rows = _read_structures(args.structures)
    predictions = loaded.predict([atoms for _, _, atoms in rows], fidelity=args.fidelity)
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(_csv_text(rows, predictions))
    elif output.suffix == ".csv":
        output.write_text(_csv_text(rows, predictions), encoding="utf-8")
    elif output.suffix in (".extxyz", ".xyz"):
        _write_extxyz(output, rows, predictions)
    else:
        raise ValueError(f"--output must end in .csv or .extxyz, got {output}")
    if output is not None:
        _echo(f"wrote {len(predictions)} predictions ({predictions[0].fidelity if predictions else '-'}) to {output}")
    return 0


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="predict energies, forces and stresses of structure files")
    parser.add_argument("structures", nargs="+", type=Path, help="structure files readable by ase.io.read")
    parser.add_argument("--model", required=True, help="checkpoint folder, registered name or owner/name Hub id")
    parser.add_argument("--fidelity", default=None, help="fidelity to predict, e.g. r2scan or pbe")
    parser.add_argument("--output", type=Path, default=None, help="out.csv or out.extxyz (default: CSV to stdout)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--registry", type=Path, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_cmd_predict)


def _cmd_publish(args: argparse.Namespace) -> int:
    from universal_mfp.hub.publish import publish

    result = publish(
        args.checkpoint_dir,
        args.repo_id,
        revision=args.revision,
        private=args.private,
        license_id=args.license,
        aliases=tuple(args.alias),
    )
    if args.save_card is not None:
        args.save_card.write_text(result.card, encoding="utf-8")
    _echo(f"commit: {result.commit_sha}")
    _echo("registry entry (add it to universal_mfp/hub/registry.json 'models'):")
    _echo(json.dumps(result.registry_entry, indent=2))
    return 0


def _add_publish(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("publish", help="upload a checkpoint folder to the Hugging Face Hub")
    parser.add_argument("checkpoint_dir", type=Path)
    parser.add_argument("--repo-id", required=True, help="owner/name of the Hub model repository")
    parser.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--license", default=None, help="license id for the card (default: cc-by-4.0)")
    parser.add_argument("--alias", action="append", default=[], help="alias for the registry entry (repeatable)")
    parser.add_argument("--save-card", type=Path, default=None, help="also write the rendered card here")
    parser.set_defaults(handler=_cmd_publish)


def _cmd_data(args: argparse.Namespace) -> int:
    from universal_mfp_pipelines.cli import main as data_main

    return int(data_main(args.data_args))


def _add_data(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="data pipeline: pull | pair | build | import | all | generate | teach | manifest (umfp data --help)",
        add_help=False,
    )
    parser.add_argument("data_args", nargs=argparse.REMAINDER, help="arguments of python -m universal_mfp_pipelines")
    parser.set_defaults(handler=_cmd_data)


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    from universal_mfp.training.cli import add_train_parser

    add_train_parser(subparsers)


def _add_screen(subparsers: argparse._SubParsersAction) -> None:
    from universal_mfp.hull.cli import add_screen_parser

    add_screen_parser(subparsers)


def _add_finetune(subparsers: argparse._SubParsersAction) -> None:
    from universal_mfp.finetuning.cli import add_finetune_parser

    add_finetune_parser(subparsers)


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_models,
    _add_predict,
    _add_screen,
    _add_train,
    _add_finetune,
    _add_data,
    _add_publish,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``umfp`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="umfp", description="universal multi-fidelity interatomic potential")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``umfp``; returns the exit code (0 success, 1 error, 2 usage error)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "data":  # everything after "data" belongs to the pipeline's own parser
        args.data_args = [*unknown, *args.data_args]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except (ValueError, OSError) as error:
        _echo(f"umfp {args.command}: error: {error}", error=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
