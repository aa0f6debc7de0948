"""Command line: ``python -m universal_mfp_pipelines COMMAND``.

Commands: pull, pair, build, import, all, generate, teach, manifest, offsets, dft-eos.

The same commands run as ``umfp data ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from universal_mfp_pipelines._io import read_jsonl

if TYPE_CHECKING:
    from universal_mfp_pipelines.generate import GenerationSettings

logger = logging.getLogger(__name__)


def _split_list(values: Sequence[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(out)


def _add_pull_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--material-ids", nargs="*", help="MP material ids (space or comma separated)")
    p.add_argument("--chemsys", nargs="*", help="chemical systems, e.g. Li-Fe-O Si-O")
    p.add_argument("--elements", nargs="*", help="element set: every material made only of these elements")
    p.add_argument("--thermo-types", nargs="*", default=["GGA_GGA+U", "R2SCAN"], help="thermo types to pull")
    p.add_argument("--no-tasks", action="store_true", help="do not pull the task documents")
    p.add_argument("--chunk-size", type=int, default=500, help="ids per request and cache file")
    p.add_argument("--cache-dir", type=Path, help="raw-response cache (default <out>/cache)")
    p.add_argument("--api-key", help="MP API key (default $MP_API_KEY)")
    p.add_argument("--endpoint", help="API endpoint (default $MP_API_ENDPOINT or the public API)")
    p.add_argument("--max-attempts", type=int, default=5, help="attempts per request")
    p.add_argument("--backoff", type=float, default=1.0, help="first retry delay, s (doubles each retry)")


def _add_pair_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ltol", type=float, default=0.2, help="StructureMatcher fractional length tolerance")
    p.add_argument("--stol", type=float, default=0.3, help="StructureMatcher site tolerance")
    p.add_argument("--angle-tol", type=float, default=5.0, help="StructureMatcher angle tolerance, degrees")
    p.add_argument("--no-cross-check", action="store_true", help="do not look for matches across material ids")
    p.add_argument("--workers", type=int, default=1, help="processes for pairing")


def _add_build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fractions", type=float, nargs=3, default=[0.9, 0.05, 0.05], metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--rows-per-shard", type=int, default=20_000)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_shard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, help="worker processes (one torch thread each)")
    p.add_argument("--part", help="i/N: only this part of the shards (N independent machines or batch jobs)")
    p.add_argument("--max-shards", type=int, help="stop after this many shards (a resumable piece of the work)")


def _add_generate_args(p: argparse.ArgumentParser) -> None:
    from universal_mfp_pipelines.generate import GenerationSettings

    defaults = GenerationSettings()
    p.add_argument("out", type=Path, help="generation folder (plan.json, structures-*.extxyz, manifest.json)")
    p.add_argument(
        "--frames-dir", type=Path, help="real MP frames (default $UMFP_SHARED_DATA/frames or ../shared/data/frames)"
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--num-decorated", type=int, default=defaults.num_decorated, help="decorated prototypes")
    p.add_argument("--num-u-focus", type=int, default=defaults.num_u_focus, help="GGA+U metal oxides/fluorides")
    p.add_argument("--jobs-per-shard", type=int, default=defaults.jobs_per_shard)
    p.add_argument("--relax-steps", type=int, default=defaults.relax_steps)
    p.add_argument("--max-real-atoms", type=int, default=defaults.max_real_atoms)
    p.add_argument("--driver", default=defaults.driver, help="teacher spec that relaxes and runs MD")
    p.add_argument(
        "--elements",
        nargs="*",
        help="elements of the elemental crystals (default: every teacher element; the flag alone: none)",
    )
    p.add_argument("--max-real-structures", type=int, help="take only the first N real structures (default: all)")
    p.add_argument(
        "--num-polymorph-compositions",
        type=int,
        help="binary compositions of common elements, each in every fitting common prototype (default: none)",
    )
    p.add_argument(
        "--num-tetrahedral-compositions",
        type=int,
        help="octet-rule sp3 alloys (half with Si and C), each in zincblende and wurtzite stacking (default: none)",
    )
    p.add_argument(
        "--num-solid-solution-compositions",
        type=int,
        help="50/50 mixed crystals of rocksalt, antifluorite and corundum, each in two cells; first those that "
        "share a sublattice with an excluded binary (default: none)",
    )
    p.add_argument(
        "--exclude-formulas", nargs="*", help="compositions no generated crystal may have (real ones are kept)"
    )
    p.add_argument("--strains", type=int, default=defaults.strains, help="strained copies per crystal")
    p.add_argument(
        "--eos-volumes",
        type=float,
        nargs="+",
        help="volume factors of isotropically scaled copies of every crystal, e.g. 0.88 0.94 1.06 (default: none)",
    )
    _add_shard_args(p)


def _add_teach_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("structures", type=Path, help="generation folder (structures-*.extxyz)")
    p.add_argument("out", type=Path, help="labelled dataset folder (labels-*.parquet, manifest.json)")
    p.add_argument(
        "--teacher",
        action="append",
        required=True,
        metavar="FIDELITY=SPEC",
        help="a teacher and the fidelity its labels form, e.g. pbe=chgnet:0.3.0 (repeat for each teacher)",
    )
    p.add_argument("--fractions", type=float, nargs=3, default=[0.9, 0.05, 0.05], metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--seed", type=int, default=0, help="split seed")
    _add_shard_args(p)


def _add_dft_eos_args(p: argparse.ArgumentParser) -> None:
    from universal_mfp_pipelines.dft_eos import DftSettings

    defaults = DftSettings()
    p.add_argument("out", type=Path, help="folder for frames/<element>.extxyz and manifest.json")
    p.add_argument("--elements", nargs="+", required=True, help="elements (space or comma separated), e.g. Al Cu Si")
    p.add_argument("--ecut", type=float, default=defaults.ecut, help="plane-wave cutoff, eV")
    p.add_argument("--kpoint-density", type=float, default=defaults.kpoint_density, help="k-points per 1/Å")
    p.add_argument("--smearing", type=float, default=defaults.smearing, help="Marzari-Vanderbilt width, eV")
    p.add_argument("--volume-factors", type=float, nargs="+", default=list(defaults.volume_factors))
    p.add_argument("--xc", choices=["PBE", "r2SCAN"], default=defaults.xc, help="functional")
    p.add_argument(
        "--structures", nargs="+", help="crystals of every element (fcc bcc hcp diamond; default: its reference one)"
    )
    p.add_argument("--mixer-beta", type=float, help="SCF density-mixing weight (r2SCAN: 0.05)")
    p.add_argument(
        "--fixed-kpoint-grid",
        action="store_true",
        help="one k-point grid per crystal's scan (that of its smallest volume); needed with --anchor",
    )
    p.add_argument(
        "--anchor",
        type=Path,
        help="extxyz of real elemental DFT (a training source of the run): its lowest frame of each element "
        "puts the energies on that setup's scale, and the frames get energy labels",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="python -m universal_mfp_pipelines", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pull", help="pull GGA(+U) and r2SCAN documents from the Materials Project")
    p.add_argument("out", type=Path, help="pull folder (records.jsonl, cache/)")
    _add_pull_args(p)

    p = sub.add_parser("pair", help="pair GGA(+U) and r2SCAN records of the same material")
    p.add_argument("records", type=Path, help="records.jsonl or a pull folder")
    p.add_argument("--out", type=Path, help="folder for pairs.parquet (default: the pull folder)")
    p.add_argument("--overwrite", action="store_true")
    _add_pair_args(p)

    p = sub.add_parser("build", help="build dataset shards from pulled records")
    p.add_argument("records", type=Path, help="records.jsonl or a pull folder")
    p.add_argument("out", type=Path, help="dataset folder")
    _add_build_args(p)

    p = sub.add_parser("import", help="build dataset shards from extxyz files or folders")
    p.add_argument("inputs", type=Path, nargs="+", help="extxyz files or folders")
    p.add_argument("out", type=Path, help="dataset folder")
    p.add_argument("--fidelity", help="fidelity of frames without info['functional'] (e.g. pbe)")
    _add_build_args(p)

    p = sub.add_parser("generate", help="generate crystals (prototypes, substitution, configurations) for teachers")
    _add_generate_args(p)

    p = sub.add_parser("teach", help="label generated crystals with teachers, each teacher a fidelity")
    _add_teach_args(p)

    p = sub.add_parser("dft-eos", help="equations of state of elemental crystals with GPAW (PBE or r2SCAN)")
    _add_dft_eos_args(p)

    p = sub.add_parser("manifest", help="rebuild the manifest of a generation or labelled folder (after merging parts)")
    p.add_argument("folder", type=Path)

    p = sub.add_parser("offsets", help="measure per-element offsets between a teacher and real elemental DFT")
    p.add_argument("frames", type=Path, help="extxyz of the real setup's elemental ground states")
    p.add_argument("output", type=Path, help="JSON to write")
    p.add_argument("--teacher", required=True, help="teacher spec, e.g. chgnet:r2scan")
    p.add_argument(
        "--fidelities", nargs=2, required=True, metavar=("SOURCE", "TARGET"), help="e.g. r2scan_chgnet r2scan"
    )

    p = sub.add_parser("all", help="pull, pair and build")
    p.add_argument("out", type=Path, help="work folder: pull/ and dataset/ are created in it")
    _add_pull_args(p)
    _add_pair_args(p)
    _add_build_args(p)
    return parser


def _run_pull(args: argparse.Namespace, out: Path, progress: bool) -> Path:
    from universal_mfp_pipelines.mp_client import MPClient
    from universal_mfp_pipelines.pull import PullQuery, pull

    query = PullQuery(
        material_ids=_split_list(args.material_ids),
        chemsys=_split_list(args.chemsys),
        elements=_split_list(args.elements),
    )
    client = MPClient(
        args.cache_dir or out / "cache",
        api_key=args.api_key,
        endpoint=args.endpoint,
        max_attempts=args.max_attempts,
        backoff=args.backoff,
    )
    result = pull(
        client,
        query,
        out,
        chunk_size=args.chunk_size,
        thermo_types=args.thermo_types,
        with_tasks=not args.no_tasks,
        progress=progress,
    )
    logger.info(
        "pulled %d records for %d materials: %s", result.num_records, result.num_materials, result.records_by_run_type
    )
    return result.records_path


def _run_pair(args: argparse.Namespace, records: Path, out: Path, progress: bool) -> dict:
    from universal_mfp_pipelines.pair import PairingTolerances, pair_records, pairing_records, write_pairs

    tol = PairingTolerances(
        ltol=args.ltol, stol=args.stol, angle_tol=args.angle_tol, cross_check=not args.no_cross_check
    )
    rows, summary = pair_records(pairing_records(read_jsonl(records)), tol, workers=args.workers, progress=progress)
    write_pairs(rows, summary, out, overwrite=args.overwrite)
    logger.info("pairs: %s -> %s", summary["status"], out / "pairs.parquet")
    return summary


def _build_kwargs(args: argparse.Namespace, progress: bool) -> dict:
    return {
        "fractions": args.fractions,
        "seed": args.seed,
        "rows_per_shard": args.rows_per_shard,
        "overwrite": args.overwrite,
        "progress": progress,
    }


def _records_path(path: Path) -> Path:
    return path / "records.jsonl" if path.is_dir() else path


def _shared_frames() -> Path:
    import os

    root = Path(os.environ.get("UMFP_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    return root / "frames"


def generation_settings(args: argparse.Namespace) -> GenerationSettings:
    """The ``GenerationSettings`` of parsed ``generate`` arguments (``--elements`` alone: no elemental crystals)."""
    from universal_mfp_pipelines.generate import GenerationSettings

    return GenerationSettings(
        seed=args.seed,
        num_decorated=args.num_decorated,
        num_u_focus=args.num_u_focus,
        jobs_per_shard=args.jobs_per_shard,
        relax_steps=args.relax_steps,
        max_real_atoms=args.max_real_atoms,
        driver=args.driver,
        elemental_elements=tuple(_split_list(args.elements)) if args.elements is not None else None,
        max_real_structures=args.max_real_structures,
        num_polymorph_compositions=args.num_polymorph_compositions,
        num_tetrahedral_compositions=args.num_tetrahedral_compositions,
        num_solid_solution_compositions=args.num_solid_solution_compositions,
        exclude_formulas=tuple(_split_list(args.exclude_formulas)) if args.exclude_formulas else None,
        strains=args.strains,
        eos_volume_factors=tuple(args.eos_volumes) if args.eos_volumes else None,
    )


def _run_generate(args: argparse.Namespace, progress: bool) -> None:
    from universal_mfp_pipelines.generate import generate

    settings = generation_settings(args)
    frames_dir = args.frames_dir or _shared_frames()
    if not frames_dir.is_dir():
        raise FileNotFoundError(f"real frames folder {frames_dir} not found: pass --frames-dir")
    manifest = generate(
        args.out,
        frames_dir,
        settings,
        workers=args.workers,
        part=args.part,
        max_shards=args.max_shards,
        progress=progress,
    )
    logger.info("generated %d of %d shards in %s", manifest["num_shards_done"], manifest["num_shards"], args.out)


def _run_teach(args: argparse.Namespace, progress: bool) -> None:
    from universal_mfp_pipelines.teach import teach
    from universal_mfp_pipelines.teachers import teachers_from_pairs

    manifest = teach(
        args.structures,
        args.out,
        teachers_from_pairs(args.teacher),
        workers=args.workers,
        part=args.part,
        fractions=args.fractions,
        seed=args.seed,
        max_shards=args.max_shards,
        progress=progress,
    )
    logger.info("labelled %d shards in %s", manifest["num_shards_done"], args.out)


def _run_dft_eos(args: argparse.Namespace) -> None:
    from universal_mfp_pipelines.dft_eos import DftSettings, gpaw_calculator, gpaw_provenance, run_eos

    settings = DftSettings(
        ecut=args.ecut,
        kpoint_density=args.kpoint_density,
        smearing=args.smearing,
        volume_factors=tuple(args.volume_factors),
        xc=args.xc,
        structures=tuple(_split_list(args.structures or [])),
        mixer_beta=args.mixer_beta,
        anchor=args.anchor.name if args.anchor else None,
        fixed_kpoint_grid=args.fixed_kpoint_grid,
    )
    provenance = gpaw_provenance()  # fails at once, with its install hint, where GPAW is missing
    manifest = run_eos(
        args.out,
        _split_list(args.elements),
        settings,
        calculator_factory=gpaw_calculator,
        provenance=provenance,
        anchor_path=args.anchor,
    )
    logger.info("%s: %d elements", args.out, len(manifest["elements"]))


def _run_manifest(folder: Path) -> None:
    import json as _json

    from universal_mfp_pipelines import generate as generation
    from universal_mfp_pipelines import teach as teaching
    from universal_mfp_pipelines.shard_runner import MANIFEST, write_manifest

    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    old = folder / MANIFEST
    header = _json.loads(old.read_text()) if old.is_file() else {}
    header = {k: v for k, v in header.items() if k not in ("shards", "num_shards_done", "updated_utc")}
    prefix = teaching.PREFIX if any(folder.glob(f"{teaching.PREFIX}-*.json")) else generation.PREFIX
    manifest = write_manifest(folder, prefix, header)
    logger.info("%s: %d shards", folder / MANIFEST, manifest["num_shards_done"])


def main(argv: list[str] | None = None) -> int:
    """Run the data pipeline command line; return the exit status (0 on success)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    progress = not args.no_progress
    from universal_mfp_pipelines.build_dataset import build_dataset
    from universal_mfp_pipelines.importer import import_extxyz
    from universal_mfp_pipelines.mp_client import MPPullError

    try:
        if args.command == "pull":
            _run_pull(args, args.out, progress)
        elif args.command == "pair":
            records = _records_path(args.records)
            _run_pair(args, records, args.out or records.parent, progress)
        elif args.command == "build":
            manifest = build_dataset(_records_path(args.records), args.out, **_build_kwargs(args, progress))
            logger.info("dataset rows: %s", json.dumps(manifest["rows"]))
        elif args.command == "import":
            manifest = import_extxyz(args.inputs, args.out, fidelity=args.fidelity, **_build_kwargs(args, progress))
            logger.info("dataset rows: %s", json.dumps(manifest["rows"]))
        elif args.command == "generate":
            _run_generate(args, progress)
        elif args.command == "teach":
            _run_teach(args, progress)
        elif args.command == "manifest":
            _run_manifest(args.folder)
        elif args.command == "dft-eos":
            _run_dft_eos(args)
        elif args.command == "offsets":
            from universal_mfp_pipelines.teacher_offsets import offsets_main

            logger.info("wrote %s", offsets_main(args.frames, args.teacher, args.output, args.fidelities))
        elif args.command == "all":
            pull_dir, dataset_dir = args.out / "pull", args.out / "dataset"
            records = _run_pull(args, pull_dir, progress)
            _run_pair(args, records, pull_dir, progress)
            manifest = build_dataset(records, dataset_dir, **_build_kwargs(args, progress))
            logger.info("dataset rows: %s", json.dumps(manifest["rows"]))
    except (MPPullError, FileExistsError, FileNotFoundError, ValueError, ImportError) as error:
        logger.error("%s", error)  # a clear one-line message, no traceback for user errors
        return 1
    return 0
