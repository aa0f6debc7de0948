"""Model cards: render the packaged template from a checkpoint's ``config.json``, and validate cards.

Metrics in ``config.json`` are nested as ``{fidelity: {split: {metric: value}}}`` with values in the units of
``METRIC_UNITS`` (meV/atom, meV/Å, GPa). The card carries them twice: as Hugging Face ``model-index`` front
matter and as a per-fidelity, per-split table.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

import yaml

logger = logging.getLogger(__name__)

# Metric name -> (human-readable name, unit). Values are stored in these units.
METRIC_UNITS: dict[str, tuple[str, str]] = {
    "energy_mae": ("Energy MAE", "meV/atom"),
    "energy_rmse": ("Energy RMSE", "meV/atom"),
    "forces_mae": ("Force MAE", "meV/Å"),
    "forces_rmse": ("Force RMSE", "meV/Å"),
    "stress_mae": ("Stress MAE", "GPa"),
    "stress_rmse": ("Stress RMSE", "GPa"),
    "formation_energy_mae": ("Formation energy MAE", "meV/atom"),
    "e_above_hull_mae": ("Energy above hull MAE", "meV/atom"),
}
DEFAULT_LICENSE = "cc-by-4.0"  # weights trained on Materials Project data, which is CC BY 4.0
DEFAULT_SPLIT_ORDER = ("train", "val", "validation", "test")


def default_template_path() -> Path:
    """Path of the card template shipped with the package (``universal_mfp/hub/card_template.md``)."""
    return Path(__file__).resolve().parent / "card_template.md"


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, str, float]]:
    """Flatten ``{fidelity: {split: {metric: value}}}`` into ``(fidelity, split, metric, value)`` rows.

    Raises:
        ValueError: on a malformed layout, an unknown metric name or a non-finite value.
    """
    rows = []
    if not isinstance(metrics, Mapping):
        raise ValueError("metrics must be a mapping {fidelity: {split: {metric: value}}}")
    for fidelity, splits in metrics.items():
        if not isinstance(splits, Mapping):
            raise ValueError(f"metrics[{fidelity!r}] must map split names to metric dicts")
        order = sorted(splits, key=lambda s: (DEFAULT_SPLIT_ORDER.index(s) if s in DEFAULT_SPLIT_ORDER else 99, s))
        for split in order:
            values = splits[split]
            if not isinstance(values, Mapping):
                raise ValueError(f"metrics[{fidelity!r}][{split!r}] must map metric names to numbers")
            for metric, value in values.items():
                if metric not in METRIC_UNITS:
                    raise ValueError(f"unknown metric {metric!r}; known metrics (with units) are {list(METRIC_UNITS)}")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"metrics[{fidelity!r}][{split!r}][{metric!r}] must be a finite number")
                rows.append((str(fidelity), str(split), metric, float(value)))
    return rows


def _metrics_table(rows: list[tuple[str, str, str, float]]) -> str:
    if not rows:
        return "No metrics have been measured for this checkpoint."
    columns = [m for m in METRIC_UNITS if any(r[2] == m for r in rows)]
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for fidelity, split, metric, value in rows:
        cells.setdefault((fidelity, split), {})[metric] = value
    titles = [f"{METRIC_UNITS[m][0]} ({METRIC_UNITS[m][1]})" for m in columns]
    header = "| Fidelity | Split | " + " | ".join(titles) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for (fidelity, split), values in cells.items():
        entries = [f"{values[m]:.4g}" if m in values else "–" for m in columns]
        lines.append(f"| {fidelity} | {split} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def _model_index(name: str, dataset: str, rows: list[tuple[str, str, str, float]]) -> str:
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for fidelity, split, metric, value in rows:
        label, unit = METRIC_UNITS[metric]
        results.setdefault((fidelity, split), []).append(
            {"type": metric, "name": f"{fidelity} {label} ({unit})", "value": value}
        )
    index = [
        {
            "name": name,
            "results": [
                {
                    "task": {"type": "interatomic-potential", "name": f"{fidelity} energies, forces and stresses"},
                    "dataset": {"name": f"{dataset} ({fidelity})", "type": dataset, "split": split},
                    "metrics": metrics,
                }
                for (fidelity, split), metrics in results.items()
            ],
        }
    ]
    return yaml.safe_dump(index, sort_keys=False, allow_unicode=True).rstrip()


def _splits_table(splits: Mapping[str, Any]) -> list[str]:
    lines = [
        "| Split | Fidelity | Frames | Atoms | with energy | with forces | with stress |",
        "|---|---|---|---|---|---|---|",
    ]
    for split in ("train", "val", "test"):
        for fidelity, counts in sorted((splits.get(split) or {}).items()):
            cells = [counts.get(k, 0) for k in ("frames", "atoms", "with_energy", "with_forces", "with_stress")]
            lines.append(f"| {split} | {fidelity} | " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _coverage_table(coverage: Mapping[str, Any], model_elements: list[str]) -> list[str]:
    """Per fidelity: elements seen in real DFT, only in teacher labels, and not at all (of the model's)."""
    lines = [
        "Element coverage per fidelity (training split). At a fidelity, an element the model never saw is",
        "predicted by transfer from other fidelities and elements; the calculator and `predict` warn once per",
        "element and fidelity (`CoverageWarning`) when a structure holds one.",
        "",
        "| Fidelity | Real DFT | Teacher labels only | Not seen |",
        "|---|---|---|---|",
    ]
    for fidelity, kinds in coverage.items():
        dft = list(kinds.get("dft", []))
        teacher = [s for s in kinds.get("teacher", []) if s not in set(dft)]
        unseen = [s for s in model_elements if s not in set(dft) | set(teacher)]
        cells = [f"{len(group)}: {', '.join(group)}" if group else "–" for group in (dft, teacher, unseen)]
        lines.append(f"| `{fidelity}` | " + " | ".join(cells) + " |")
    return lines


def _training_section(training: Mapping[str, Any], model_elements: list[str] | None = None) -> str:
    if not training:
        return "No training-data summary was recorded for this checkpoint."
    lines: list[str] = []
    rest = dict(training)
    for key in ("description", "dataset", "license", "fidelity_descriptions", "card_notes"):
        rest.pop(key, None)
    if "reproduce" in rest:
        lines += [f"Reproduce with `{rest.pop('reproduce')}` (seed {rest.pop('seed', 'unrecorded')}).", ""]
    if isinstance(rest.get("splits"), Mapping):
        lines += ["Frames per split and fidelity (split by material or system, never by frame):", ""]
        lines += [*_splits_table(rest.pop("splits")), ""]
    if rest.get("sources"):
        lines += ["Sources:", "", *[f"- {source}" for source in rest.pop("sources")], ""]
    if isinstance(rest.get("data_licenses"), Mapping):
        lines += ["Data licenses:", "", *[f"- {text}" for text in rest.pop("data_licenses").values()], ""]
    if isinstance(rest.get("coverage"), Mapping):
        lines += [*_coverage_table(rest.pop("coverage"), list(model_elements or rest.get("elements") or [])), ""]
    if isinstance(rest.get("elements_with_energies_by_fidelity"), Mapping):
        lines += [
            "Elements with training energies, per fidelity (predictions for other elements at that fidelity",
            "rest on what the network transfers from the other fidelity and are less reliable):",
            "",
        ]
        for fidelity, symbols in rest.pop("elements_with_energies_by_fidelity").items():
            lines.append(f"- `{fidelity}` ({len(symbols)}): {', '.join(symbols)}")
        lines.append("")
    if rest:
        lines += ["Run details:", ""]
        for key, value in rest.items():
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            lines.append(f"- **{key}**: {text}")
    return "\n".join(lines).rstrip()


def _fidelity_section(fidelities: list[str], descriptions: Mapping[str, Any]) -> str:
    if not descriptions:
        return ""
    lines = ["## Fidelities", "", "| Fidelity | What it reproduces |", "|---|---|"]
    lines += [f"| `{f}` | {descriptions.get(f, 'not described')} |" for f in fidelities]
    return "\n".join(lines) + "\n"


def _notes_section(notes: Any) -> str:
    return f"{str(notes).strip()}\n" if notes else ""


def _architecture_table(model: Mapping[str, Any]) -> str:
    keys = (
        "cutoff",
        "num_layers",
        "hidden_irreps",
        "lmax_edge",
        "num_radial_basis",
        "radial_mlp_hidden",
        "readout_hidden",
        "fidelity_conditioning",
        "angular_lmax",
        "pair_repulsion",
        "pair_repulsion_cutoff_factor",
        "dtype",
    )
    lines = ["| Setting | Value |", "|---|---|"]
    lines += [f"| {key} | {model[key]} |" for key in keys if key in model]
    return "\n".join(lines)


def render_card(
    metadata: Mapping[str, Any],
    *,
    name: str,
    load_name: str | None = None,
    license_id: str | None = None,
    template_path: str | Path | None = None,
) -> str:
    """Render the model card for a checkpoint's ``config.json`` content.

    Args:
        metadata: parsed ``config.json`` (``universal_mfp.hub.checkpoint``).
        name: model name shown in the card.
        load_name: name or Hub id to show in the ``load_model`` example (defaults to ``name``).
        license_id: SPDX-style license id; defaults to ``training["license"]`` or ``DEFAULT_LICENSE``.
        template_path: card template; defaults to the packaged ``card_template.md``.

    Raises:
        FileNotFoundError: if the template does not exist.
        ValueError: on malformed metrics.
    """
    path = Path(template_path) if template_path is not None else default_template_path()
    if not path.is_file():
        raise FileNotFoundError(f"model card template {path} not found; pass template_path")
    training = dict(metadata.get("training") or {})
    model = dict(metadata["model"])
    rows = metric_rows(metadata.get("metrics") or {})
    fidelities = list(metadata["fidelities"])
    from ase.data import chemical_symbols

    symbols = [chemical_symbols[z] for z in model["elements"]]
    values = {
        "license": json.dumps(str(license_id or training.get("license") or DEFAULT_LICENSE)),
        "model_index": _model_index(name, str(training.get("dataset", "unspecified")), rows) if rows else "  []",
        "name": name,
        "load_name": load_name or name,
        "description": str(training.get("description", "A multi-fidelity (PBE + r2SCAN) interatomic potential.")),
        "code_version": str(metadata.get("code_version", "unknown")),
        "fidelities": ", ".join(f"`{f}`" for f in fidelities),
        "example_fidelity": "r2scan" if "r2scan" in fidelities else fidelities[0],
        "architecture_table": _architecture_table(model),
        "num_elements": str(len(symbols)),
        "elements": ", ".join(symbols),
        "cutoff": str(model.get("cutoff")),
        "training_section": _training_section(training, symbols),
        "metrics_table": _metrics_table(rows),
        "fidelity_section": _fidelity_section(fidelities, training.get("fidelity_descriptions") or {}),
        "notes_section": _notes_section(training.get("card_notes")),
    }
    return Template(path.read_text(encoding="utf-8")).substitute(values)


def render_card_or_minimal(metadata: Mapping[str, Any], *, name: str) -> str:
    """Render the card from the template, or a minimal card when the template is not installed."""
    try:
        return render_card(metadata, name=name)
    except FileNotFoundError as error:
        logger.warning("%s; writing a minimal model card", error)
    front = {"license": DEFAULT_LICENSE, "library_name": "universal-mfp", "tags": ["interatomic-potential"]}
    return (
        f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n\n# {name}\n\n"
        f"Multi-fidelity interatomic potential; fidelities: {', '.join(metadata['fidelities'])}.\n"
    )


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split a card into its YAML front matter (parsed) and body.

    Raises:
        ValueError: if there is no front matter or it is not a YAML mapping.
    """
    if not text.startswith("---\n"):
        raise ValueError("model card has no YAML front matter (it must start with '---')")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError("model card front matter is not closed by a '---' line")
    try:
        front = yaml.safe_load(text[4:end])
    except yaml.YAMLError as error:
        raise ValueError(f"model card front matter is not valid YAML: {error}") from error
    if not isinstance(front, dict):
        raise ValueError("model card front matter must be a YAML mapping")
    return front, text[end + 5 :]


def validate_card(text: str) -> dict[str, Any]:
    """Check that a model card is complete; return its front matter.

    A valid card has YAML front matter with a license, ``library_name``, and a ``model-index`` whose
    results each carry numeric metrics; its body has a metrics table and no unrendered placeholders.

    Raises:
        ValueError: naming the first problem found.
    """
    front, body = parse_front_matter(text)
    license_id = front.get("license")
    if not isinstance(license_id, str) or not license_id.strip() or license_id.strip().lower() == "unknown":
        raise ValueError("model card has no license")
    if front.get("library_name") != "universal-mfp":
        raise ValueError("model card front matter must set library_name: universal-mfp")
    index = front.get("model-index")
    if not isinstance(index, list) or not index:
        raise ValueError("model card has no model-index metrics")
    for entry in index:
        results = entry.get("results") if isinstance(entry, dict) else None
        if not isinstance(results, list) or not results:
            raise ValueError("model card model-index entry has no results")
        for result in results:
            metrics = result.get("metrics") if isinstance(result, dict) else None
            if not isinstance(metrics, list) or not metrics:
                raise ValueError("model card model-index result has no metrics")
            for metric in metrics:
                value = metric.get("value") if isinstance(metric, dict) else None
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"model card metric {metric!r} has no numeric value")
    if "${" in text:
        raise ValueError("model card has unrendered template placeholders")
    if "## Metrics" not in body or "| Fidelity | Split |" not in body:
        raise ValueError("model card body has no metrics table")
    return front
