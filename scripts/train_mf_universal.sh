#!/usr/bin/env bash
# Rebuild the bundled model mf-universal from the shared real frames, with one command:
#   bash scripts/train_mf_universal.sh [CONFIG ...]
# 1. the data pipeline's importer turns each file of ../shared/data/frames into dataset shards
#    (runs/data/shared-frames/<file>/), splitting with the config's seed and fractions;
# 2. the trainer runs each config in turn (default: v1's thirteen cycles, configs/mf-universal-v1.yaml, then
#    configs/mf-universal-v1-cycle2.yaml, -cycle3.yaml, -cycle4.yaml, -cycle5.yaml, -cycle6.yaml, -cycle7.yaml,
#    -cycle8.yaml, -cycle9.yaml, -cycle10.yaml, -cycle11.yaml, -cycle12.yaml and -cycle13.yaml, each starting from the model of the one before) on those
#    shards and on the committed datasets (the teacher datasets datasets/teacher*, and from cycle 10 the GPAW
#    volume scans datasets/dft-eos-gpaw*, made by `umfp data dft-eos`). It is resumable: rerun after an interruption. Each run
#    folder is its config's output_dir (runs/<name>/);
#    when it holds no state yet but training_states/<name>/ does (a state committed by
#    scripts/keep_training_state.py, so that a long run survives a fresh clone), training resumes from that
#    state. A finished run only re-evaluates its model.
# 3. (default configs only) the released model, runs/mf-universal-v1-final/best_model: cycle 13's model with the
#    fixed ZBL pair repulsion added below 0.38 covalent sums, where no frame of the data has a pair
#    (scripts/add_pair_repulsion.py checks that on the data and refuses otherwise).
# Set UMFP_SHARED_DATA to use a data folder other than ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
    configs=("$@")
else
    configs=(configs/mf-universal-v1.yaml configs/mf-universal-v1-cycle2.yaml configs/mf-universal-v1-cycle3.yaml
        configs/mf-universal-v1-cycle4.yaml configs/mf-universal-v1-cycle5.yaml configs/mf-universal-v1-cycle6.yaml
        configs/mf-universal-v1-cycle7.yaml configs/mf-universal-v1-cycle8.yaml configs/mf-universal-v1-cycle9.yaml
        configs/mf-universal-v1-cycle10.yaml configs/mf-universal-v1-cycle11.yaml
        configs/mf-universal-v1-cycle12.yaml configs/mf-universal-v1-cycle13.yaml)
fi
frames="${UMFP_SHARED_DATA:-../shared/data}/frames"
out=runs/data/shared-frames
if [ ! -d "$frames" ]; then
    echo "no shared frames at $frames (set UMFP_SHARED_DATA)" >&2
    exit 1
fi
for file in "$frames"/*.extxyz; do
    umfp data --no-progress import "$file" "$out/$(basename "$file" .extxyz)" \
        --seed 2026 --fractions 0.9 0.05 0.05 --overwrite
done
for config in "${configs[@]}"; do
    run="$(python scripts/keep_training_state.py --config "$config" --restore)"
    echo "training $config in $run" >&2
    umfp train "$config"
done
if [ "$#" -eq 0 ]; then
    python scripts/add_pair_repulsion.py --checkpoint runs/mf-universal-v1-cycle13/best_model \
        --config configs/mf-universal-v1-cycle13.yaml --cutoff-factor 0.38 \
        --output runs/mf-universal-v1-final/best_model --overwrite
fi
