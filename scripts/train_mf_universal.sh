#!/usr/bin/env bash
# Rebuild the bundled model mf-universal from the shared real frames, with one command:
#   bash scripts/train_mf_universal.sh
# 1. the data pipeline's importer turns each file of ../shared/data/frames into dataset shards
#    (runs/data/shared-frames/<file>/), splitting with the config's seed and fractions;
# 2. the trainer runs configs/mf-universal-v1.yaml on those shards and on the committed teacher dataset
#    datasets/teacher (resumable: rerun after an interruption; the run folder is runs/mf-universal-v1).
# Set UMFP_SHARED_DATA to use a data folder other than ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
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
umfp train "${1:-configs/mf-universal-v1.yaml}"
