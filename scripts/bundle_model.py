"""Bundle a trained checkpoint into the package and register it.

Copies ``<run>/best_model`` to ``universal_mfp/pretrained/<name>/`` with a model card rendered from the
packaged card template (also written to ``model_cards/<name>.md``), adds the elements each fidelity
saw in DFT and in teacher labels (its coverage) and the data licenses to the training summary, and writes
the registry entry (sha256 of every file) into ``universal_mfp/hub/registry.json``.

An alias given with ``--alias`` moves to this model from any registered model that had it.

``--card-extras`` names a YAML file with what only a person can write: ``description``,
``fidelities`` (one line per fidelity on what it reproduces) and ``notes`` (markdown: what the model
has and has not seen, measured behaviour, limits), all put into the card.

Run: python scripts/bundle_model.py --run runs/mf-universal-v0.5 --name mf-universal-v0.5 \
         --alias mf-universal --config configs/mf-universal.yaml --card-extras model_cards/mf-universal.extras.yaml
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

from universal_mfp.data.coverage import COVERAGE_KEY, TEACHER_SOURCE_PREFIX, element_coverage
from universal_mfp.files import sha256_file
from universal_mfp.hub.card import render_card, validate_card
from universal_mfp.hub.checkpoint import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, load_checkpoint
from universal_mfp.hub.registry import default_registry_path, load_registry, pretrained_root
from universal_mfp.model.config import ModelConfig
from universal_mfp.training.config import load_run_config
from universal_mfp.training.run import ordered_fidelities, prior_sources, read_sources, run_splits

ROOT = Path(__file__).resolve().parents[1]
DATA_LICENSES = {
    "diatomics": "matbench-discovery diatomics (MIT)",
    "matpes": "MatPES elemental references shipped in matcalc 0.7.0 (BSD-3-Clause)",
    "emmet": "Materials Project task documents and entries from emmet test files (BSD-3-Clause; MP data CC BY 4.0)",
    "rxnnet": "MP GGA/GGA+U and r2SCAN energies per material from RxnNet v0.1.1, used by the fidelity prior "
    "(MIT; MP data CC BY 4.0)",
}
TEACHER_LICENSE = (
    "datasets/teacher and its supplements (teacher-polymorphs, teacher-tetrahedral, teacher-solid-solutions, "
    "teacher-eos): "
    "generated crystals labelled by CHGNet 0.3.0 and CHGNet r2SCAN, the models in the chgnet wheel (Modified BSD), "
    "themselves trained on Materials Project GGA(+U) and r2SCAN data (CC BY 4.0)"
)

DFT_EOS_LICENSE = (
    "datasets/dft-eos-gpaw*: PBE volume scans of elemental crystals computed by this project with GPAW "
    "(`umfp data dft-eos`; GPAW is GPL-3.0, the computed labels are the project's own, under the model's license; "
    "the energies of the anchored scans are placed by one MatPES ground state per element, see the shared data)"
)


def training_coverage(config_path: Path) -> dict[str, dict[str, list[str]]]:
    """Per fidelity, the elements of the run's training split seen in DFT and in teacher labels."""
    config = load_run_config(config_path)
    frames = read_sources(config)
    fidelities = config.data.fidelities or ordered_fidelities(frames)
    elements = config.data.elements or tuple(sorted({int(z) for f in frames for z in f.numbers.tolist()}))
    cutoff = float(config.model.get("cutoff", ModelConfig.cutoff))
    splits, _, _ = run_splits(config, frames, fidelities, elements, cutoff=cutoff)
    return element_coverage([frames[i] for i in splits["train"]], prior_sources(config))


def data_licenses(sources: list[str], source_paths: list[Path] | None = None) -> dict[str, str]:
    """The licenses of the data the run used.

    The shared real data always; the teacher datasets and the project's own DFT scans if the run used them
    (``sources``: the checkpoint's source names; ``source_paths``: the config's data sources).
    """
    licenses = dict(DATA_LICENSES)
    if any(str(source).startswith(TEACHER_SOURCE_PREFIX) for source in sources):
        licenses["teacher"] = TEACHER_LICENSE
    if any("dft-eos" in path.as_posix() for path in source_paths or ()):
        licenses["dft_eos"] = DFT_EOS_LICENSE
    return licenses


def main() -> None:
    """Bundle and register the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="training output folder (holds best_model/)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--alias", action="append", default=[])
    parser.add_argument("--config", type=Path, required=True, help="the run's YAML config (to describe its data)")
    parser.add_argument(
        "--description",
        default="Universal multi-fidelity (PBE + r2SCAN) potential trained on all "
        "the real frames in ../shared/data/frames.",
    )
    parser.add_argument(
        "--dataset",
        default="universal-mfp shared real frames (MP GGA/GGA+U, MatPES PBE/r2SCAN, matbench-discovery dimers)",
        help="the training data, in a few words (the card's dataset name)",
    )
    parser.add_argument("--license", default="cc-by-4.0")
    parser.add_argument("--default-fidelity", default=None)
    parser.add_argument("--reproduce", default=None, help="the command that retrains it (default: umfp train CONFIG)")
    parser.add_argument("--card-extras", type=Path, default=None, help="YAML: description, fidelities, notes")
    args = parser.parse_args()
    extras = yaml.safe_load(args.card_extras.read_text(encoding="utf-8")) if args.card_extras else {}
    unknown = set(extras) - {"description", "fidelities", "notes"}
    if unknown:
        raise SystemExit(f"{args.card_extras}: unknown keys {sorted(unknown)}")
    description = " ".join(str(extras.get("description", args.description)).split())

    checkpoint = load_checkpoint(args.run / "best_model")
    metadata = json.loads((args.run / "best_model" / CONFIG_FILE).read_text())
    training = dict(metadata.get("training") or {})
    if isinstance(training.get("fidelity_prior"), dict):  # file names, not the paths of the training machine
        prior = dict(training["fidelity_prior"])
        for key in ("table", "target_element_energies"):
            if prior.get(key):
                prior[key] = Path(prior[key]).name
        training["fidelity_prior"] = prior
    training.update(
        description=description,
        dataset=args.dataset,
        config=args.config.as_posix(),
        license=args.license,
        reproduce=args.reproduce or f"umfp train {args.config.as_posix()}",
        data_licenses=data_licenses(
            training.get("sources") or [], [source.path for source in load_run_config(args.config).data.sources]
        ),
    )
    training.pop("elements_with_energies_by_fidelity", None)
    if COVERAGE_KEY not in training:  # runs from before the trainer recorded it
        training[COVERAGE_KEY] = training_coverage(args.config)
    if extras.get("fidelities"):
        training["fidelity_descriptions"] = {k: " ".join(str(v).split()) for k, v in extras["fidelities"].items()}
    if extras.get("notes"):
        training["card_notes"] = str(extras["notes"])
    metadata["training"] = training
    card = render_card(
        metadata, name=args.name, load_name=args.alias[0] if args.alias else args.name, license_id=args.license
    )
    validate_card(card)

    target = pretrained_root() / args.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(args.run / "best_model" / WEIGHTS_FILE, target / WEIGHTS_FILE)
    (target / CONFIG_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    (target / CARD_FILE).write_text(card, encoding="utf-8")
    (ROOT / "model_cards" / f"{args.name}.md").write_text(card, encoding="utf-8")
    load_checkpoint(target)  # the bundled folder must load strictly

    entry = {
        "name": args.name,
        "aliases": args.alias,
        "description": description,
        "license": args.license,
        "fidelities": list(checkpoint.config.fidelities),
        "default_fidelity": args.default_fidelity,
        "bundled_path": args.name,
        "repo_id": None,
        "revision": None,
        "files": {f: sha256_file(target / f) for f in (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)},
    }
    registry_path = default_registry_path()
    registry = json.loads(registry_path.read_text())
    others = [m for m in registry["models"] if m["name"] != args.name]
    for model in others:  # an alias names one model: the new one takes it from whichever had it
        taken = [alias for alias in model.get("aliases", []) if alias in args.alias]
        if taken:
            model["aliases"] = [alias for alias in model["aliases"] if alias not in taken]
            print(f"moved alias {', '.join(taken)} from {model['name']} to {args.name}")
    registry["models"] = [*others, entry]
    registry_path.write_text(json.dumps(registry, indent=2) + "\n", encoding="utf-8")
    load_registry(registry_path)  # validates
    print(f"bundled {args.name} in {target}; registry updated")


if __name__ == "__main__":
    main()
