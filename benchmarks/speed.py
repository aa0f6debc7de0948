"""Speed, side by side in one run: the shipped model, our network at SevenNet-0's size, SevenNet-MF-0, CHGNet.

Models (``--models``): ``shipped`` is ``load_model("mf-universal")`` at ``r2scan``, the model users get;
``ours`` is a randomly initialised network at SevenNet-0's size; ``sevennet`` is SevenNet-MF-0 (modal
R2SCAN); ``chgnet`` is CHGNet r2SCAN from the ``chgnet`` wheel. Each runs through its own ASE calculator, so
neighbour lists (ours: vesin; SevenNet: matscipy; CHGNet: its own graph converter, with its 3 Å bond graph)
and graph construction are inside every timing. The screening workload predicts 256 two-atom cells through
each code's batch API (ours: ``LoadedModel.predict``; CHGNet: ``predict_structure(batch_size=64)``) against
one ASE calculator call per cell. Chemistries (``--chemistries``): rattled diamond Si and rocksalt
MgO, 8-atom cubic cells repeated (sizes 1..5 and 8: 8, 64, 216, 512, 1000 and 4096 atoms).

The comparison of ``ours`` with SevenNet-MF-0 at the same size:

What is matched (ours vs SevenNet-MF-0 from ``sevenn``, both float32, CPU, ``torch.set_num_threads(T)``):
5 interaction layers; node features 128x0e+64x1o+32x2e (SevenNet-MF-0: 128x0e+64x1e+32x2e, it does not
track parity); edge spherical harmonics lmax 2; 5 Å cutoff; 8 Bessel functions; radial MLP 64-64 (SiLU);
linear self-connection; gated nonlinearity; readout 128 -> 64 -> 1; 89 elements; two fidelities; message
normalisation ~36 neighbours. What differs: with parity, our tensor products keep 768 paths per middle
layer (SevenNet 960: it also keeps the 1e paths parity would forbid); our fidelity conditioning is a
per-fidelity bias on scalar channels (SevenNet: the one-hot appended to the linear inputs, the same
function); our cutoff envelope is polynomial (p=6), SevenNet's XPLOR; our weights are random (speed does
not depend on the values). Both run through their own ASE calculator, so the neighbour list (ours:
vesin; SevenNet: matscipy) and graph construction are inside the timing.

Structures: diamond Si cubic cells repeated 1..5 times (8, 64, 216, 512, 1000 atoms), rattled 0.05 Å.
Each number comes from a fresh subprocess (``benchmarks/speed_worker.py``), one at a time:
energy+forces+stress time is the median of repeats after two warm-up calls; peak memory is the
process high-water mark and its growth over the resident size after loading the model. MD: ASE velocity
Verlet, 64 atoms, steps/s after two warm-up steps. Training: forward + backward of an energy + forces +
stress MSE loss and an Adam step on one fixed batch of four 64-atom structures (graphs built beforehand),
with each code's own model in training mode (SevenNet: its batched ``AtomGraphSequential`` with
``create_graph`` in training mode, the loss written here in the same form).

Usage: ``python benchmarks/speed.py [--threads 2] [--sizes 1 2 3 4 5 8] [--models ...] [--chemistries si mgo]
[--quick]``
Writes ``benchmarks/results/speed.json`` and ``benchmarks/results/speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORKER = ROOT / "benchmarks" / "speed_worker.py"
MODELS = ("shipped", "ours", "sevennet", "chgnet")
CHEMISTRIES = ("si", "mgo")
REPEATS = {1: 7, 2: 5, 3: 5, 4: 3, 5: 3, 8: 3}  # 3 at 4096 atoms: the median of 2 is their mean, one slow call moves it
# ratios reported (model, anchor): the shipped model against both anchors, and the architecture at equal size
RATIOS = (("shipped", "chgnet"), ("shipped", "sevennet"), ("ours", "sevennet"))


def machine() -> dict:
    cpu = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout  # noqa: S607
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu_model": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform()}


def versions() -> dict:
    names = ("torch", "e3nn", "ase", "vesin", "numpy", "sevenn", "matscipy", "torch_geometric", "universal-mfp")
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except Exception:
            out[name] = None
    return out


# the package each anchor needs (benchmark extras, never needed by universal-mfp itself) and how to get it
ANCHOR_PACKAGES = {
    "sevennet": ("sevenn", "pip install sevenn==0.13.0 (GPL-3.0; a benchmark anchor only)"),
    "chgnet": ("chgnet", "pip install chgnet (Modified BSD), or pip install -e '.[teachers]'"),
}


def missing_anchors(models: tuple[str, ...]) -> list[str]:
    """One line per requested anchor whose package is not installed, saying how to install it."""
    from importlib.util import find_spec

    return [
        f"{model}: no module {package!r}; {how}"
        for model, (package, how) in ANCHOR_PACKAGES.items()
        if model in models and find_spec(package) is None
    ]


def worker_env(threads: int, passive: bool) -> dict[str, str]:
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def measure(model: str, task: str, threads: int, passive: bool = False, **options: int | str) -> dict:
    cmd = [sys.executable, str(WORKER), model, task, "--threads", str(threads)]
    for key, value in options.items():
        cmd += [f"--{key}", str(value)]
    env = dict(os.environ, **worker_env(threads, passive))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1])
    # one model failing at one size (SevenNet-MF-0 needs more than 24 GB for 4096 atoms of MgO) is a result,
    # not the end of the run
    if done.returncode == -9:
        reason = "killed by SIGKILL (the kernel's out-of-memory killer, if memory ran out)"
    else:
        lines = done.stderr.strip().splitlines()
        reason = f"exit code {done.returncode}: {lines[-1] if lines else 'no error message'}"
    print(f"  {model} {task} {options} failed: {reason}", flush=True)
    return {"failed": reason}


def _ok(entry: dict | None) -> bool:
    return entry is not None and "failed" not in entry


def _cell(entry: dict | None, key: str, digits: int = 0) -> str:
    return f"{entry[key]:.{digits}f}" if _ok(entry) else "failed"


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def _ratios(row: dict, key: str) -> dict[str, float]:
    return {
        f"{mine}/{anchor}": _ratio(row[mine][key], row[anchor][key])
        for mine, anchor in RATIOS
        if _ok(row.get(mine)) and _ok(row.get(anchor))
    }


def run(
    threads: int,
    sizes: list[int],
    quick: bool,
    passive: bool = False,
    models: tuple[str, ...] = MODELS,
    chemistries: tuple[str, ...] = CHEMISTRIES,
) -> dict:
    load_start = os.getloadavg()
    started = time.time()
    efs = []
    for chemistry in chemistries:
        for size in sizes:
            repeats = 2 if quick else REPEATS.get(size, 3)
            row = {
                m: measure(m, "efs", threads, passive, repeat=size, repeats=repeats, chemistry=chemistry)
                for m in models
            }
            first = next((row[m] for m in models if _ok(row[m])), {"num_atoms": None, "num_edges": None})
            row.update(chemistry=chemistry, num_atoms=first["num_atoms"], num_edges=first["num_edges"])
            row["speed_ratios"] = _ratios(row, "atoms_per_second")
            efs.append(row)
            rates = ", ".join(f"{m} {_cell(row[m], 'atoms_per_second', 1):>8s}" for m in models)
            print(f"  {chemistry} {row['num_atoms']:5d} atoms (atoms/s): {rates}", flush=True)
    md = {}
    for size in (2, 4):
        entry = {m: measure(m, "md", threads, passive, repeats=5 if quick else 20, repeat=size) for m in models}
        entry["speed_ratios"] = _ratios(entry, "steps_per_second")
        md[str(8 * size**3)] = entry
    predict = {
        m: measure(m, "predict", threads, passive, repeats=1 if quick else 3)
        for m in models
        if m in ("shipped", "chgnet")
    }
    if len(predict) == 2 and all(_ok(p) for p in predict.values()):
        predict["speed_ratio"] = _ratio(
            predict["shipped"]["batched_structures_per_second"], predict["chgnet"]["batched_structures_per_second"]
        )
    trainable = [m for m in models if m in ("ours", "sevennet")]
    train = {m: measure(m, "train", threads, passive, repeats=1 if quick else 3) for m in trainable}
    if len(trainable) == 2 and all(_ok(t) for t in train.values()):
        train["speed_ratio"] = _ratio(
            train["ours"]["structures_per_second"], train["sevennet"]["structures_per_second"]
        )
    load_end = os.getloadavg()
    return {
        "benchmark": "speed",
        "models": list(models),
        "anchors": "SevenNet-MF-0 (sevenn, modal R2SCAN, no TP accelerator); CHGNet r2SCAN (chgnet wheel)",
        "threads": threads,
        "worker_environment": worker_env(threads, passive),
        "machine": machine(),
        "versions": versions(),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "wall_seconds": time.time() - started,
        "energy_forces_stress": efs,
        "md": md,
        "predict_256_small_cells": predict,
        "training": train,
        "goals": {**goals(efs, md), **predict_goals(predict)},
    }


def goals(efs: list[dict], md: dict) -> dict:
    """The speed issue's goals, from the ratios of this run (``met`` is ``None`` when a model was not run)."""
    out: dict[str, dict] = {}
    for row in efs:
        n, chem, ratios = row["num_atoms"], row["chemistry"], row["speed_ratios"]
        if "shipped/chgnet" in ratios:
            out[f"{chem}_{n}_shipped_at_least_3x_chgnet"] = _goal(ratios["shipped/chgnet"], 3.0)
        if n in (512, 1000) and "shipped/sevennet" in ratios:
            out[f"{chem}_{n}_shipped_at_least_10x_sevennet"] = _goal(ratios["shipped/sevennet"], 10.0)
    by = {(row["chemistry"], row["num_atoms"]): row for row in efs}
    if ("mgo", 1000) in by and _ok(by[("mgo", 1000)].get("shipped")):
        rate = by[("mgo", 1000)]["shipped"]["atoms_per_second"]
        out["mgo_1000_shipped_at_least_1500_atoms_per_s"] = _goal(rate, 1500.0)
        if ("mgo", 4096) in by and _ok(by[("mgo", 4096)].get("shipped")):
            big = by[("mgo", 4096)]["shipped"]
            out["mgo_linear_4096_vs_1000_at_least_0.9"] = _goal(big["atoms_per_second"] / rate, 0.9)
            out["mgo_4096_peak_under_2_GiB"] = {"value": big["peak_rss_mib"], "met": big["peak_rss_mib"] < 2048}
    if "shipped/chgnet" in md.get("64", {}).get("speed_ratios", {}):
        out["md_64_shipped_at_least_3x_chgnet"] = _goal(md["64"]["speed_ratios"]["shipped/chgnet"], 3.0)
    return out


def predict_goals(predict: dict) -> dict:
    """Batched predict of small cells at least 5x faster per structure than one ASE call per structure."""
    if not _ok(predict.get("shipped")):
        return {}
    return {"predict_256_batched_at_least_5x_one_by_one": _goal(predict["shipped"]["batched_speedup"], 5.0)}


def _goal(value: float, target: float) -> dict:
    return {"value": value, "target": target, "met": value >= target}


def markdown(result: dict) -> str:
    m, v = result["machine"], result["versions"]
    models = result["models"]
    lines = [
        "# Speed: the shipped mf-universal, our network at SevenNet-0 size, SevenNet-MF-0 and CHGNet r2SCAN",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs; torch threads: {result['threads']}. "
        f"Load average (1/5/15 min) at start {tuple(round(x, 2) for x in result['load_average_start'])}, "
        f"at end {tuple(round(x, 2) for x in result['load_average_end'])}. "
        f"Worker environment: {result['worker_environment']}.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "Energy + forces + stress through each ASE calculator (neighbour list and graph included), float32, "
        "median time, atoms per second; peak = process high-water mark (MiB).",
        "",
        "| crystal | atoms | "
        + " | ".join(f"{x} atoms/s" for x in models)
        + " | "
        + " | ".join(f"{x} peak MiB" for x in models)
        + " | ratios |",
        "|---|---:|" + "---:|" * (2 * len(models)) + "---|",
    ]
    for row in result["energy_forces_stress"]:
        rates = " | ".join(_cell(row[x], "atoms_per_second") for x in models)
        peaks = " | ".join(_cell(row[x], "peak_rss_mib") for x in models)
        ratios = ", ".join(f"{k} {r:.2f}" for k, r in row["speed_ratios"].items())
        lines.append(f"| {row['chemistry']} | {row['num_atoms']} | {rates} | {peaks} | {ratios} |")
    lines += ["", "ASE velocity Verlet on diamond Si (steps/s):", ""]
    lines += ["| atoms | " + " | ".join(models) + " | ratios |", "|---:|" + "---:|" * len(models) + "---|"]
    for n, entry in result["md"].items():
        steps = " | ".join(_cell(entry[x], "steps_per_second", 2) for x in models)
        ratios = ", ".join(f"{k} {r:.2f}" for k, r in entry["speed_ratios"].items())
        lines.append(f"| {n} | {steps} | {ratios} |")
    predict = result.get("predict_256_small_cells", {})
    if "shipped" in predict:
        lines += ["", "Screening workload, 256 two-atom cells (structures/s):", ""]
        lines += ["| model | batched | one ASE call each | batched speed-up |", "|---|---:|---:|---:|"]
        for name in ("shipped", "chgnet"):
            if _ok(predict.get(name)):
                p = predict[name]
                lines.append(
                    f"| {name} | {p['batched_structures_per_second']:.0f} | "
                    f"{p['one_by_one_structures_per_second']:.0f} | {p['batched_speedup']:.2f} |"
                )
    train = result["training"]
    if "speed_ratio" in train:
        lines += [
            "",
            "Training (4 x 64 atoms, E+F+S loss + Adam, structures/s): "
            f"ours {train['ours']['structures_per_second']:.2f}, "
            f"SevenNet {train['sevennet']['structures_per_second']:.2f}, ratio {train['speed_ratio']:.2f}.",
        ]
    failures = [
        f"- {row['chemistry']} {row['num_atoms'] or ''}: {x} {row[x]['failed']}"
        for row in result["energy_forces_stress"]
        for x in models
        if not _ok(row[x])
    ]
    if failures:
        lines += ["", "Failed measurements:", "", *failures]
    lines += ["", "Goals:", ""]
    for name, goal in result["goals"].items():
        lines.append(f"- {name}: {goal['value']:.2f} ({'met' if goal['met'] else 'NOT met'})")
    lines += ["", "What each code does per call and what is matched: see the docstring of `benchmarks/speed.py`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4, 5, 8], help="cubic-cell repeats")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--chemistries", nargs="+", default=list(CHEMISTRIES), choices=CHEMISTRIES)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for both models: on a machine whose cores are busy with other work, "
        "spinning OpenMP threads make timings erratic (10-40x slowdowns seen for either model)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "speed.json")
    args = parser.parse_args()
    missing = missing_anchors(tuple(args.models))
    if missing:  # before any timing: a run that dies half-way wastes the idle machine it needs
        raise SystemExit("cannot time every model asked for:\n" + "\n".join(missing))
    print(f"load average at start: {os.getloadavg()}", flush=True)
    result = run(args.threads, args.sizes, args.quick, args.omp_passive, tuple(args.models), tuple(args.chemistries))
    text = markdown(result)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
