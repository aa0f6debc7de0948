"""Where an energy + forces + stress call of the shipped model spends its time, on a small and a large cell.

For each crystal (8 and 64 atoms of rattled diamond Si, 1000 atoms of rattled rocksalt MgO) it times, as the
minimum over repeats after warm-up, with ``torch.set_num_threads(T)``:

* the whole call through the batch API (``predict_structures``, forces and stress; what the calculator runs);
* graph building: the conversion to a ``Frame``, the neighbour list (vesin) and the batch;
* the energy alone (no derivatives), so that the derivative pass is what the whole call adds to it;
* the pieces of the network, each forward + backward to the edge vectors: edge harmonics and radial basis, the
  angular invariants, and each interaction layer's message pass with its radial network (the memory-lean pass
  the calculator uses);

then the operators taking most of the whole call's CPU time (torch profiler, self time). Use it before and after
a change to see what moved; ``benchmarks/speed.py`` compares with other codes.

Usage: ``python benchmarks/profile_shipped.py [--threads 2] [--output benchmarks/results/profile_shipped.json]``
(writes the JSON and a Markdown table beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.speed_worker import crystal  # noqa: E402
from universal_mfp import load_model  # noqa: E402
from universal_mfp.data import keys  # noqa: E402
from universal_mfp.data.batching import batch_to, collate_graphs  # noqa: E402
from universal_mfp.data.frame import as_frame  # noqa: E402
from universal_mfp.data.graph import frame_to_graph  # noqa: E402
from universal_mfp.inference import predict_structures  # noqa: E402
from universal_mfp.model.channelwise_recompute import recomputed_messages  # noqa: E402
from universal_mfp.model.radial_mlp import radial_matrices  # noqa: E402

CASES = (("si", 1), ("si", 2), ("mgo", 5))
FIDELITY = "r2scan"


def best_ms(fn: Callable[[], object], seconds: float = 2.0, most: int = 50) -> float:
    """Minimum wall time (ms) of ``fn`` over repeats filling about ``seconds``, after two warm-up calls."""
    fn()
    fn()
    times: list[float] = []
    budget = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < budget and len(times) < most):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * min(times)


def _to_vectors(model, atoms) -> tuple[dict, torch.Tensor]:
    graph = frame_to_graph(as_frame(atoms), model.config.cutoff, model.fidelities.index(FIDELITY))
    batch = batch_to(collate_graphs([graph]), model.device)
    vectors = model._edge_vectors(
        batch[keys.POSITIONS].to(model.dtype),
        batch[keys.CELL].to(model.dtype),
        batch[keys.EDGE_INDEX],
        batch[keys.EDGE_SHIFTS].to(model.dtype),
        batch[keys.BATCH],
    )
    return batch, vectors.detach()


def profile_case(model, chemistry: str, repeat: int) -> dict:
    atoms = crystal(repeat, chemistry=chemistry)
    index = model.fidelities.index(FIDELITY)
    batch, vectors = _to_vectors(model, atoms)
    edge_index = batch[keys.EDGE_INDEX]
    centre, neighbour = edge_index[0], edge_index[1]
    species = model.species(batch[keys.ATOMIC_NUMBERS])
    node_fidelity = torch.full_like(species, index)
    out = {"chemistry": chemistry, "num_atoms": len(atoms), "num_edges": int(edge_index.shape[1])}

    def whole() -> None:
        predict_structures(model, [atoms], fidelity=FIDELITY)

    def graph() -> None:
        batch_to(collate_graphs([frame_to_graph(as_frame(atoms), model.config.cutoff, index)]), model.device)

    def energy() -> None:
        with torch.no_grad():
            model(batch, compute_forces=False, compute_stress=False, create_graph=False)

    out["whole_call_ms"] = best_ms(whole)
    out["graph_ms"] = best_ms(graph)
    out["energy_only_ms"] = best_ms(energy)
    out["derivatives_ms"] = out["whole_call_ms"] - out["graph_ms"] - out["energy_only_ms"]

    pieces: dict[str, float] = {}
    leaf = vectors.clone().requires_grad_(True)

    def harmonics_and_radial() -> None:
        total = model.edge_harmonics(leaf).sum() + model.radial(torch.linalg.vector_norm(leaf, dim=1)).sum()
        torch.autograd.grad(total, [leaf])

    pieces["edge harmonics + radial basis"] = best_ms(harmonics_and_radial)
    with torch.no_grad():
        radial = model.radial(torch.linalg.vector_norm(vectors, dim=1))
        everything = model.edge_harmonics(vectors)
    if model.angular is not None:
        harmonics_leaf, radial_leaf = everything.clone().requires_grad_(True), radial.clone().requires_grad_(True)

        def angular() -> None:
            added = model.angular(species, edge_index, harmonics_leaf, radial_leaf, lean=True)
            torch.autograd.grad(added.sum(), [harmonics_leaf, radial_leaf])

        pieces["angular invariants"] = best_ms(angular)
    edge_harmonics = everything[:, : model.num_edge_harmonics].contiguous().requires_grad_(True)
    radial_leaf = radial.clone().requires_grad_(True)
    with torch.no_grad():
        features = model.embedding(species)
        inputs = []
        for block in model.interactions:
            inputs.append(block.linear_1(features, node_fidelity))
            features = block(features, node_fidelity, edge_index, edge_harmonics, radial)
    for layer, (block, x) in enumerate(zip(model.interactions, inputs, strict=True)):
        x_leaf = x.clone().requires_grad_(True)
        matrices = [m.detach() for m in radial_matrices(block.radial_network)]

        def messages(block=block, x_leaf=x_leaf, matrices=matrices) -> None:
            summed = recomputed_messages(
                block.messages, x_leaf, edge_harmonics, radial_leaf, centre, neighbour, matrices
            )
            torch.autograd.grad(summed.sum(), [x_leaf, edge_harmonics, radial_leaf])

        pieces[f"layer {layer} messages + radial network"] = best_ms(messages)
    out["pieces_forward_backward_ms"] = pieces

    whole()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            whole()
    averages = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in averages) or 1.0
    averages.sort(key=lambda e: -e.self_cpu_time_total)
    out["top_operators_self_cpu_share"] = {e.key: e.self_cpu_time_total / total for e in averages[:10]}
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Where a call of the shipped model spends its time",
        "",
        f"Model `{result['model']}` at `{FIDELITY}`, float32, torch threads: {result['threads']}. Load average "
        f"(1/5/15 min) at start {result['load_average_start']}, at end {result['load_average_end']}. Minimum wall "
        "time over repeats (ms). Produced by `benchmarks/profile_shipped.py`.",
        "",
        "| crystal | atoms | edges | whole call | graph | energy only | derivatives (rest) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in result["cases"]:
        lines.append(
            f"| {case['chemistry']} | {case['num_atoms']} | {case['num_edges']} | {case['whole_call_ms']:.1f} | "
            f"{case['graph_ms']:.2f} | {case['energy_only_ms']:.1f} | {case['derivatives_ms']:.1f} |"
        )
    lines += ["", "Pieces of the network, forward + backward to the edges (ms):", ""]
    names = list(result["cases"][0]["pieces_forward_backward_ms"])
    header = " | ".join(f"{c['chemistry']} {c['num_atoms']}" for c in result["cases"])
    lines += [f"| piece | {header} |", "|---|" + "---:|" * len(result["cases"])]
    for name in names:
        values = " | ".join(f"{c['pieces_forward_backward_ms'][name]:.2f}" for c in result["cases"])
        lines.append(f"| {name} | {values} |")
    lines += ["", "Operators with the most self CPU time in the whole call (torch profiler, share of aten time):", ""]
    for case in result["cases"]:
        top = ", ".join(f"{k.removeprefix('aten::')} {v:.0%}" for k, v in case["top_operators_self_cpu_share"].items())
        lines.append(f"- {case['chemistry']} {case['num_atoms']}: {top}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "profile_shipped.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_start = list(os.getloadavg())
    model = load_model("mf-universal").calculator(FIDELITY).model  # the calculator's frozen evaluation copy
    result = {
        "model": "mf-universal",
        "threads": args.threads,
        "load_average_start": load_start,
        "cases": [profile_case(model, chemistry, repeat) for chemistry, repeat in CASES],
    }
    result["load_average_end"] = list(os.getloadavg())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(result))
    sys.stdout.write(markdown(result))


if __name__ == "__main__":
    main()
