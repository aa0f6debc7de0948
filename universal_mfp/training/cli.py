"""``umfp train CONFIG.yaml``: the training subcommand (also ``torchrun ... -m universal_mfp.training``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

logger = logging.getLogger(__name__)


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` on an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "train",
        help="train a multi-fidelity model from a YAML config",
        description="Train a multi-fidelity model as described by CONFIG (see configs/example.yaml). "
        "Run under torchrun for data-parallel training: torchrun --nproc_per_node N -m universal_mfp.training CONFIG",
    )
    parser.add_argument("config", help="YAML run configuration")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if the output folder has states")
    parser.set_defaults(handler=run_train)
    return parser


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``umfp train``."""
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.distributed import init_distributed, shutdown
    from universal_mfp.training.run import train_from_config

    config = load_run_config(args.config)
    context = init_distributed()
    try:
        summary = train_from_config(config, resume=not args.no_resume, context=context)
    finally:
        shutdown(context)
    if context.is_main:
        print(f"best model: {summary.best_model_dir}")  # noqa: T201
        print(json.dumps(summary.metrics, indent=2))  # noqa: T201
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m universal_mfp.training CONFIG``."""
    parser = argparse.ArgumentParser(prog="python -m universal_mfp.training")
    subparsers = parser.add_subparsers(dest="command")
    add_train_parser(subparsers)
    args = parser.parse_args(["train", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)
