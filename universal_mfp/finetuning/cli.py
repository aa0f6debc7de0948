"""``umfp finetune``: fine-tune a checkpoint on new data, at an existing or a new fidelity."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from universal_mfp.data.frame import Frame

logger = logging.getLogger(__name__)


def add_finetune_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``finetune`` on an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on new data, at an existing or a new fidelity",
        description="Fine-tune a checkpoint on DATA (all frames are labelled --fidelity). A fidelity the model "
        "lacks is added as a new one-hot slot initialised from an existing fidelity; the old fidelities' "
        "predictions do not change in readout mode. The result is a checkpoint folder (see docs/finetuning.md).",
    )
    parser.add_argument("data", nargs="+", type=Path, help="extxyz/parquet files of the fidelity to fine-tune")
    parser.add_argument("--model", required=True, help="checkpoint folder, registered name or owner/name Hub id")
    parser.add_argument("--fidelity", required=True, help="fidelity of DATA (new or existing), e.g. r2scan, ccsd_t")
    parser.add_argument("--output-dir", required=True, type=Path, help="checkpoint folder to write")
    parser.add_argument(
        "--train",
        default="readout",
        choices=("readout", "all-but-embedding", "all"),
        help="readout: only the fidelity's own rows (other fidelities bit-identical); all-but-embedding; all",
    )
    parser.add_argument("--init-from", default=None, help="existing fidelity a new one starts from (default: best fit)")
    parser.add_argument("--energy-only", action="store_true", help="drop forces and stresses of DATA")
    parser.add_argument("--replay", nargs="+", type=Path, default=[], help="original training data to mix in")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--replay-fraction", type=float, default=None, help="fraction of the replay frames to use")
    group.add_argument("--replay-count", type=int, default=None, help="number of replay frames to use")
    parser.add_argument("--max-force", type=float, default=None, help="drop frames with a force above this (eV/Å)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of DATA held out for validation")
    parser.add_argument("--test", nargs="+", type=Path, default=[], help="held-out test files of the fidelity")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None, help="trainer states and log (default: temporary)")
    parser.add_argument("--name", default=None, help="model name for the card (default: the folder name)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
    parser.set_defaults(handler=run_finetune)
    return parser


def _read(paths: Sequence[Path], fidelity: str | None, max_force: float | None) -> list[Frame]:
    from universal_mfp.data.readers import read_frames

    frames = [frame for path in paths for frame in read_frames(path, fidelity=fidelity)]
    if max_force is None:
        return frames
    kept = [f for f in frames if f.forces is None or float(np.abs(f.forces).max()) <= max_force]
    if len(kept) < len(frames):
        logger.info("kept %d of %d frames with |F| <= %g eV/Å", len(kept), len(frames), max_force)
    return kept


def run_finetune(args: argparse.Namespace) -> int:
    """Handler of ``umfp finetune``."""
    from universal_mfp.finetuning.run import DEFAULT_SETTINGS, finetune

    frames = _read(args.data, args.fidelity, args.max_force)
    if args.energy_only:
        frames = [f.replace(forces=None, stress=None) for f in frames]
    if not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    order = np.random.default_rng(args.seed).permutation(len(frames))
    num_val = round(args.val_fraction * len(frames))
    val = [frames[i] for i in sorted(order[:num_val])]
    train = [frames[i] for i in sorted(order[num_val:])]
    replay = _read(args.replay, None, args.max_force)
    test = _read(args.test, args.fidelity, None)
    settings = replace(
        DEFAULT_SETTINGS,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        progress=sys.stderr.isatty(),
    )
    result = finetune(
        args.model,
        train,
        args.fidelity,
        args.output_dir,
        train=args.train,
        init_from=args.init_from,
        replay=replay,
        replay_fraction=args.replay_fraction,
        replay_count=args.replay_count,
        val_frames=val,
        test_frames=test,
        settings=settings,
        work_dir=args.work_dir,
        name=args.name,
        overwrite=args.overwrite,
    )
    sys.stdout.write(f"fine-tuned model: {result.checkpoint_dir} (fidelities {', '.join(result.model.fidelities)})\n")
    sys.stdout.write(json.dumps(result.metrics, indent=2) + "\n")
    return 0
