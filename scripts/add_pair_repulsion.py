"""Write a trained checkpoint with the fixed ZBL pair repulsion added below its training data's closest pairs.

Reads the run's data through its config (after its filters, every split), checks that no pair of any frame is
within the cutoff, and writes the checkpoint with ``pair_repulsion`` on (``universal_mfp/training/add_repulsion.py``).

Run: python scripts/add_pair_repulsion.py --checkpoint runs/mf-universal-v1-cycle13/best_model \
         --config configs/mf-universal-v1-cycle13.yaml --cutoff-factor 0.38 \
         --output runs/mf-universal-v1-final/best_model
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from universal_mfp.training.add_repulsion import add_pair_repulsion
from universal_mfp.training.config import load_run_config
from universal_mfp.training.run import read_sources


def main() -> None:
    """Add the repulsion and print its record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the trained checkpoint folder")
    parser.add_argument("--config", type=Path, required=True, help="the run config that trained it (its data)")
    parser.add_argument("--cutoff-factor", type=float, required=True, help="cutoff in covalent-radius sums")
    parser.add_argument("--output", type=Path, required=True, help="the new checkpoint folder")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    frames = read_sources(load_run_config(args.config))
    record = add_pair_repulsion(args.checkpoint, args.output, frames, args.cutoff_factor, overwrite=args.overwrite)
    logging.getLogger(__name__).info(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
