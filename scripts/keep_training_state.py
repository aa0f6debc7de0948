"""Keep a long training run's newest resumable state in the repository, and put it back in a fresh clone.

A training state (``<run>/states/step-*``: weights, EMA, optimizer, counters; about 2 MB for mf-universal) is
copied to ``training_states/<run name>/`` together with the validation records and every 50th training record
of ``metrics.jsonl`` (gzipped), so that a run longer than one working session can be committed and resumed on
another machine: ``--restore`` (called by ``scripts/train_mf_universal.sh``) copies it back when the run folder
has no state of its own, and prints the run folder.

Run: python scripts/keep_training_state.py --config configs/mf-universal-v1.yaml [--restore]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import sys
from pathlib import Path

from universal_mfp.files import atomic_directory
from universal_mfp.training.config import load_run_config
from universal_mfp.training.state_io import latest_state
from universal_mfp.training.trainer import STATES_DIR

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "training_states"
METRICS = "metrics.jsonl"
TRAIN_RECORD_STRIDE = 50

logger = logging.getLogger("keep_training_state")


def keep(run: Path, target: Path) -> Path:
    """Replace ``target`` with the run's newest state and its thinned metrics log; return the state copied."""
    state = latest_state(run / STATES_DIR)
    if state is None:
        raise SystemExit(f"{run}/states holds no complete training state to keep")
    with atomic_directory(target, overwrite=True) as staging:
        shutil.copytree(state, staging / state.name)
        log = run / METRICS
        if log.is_file():
            records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
            kept = [r for r in records if r.get("kind") != "train" or r["step"] % TRAIN_RECORD_STRIDE == 0]
            with gzip.open(staging / f"{METRICS}.gz", "wt", encoding="utf-8") as handle:
                handle.writelines(json.dumps(r) + "\n" for r in kept)
    return state


def restore(source: Path, run: Path) -> Path | None:
    """Copy a kept state into a run folder that has none; return the state folder restored, if any."""
    if latest_state(run / STATES_DIR) is not None or not source.is_dir():
        return None
    state = latest_state(source)
    if state is None:
        raise SystemExit(f"{source} holds no complete training state")
    (run / STATES_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copytree(state, run / STATES_DIR / state.name)
    log = source / f"{METRICS}.gz"
    if log.is_file() and not (run / METRICS).exists():
        with gzip.open(log, "rt", encoding="utf-8") as handle:
            (run / METRICS).write_text(handle.read(), encoding="utf-8")
    return state


def main() -> None:
    """Keep the newest state of the config's run, or restore it with ``--restore``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the run's YAML config (names its output_dir)")
    parser.add_argument("--restore", action="store_true", help="copy the kept state into an empty run folder")
    args = parser.parse_args()
    run = load_run_config(args.config).output_dir.resolve()
    target = KEPT / run.name
    if args.restore:
        restored = restore(target, run)
        if restored is not None:
            logger.info("resuming %s from the kept state %s", run, restored.relative_to(ROOT))
        print(run)  # the shell script reads the run folder
        return
    state = keep(run, target)
    logger.info("kept %s in %s", state, target.relative_to(ROOT))


if __name__ == "__main__":
    main()
