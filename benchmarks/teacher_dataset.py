"""Statistics, cost and integrity of the teacher dataset (datasets/teacher), for docs/teacher_data.md.

Reads the labelled shards and the records of both stages (generation in runs/teacher/structures, when present;
labelling in datasets/teacher), checks every shard against the manifest's sha256, and writes
benchmarks/results/teacher_dataset.json and benchmarks/results/teacher_dataset.png.

Run: python benchmarks/teacher_dataset.py [--dataset datasets/teacher] [--structures runs/teacher/structures]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from universal_mfp_pipelines.teacher_stats import dataset_statistics, plot_statistics, verify_manifest

ROOT = Path(__file__).resolve().parents[1]


def stage_cost(folder: Path, prefix: str) -> dict:
    records = [json.loads(p.read_text()) for p in sorted(folder.glob(f"{prefix}-*.json"))]
    seconds = sum(r["seconds"] for r in records)
    return {"shards": len(records), "process_seconds": round(seconds, 1), "records": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / "datasets" / "teacher")
    parser.add_argument("--structures", type=Path, default=ROOT / "runs" / "teacher" / "structures")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "teacher_dataset")
    args = parser.parse_args()

    manifest = verify_manifest(args.dataset)
    stats = dataset_statistics(args.dataset)
    labelling = stage_cost(args.dataset, "labels")
    structures = sum(r["structures"] for r in labelling["records"])
    teachers = len(stats["fidelities"])
    cost = {
        "labelling_process_seconds": labelling["process_seconds"],
        "teacher_calls": structures * teachers,
        "teacher_calls_per_process_second": round(structures * teachers / labelling["process_seconds"], 2),
        "failed_structures": sum(len(r["failed"]) for r in labelling["records"]),
    }
    if args.structures.is_dir():
        generation = stage_cost(args.structures, "structures")
        cost["generation_process_seconds"] = generation["process_seconds"]
        cost["generation_failed_jobs"] = sum(len(r["failed_jobs"]) for r in generation["records"])
        cost["generation_dropped_frames"] = sum(sum(r["dropped_frames"].values()) for r in generation["records"])
        plan = json.loads((args.structures / "plan.json").read_text())
        cost["generation_settings"] = plan["settings"]
    size = sum(entry["bytes"] for entry in manifest["shards"])
    result = {
        "statistics": stats,
        "cost": cost,
        "bytes": size,
        "shards": len(manifest["shards"]),
        "teachers": manifest["teachers"],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot_statistics(stats, args.output.with_suffix(".png"))
    print(json.dumps({k: v for k, v in stats.items() if not k.endswith("per_element")}, indent=1))
    print(json.dumps(cost | {"bytes": size}, indent=1, default=str)[:3000])


if __name__ == "__main__":
    main()
