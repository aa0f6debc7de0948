"""One speed measurement in a fresh process (called by ``benchmarks/speed.py``; prints one JSON line).

``python benchmarks/speed_worker.py MODEL TASK [--repeat N] [--chemistry si|mgo] [--repeats R] [--threads T]``
with MODEL ``ours`` (random weights at SevenNet-0's size), ``shipped`` (``load_model("mf-universal")`` at
``r2scan``, the model users get), ``sevennet`` (SevenNet-MF-0, modal R2SCAN) or ``chgnet`` (CHGNet r2SCAN from
the ``chgnet`` wheel, through its own ASE calculator) and TASK ``efs`` (energy+forces+stress through the
ASE calculator, neighbour list included), ``md`` (ASE velocity Verlet steps on 64 atoms) or ``train``
(forward + backward of an
energy+forces+stress loss and an Adam step on one fixed batch, graphs built beforehand) or ``predict`` (256
small cells through the batch API against one ASE call per cell; ``shipped`` and ``chgnet``).

Peak memory is the process's high-water mark (``VmHWM``) and its growth over the resident size after
the model was loaded (``VmRSS`` before the first evaluation), so each model is measured alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import all_changes

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROPERTIES = ["energy", "forces", "stress"]
TRAIN_BATCH = 4  # structures of 64 atoms per training step

# SevenNet-0 / SevenNet-MF-0 size: 5 layers, 128x0e+64x1(o|e)+32x2e, lmax 2, 5 Å cutoff, 8 Bessel functions,
# radial MLP 64-64, 64-wide readout, 89 elements, two fidelities, conv denominator ~36.
OURS_CONFIG = dict(
    elements=tuple(range(1, 90)),
    fidelities=("pbe", "r2scan"),
    cutoff=5.0,
    num_layers=5,
    hidden_irreps="128x0e+64x1o+32x2e",
    lmax_edge=2,
    num_radial_basis=8,
    radial_mlp_hidden=(64, 64),
    readout_hidden=64,
    avg_num_neighbors=36.0,
    dtype="float32",
)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def crystal(repeat: int, seed: int = 0, strain: float = 0.0, chemistry: str = "si") -> Atoms:
    """An 8-atom cubic cell (diamond Si, or rocksalt MgO: a dense oxide) repeated ``repeat``³ times, rattled 0.05 Å."""
    if chemistry == "si":
        cell = bulk("Si", "diamond", a=5.43, cubic=True)
    elif chemistry == "mgo":
        cell = bulk("MgO", "rocksalt", a=4.21, cubic=True)
    else:
        raise ValueError(f"unknown chemistry {chemistry!r}; use si or mgo")
    atoms = cell * (repeat, repeat, repeat)
    if strain:
        atoms.set_cell(atoms.cell.array * (1.0 + strain), scale_atoms=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


def ours_model(train: bool = False):
    from universal_mfp.model import ModelConfig, build_model

    model = build_model(ModelConfig(**OURS_CONFIG), seed=0)
    num_f, num_s = len(model.fidelities), len(model.config.elements)
    model.set_energy_normalization(-4.0 * torch.ones(num_f, num_s), torch.ones(num_f))
    return model.train(train)


def ours_calculator():
    from universal_mfp.calculator import MFCalculator

    return MFCalculator(ours_model(), fidelity="r2scan")


def sevennet_calculator():
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SevenNetCalculator("7net-mf-0", modal="R2SCAN", device="cpu")


def shipped_calculator():
    from universal_mfp import load_model

    return load_model("mf-universal").calculator("r2scan")


def chgnet_calculator():
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CHGNetCalculator(CHGNet.load(model_name="r2scan", use_device="cpu", verbose=False), use_device="cpu")


CALCULATORS = {
    "ours": ours_calculator,
    "shipped": shipped_calculator,
    "sevennet": sevennet_calculator,
    "chgnet": chgnet_calculator,
}


def calculator(model: str):
    return CALCULATORS[model]()


def _num_edges(atoms: Atoms) -> int:
    from universal_mfp.data.neighbors import neighbor_list

    return len(neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, OURS_CONFIG["cutoff"])[0])


def run_efs(model: str, num_atoms_repeat: int, repeats: int, chemistry: str = "si") -> dict:
    calc = calculator(model)
    atoms = crystal(num_atoms_repeat, chemistry=chemistry)
    rss_loaded = _status_kib("VmRSS")
    for _ in range(2):  # warm-up
        calc.calculate(atoms, PROPERTIES, all_changes)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        calc.calculate(atoms, PROPERTIES, all_changes)
        times.append(time.perf_counter() - start)
    assert np.isfinite(calc.results["forces"]).all()
    assert np.asarray(calc.results["stress"]).size in (6, 9)  # Voigt (ours, SevenNet) or 3x3 (CHGNet)
    peak = _status_kib("VmHWM")
    median = statistics.median(times)
    return {
        "num_atoms": len(atoms),
        "num_edges": _num_edges(atoms),
        "seconds_median": median,
        "seconds_all": times,
        "atoms_per_second": len(atoms) / median,
        "peak_rss_mib": peak / 1024,
        "peak_growth_mib": (peak - rss_loaded) / 1024,
    }


def small_cells(count: int = 256) -> list[Atoms]:
    """The screening workload: ``count`` rattled 2-atom primitive cells, half Si and half MgO."""
    cells = []
    for k in range(count):
        atoms = bulk("Si", "diamond", a=5.43) if k % 2 == 0 else bulk("MgO", "rocksalt", a=4.21)
        atoms.rattle(0.05, seed=k)
        cells.append(atoms)
    return cells


def run_predict(model: str, repeats: int) -> dict:
    """Batched prediction of 256 small cells against one ASE calculator call per cell (energy+forces+stress)."""
    cells = small_cells()
    if model == "shipped":
        from universal_mfp import load_model

        loaded = load_model("mf-universal")

        def batched() -> None:
            loaded.predict(cells, fidelity="r2scan")

        calc = loaded.calculator("r2scan")
    elif model == "chgnet":
        from chgnet.model import CHGNet
        from pymatgen.io.ase import AseAtomsAdaptor

        net = CHGNet.load(model_name="r2scan", use_device="cpu", verbose=False)
        structures = [AseAtomsAdaptor.get_structure(a) for a in cells]

        def batched() -> None:
            net.predict_structure(structures, task="efs", batch_size=64)

        calc = chgnet_calculator()
    else:
        raise ValueError(f"the predict task measures 'shipped' or 'chgnet', not {model!r}")

    def one_by_one() -> None:
        for atoms in cells:
            calc.calculate(atoms, PROPERTIES, all_changes)

    timings = {}
    for name, work in (("batched", batched), ("one_by_one", one_by_one)):
        work()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        timings[name] = statistics.median(times)
    return {
        "structures": len(cells),
        "batched_structures_per_second": len(cells) / timings["batched"],
        "one_by_one_structures_per_second": len(cells) / timings["one_by_one"],
        "batched_speedup": timings["one_by_one"] / timings["batched"],
    }


def run_md(model: str, steps: int, repeat: int = 2) -> dict:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    atoms = crystal(repeat)
    atoms.calc = calculator(model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.run(2)  # warm-up
    start = time.perf_counter()
    dyn.run(steps)
    seconds = time.perf_counter() - start
    return {"num_atoms": len(atoms), "steps": steps, "seconds": seconds, "steps_per_second": steps / seconds}


def _training_structures() -> list[Atoms]:
    rng = np.random.default_rng(1)
    out = []
    for k in range(TRAIN_BATCH):
        atoms = crystal(2, seed=10 + k, strain=0.01 * k)
        atoms.info["energy"] = float(-5.4 * len(atoms) + rng.normal())
        atoms.arrays["ref_forces"] = rng.normal(scale=0.3, size=(len(atoms), 3))
        atoms.info["ref_stress"] = rng.normal(scale=0.01, size=(3, 3))
        out.append(atoms)
    return out


def _ours_train_step():
    from universal_mfp.data import as_frame, collate_graphs, frame_to_graph, keys
    from universal_mfp.training.loss import combine, loss_sums

    model = ours_model(train=True)
    graphs = []
    for atoms in _training_structures():
        graph = frame_to_graph(as_frame(atoms), model.config.cutoff, fidelity_index=1)
        stress = atoms.info["ref_stress"]
        graph[keys.ENERGY] = torch.tensor([atoms.info["energy"]], dtype=torch.float64)
        graph[keys.FORCES] = torch.from_numpy(atoms.arrays["ref_forces"])
        graph[keys.STRESS] = torch.from_numpy(0.5 * (stress + stress.T)).unsqueeze(0)
        for key in (keys.HAS_ENERGY, keys.HAS_FORCES, keys.HAS_STRESS):
            graph[key] = torch.tensor([True])
        graphs.append(graph)
    batch = collate_graphs(graphs)
    weights = torch.tensor([[1.0, 1.0, 0.01], [1.0, 1.0, 0.01]], dtype=torch.float64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        out = model(batch, compute_forces=True, compute_stress=True, create_graph=True)
        sums, counts = loss_sums(out, batch, weights, kind="mse")
        loss = combine(sums, counts)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def _sevennet_train_step():
    import sevenn._keys as KEY
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import atoms_to_graph
    from sevenn.util import load_checkpoint
    from torch_geometric.data import Batch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checkpoint = load_checkpoint("7net-mf-0")
        model = checkpoint.build_model()
    model.set_is_batch_data(True)
    model.train()
    cutoff = checkpoint.config[KEY.CUTOFF]
    data = []
    for atoms in _training_structures():
        atoms.info["y_energy"] = atoms.info["energy"]
        atoms.arrays["y_force"] = atoms.arrays["ref_forces"]
        atoms.info["y_stress"] = 0.5 * (atoms.info["ref_stress"] + atoms.info["ref_stress"].T)
        graph = AtomGraphData.from_numpy_dict(atoms_to_graph(atoms, cutoff, transfer_info=False))
        graph[KEY.DATA_MODALITY] = "R2SCAN"
        data.append(graph)
    batch = Batch.from_data_list(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        out = model(batch.clone())
        num_atoms = out[KEY.NUM_ATOMS].to(out[KEY.PRED_TOTAL_ENERGY].dtype)
        energy = ((out[KEY.PRED_TOTAL_ENERGY] - out[KEY.ENERGY]) / num_atoms).pow(2).mean()
        forces = (out[KEY.PRED_FORCE] - out[KEY.FORCE]).pow(2).mean()
        stress = (out[KEY.PRED_STRESS] - out[KEY.STRESS]).pow(2).mean()
        loss = energy + forces + 0.01 * stress
        loss.backward()
        optimizer.step()
        return float(loss.detach().sum())

    return step


def run_train(model: str, repeats: int) -> dict:
    if model not in ("ours", "sevennet"):
        raise ValueError(f"the train task measures 'ours' or 'sevennet', not {model!r}")
    step = _ours_train_step() if model == "ours" else _sevennet_train_step()
    for _ in range(2):
        loss = step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "structures_per_step": TRAIN_BATCH,
        "atoms_per_step": TRAIN_BATCH * 64,
        "seconds_median": median,
        "seconds_all": times,
        "structures_per_second": TRAIN_BATCH / median,
        "final_loss_finite": bool(np.isfinite(loss)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=sorted(CALCULATORS))
    parser.add_argument("task", choices=["efs", "md", "train", "predict"])
    parser.add_argument("--repeat", type=int, default=2, help="supercell repeat of the 8-atom cubic cell (efs)")
    parser.add_argument("--chemistry", choices=["si", "mgo"], default="si", help="crystal of the efs task")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.task == "efs":
        result = run_efs(args.model, args.repeat, args.repeats, args.chemistry)
    elif args.task == "predict":
        result = run_predict(args.model, args.repeats)
    elif args.task == "md":
        result = run_md(args.model, args.repeats, args.repeat)
    else:
        result = run_train(args.model, args.repeats)
    result.update(model=args.model, task=args.task, chemistry=args.chemistry, threads=torch.get_num_threads())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
