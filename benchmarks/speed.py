"""Speed: our model at SevenNet-0's size against SevenNet-MF-0 (modal R2SCAN), side by side in one run.

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

Usage: ``python benchmarks/speed.py [--threads 2] [--sizes 1 2 3 4 5] [--quick]``
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
MODELS = ("sevennet", "ours")  # the anchor first
REPEATS = {1: 7, 2: 5, 3: 5, 4: 3, 5: 3}


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


def worker_env(threads: int, passive: bool) -> dict[str, str]:
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def measure(model: str, task: str, threads: int, passive: bool = False, **options: int) -> dict:
    cmd = [sys.executable, str(WORKER), model, task, "--threads", str(threads)]
    for key, value in options.items():
        cmd += [f"--{key}", str(value)]
    env = dict(os.environ, **worker_env(threads, passive))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def run(threads: int, sizes: list[int], quick: bool, passive: bool = False) -> dict:
    load_start = os.getloadavg()
    started = time.time()
    efs = []
    for size in sizes:
        repeats = 2 if quick else REPEATS.get(size, 3)
        row = {m: measure(m, "efs", threads, passive, repeat=size, repeats=repeats) for m in MODELS}
        ours, theirs = row["ours"], row["sevennet"]
        row["num_atoms"] = ours["num_atoms"]
        row["num_edges"] = ours["num_edges"]
        row["speed_ratio"] = _ratio(ours["atoms_per_second"], theirs["atoms_per_second"])
        row["memory_growth_ratio"] = _ratio(ours["peak_growth_mib"], theirs["peak_growth_mib"])
        row["peak_rss_ratio"] = _ratio(ours["peak_rss_mib"], theirs["peak_rss_mib"])
        efs.append(row)
        print(
            f"  {row['num_atoms']:5d} atoms: ours {ours['atoms_per_second']:8.1f} at/s, "
            f"SevenNet {theirs['atoms_per_second']:8.1f} at/s, ratio {row['speed_ratio']:.2f}",
            flush=True,
        )
    md = {m: measure(m, "md", threads, passive, repeats=5 if quick else 20) for m in MODELS}
    md["speed_ratio"] = _ratio(md["ours"]["steps_per_second"], md["sevennet"]["steps_per_second"])
    train = {m: measure(m, "train", threads, passive, repeats=1 if quick else 3) for m in MODELS}
    train["speed_ratio"] = _ratio(train["ours"]["structures_per_second"], train["sevennet"]["structures_per_second"])
    load_end = os.getloadavg()
    return {
        "benchmark": "speed",
        "anchor": "SevenNet-MF-0 (sevenn, modal R2SCAN, no TP accelerator)",
        "threads": threads,
        "worker_environment": worker_env(threads, passive),
        "machine": machine(),
        "versions": versions(),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "wall_seconds": time.time() - started,
        "energy_forces_stress": efs,
        "md_64_atoms": md,
        "training": train,
        "goals": goals(efs),
    }


def goals(efs: list[dict]) -> dict:
    by_n = {row["num_atoms"]: row for row in efs}
    out = {}
    for n in (64, 512):
        if n in by_n:
            out[f"efs_{n}_at_least_2x"] = {"ratio": by_n[n]["speed_ratio"], "met": by_n[n]["speed_ratio"] >= 2.0}
    if 64 in by_n and 1000 in by_n:
        ratio = by_n[1000]["ours"]["atoms_per_second"] / by_n[64]["ours"]["atoms_per_second"]
        out["linear_1000_vs_64_at_least_0.8"] = {"ratio": ratio, "met": ratio >= 0.8}
    if 1000 in by_n:
        ratio = by_n[1000]["memory_growth_ratio"]
        out["memory_1000_at_most_half"] = {"ratio": ratio, "met": ratio <= 0.5}
    return out


def markdown(result: dict) -> str:
    m, v = result["machine"], result["versions"]
    lines = [
        "# Speed: universal-mfp (SevenNet-0 size) vs SevenNet-MF-0 (R2SCAN)",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs; torch threads: {result['threads']}. "
        f"Load average (1/5/15 min) at start {tuple(round(x, 2) for x in result['load_average_start'])}, "
        f"at end {tuple(round(x, 2) for x in result['load_average_end'])}. "
        f"Worker environment: {result['worker_environment']}.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "Energy + forces + stress through each ASE calculator (neighbour list included), float32, median time; "
        "peak memory = growth of the process high-water mark over its size after loading the model.",
        "",
        "| atoms | edges | ours ms | SevenNet ms | ours atoms/s | SevenNet atoms/s | speed ours/SevenNet "
        "| ours peak MiB | SevenNet peak MiB | memory ours/SevenNet |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["energy_forces_stress"]:
        o, s = row["ours"], row["sevennet"]
        lines.append(
            f"| {row['num_atoms']} | {row['num_edges']} | {1e3 * o['seconds_median']:.1f} | "
            f"{1e3 * s['seconds_median']:.1f} | {o['atoms_per_second']:.0f} | {s['atoms_per_second']:.0f} | "
            f"{row['speed_ratio']:.2f} | {o['peak_growth_mib']:.0f} | {s['peak_growth_mib']:.0f} | "
            f"{row['memory_growth_ratio']:.2f} |"
        )
    md, tr = result["md_64_atoms"], result["training"]
    lines += [
        "",
        "| workload | ours | SevenNet | ratio ours/SevenNet |",
        "|---|---:|---:|---:|",
        f"| ASE MD, 64 atoms (steps/s) | {md['ours']['steps_per_second']:.2f} | "
        f"{md['sevennet']['steps_per_second']:.2f} | {md['speed_ratio']:.2f} |",
        f"| training, 4 x 64 atoms, E+F+S loss + Adam (structures/s) | {tr['ours']['structures_per_second']:.2f} | "
        f"{tr['sevennet']['structures_per_second']:.2f} | {tr['speed_ratio']:.2f} |",
        "",
        "Goals:",
        "",
    ]
    for name, goal in result["goals"].items():
        lines.append(f"- {name}: {goal['ratio']:.2f} ({'met' if goal['met'] else 'NOT met'})")
    lines += ["", "What is matched and what differs: see the docstring of `benchmarks/speed.py`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="cubic-cell repeats")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for both models: on a machine whose cores are busy with other work, "
        "spinning OpenMP threads make timings erratic (10-40x slowdowns seen for either model)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "speed.json")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    result = run(args.threads, args.sizes, args.quick, args.omp_passive)
    text = markdown(result)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
