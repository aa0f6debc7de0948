"""Hull plots per chemical system (PNG, matplotlib Agg).

Single elements: energy above hull of every phase; binaries: formation energy vs composition with the
hull; ternaries and quaternaries: pymatgen ``PDPlotter`` (matplotlib backend).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from pymatgen.analysis.phase_diagram import PhaseDiagram

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

MAX_PLOT_ELEMENTS = 4  # PDPlotter draws up to quaternary systems


def _figure_module() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _unary_plot(diagram: PhaseDiagram, highlight: Collection[str], title: str) -> Figure:
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(6, 4))
    entries = sorted(diagram.all_entries, key=lambda e: e.energy_per_atom)
    heights = [diagram.get_e_above_hull(e) for e in entries]
    colors = ["tab:orange" if e.name in highlight else "tab:blue" for e in entries]
    ax.scatter(range(len(entries)), heights, c=colors, zorder=3)
    ax.axhline(0.0, color="black", lw=1)
    ax.set_xticks(range(len(entries)), [e.name for e in entries], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("E above hull (eV/atom)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _binary_plot(diagram: PhaseDiagram, highlight: Collection[str], title: str) -> Figure:
    plt = _figure_module()
    first, second = sorted(diagram.elements, key=lambda el: el.symbol)
    fig, ax = plt.subplots(figsize=(6, 4.5))

    def fraction(entry: object) -> float:
        return entry.composition.get_atomic_fraction(second)  # type: ignore[attr-defined]

    stable = sorted(diagram.stable_entries, key=fraction)
    ax.plot([fraction(e) for e in stable], [diagram.get_form_energy_per_atom(e) for e in stable], "k-", lw=1.5)
    for entry in diagram.all_entries:
        on_hull = entry in diagram.stable_entries
        is_candidate = entry.name in highlight
        ax.scatter(
            fraction(entry),
            diagram.get_form_energy_per_atom(entry),
            marker="o" if is_candidate else "s",
            c="tab:green" if on_hull else "tab:red",
            edgecolors="black" if is_candidate else "none",
            s=45 if is_candidate else 25,
            zorder=3,
        )
        if on_hull or is_candidate:
            ax.annotate(
                entry.composition.reduced_formula,
                (fraction(entry), diagram.get_form_energy_per_atom(entry)),
                textcoords="offset points",
                xytext=(3, 4),
                fontsize=7,
            )
    ax.set_xlabel(f"fraction of {second.symbol} (other end: {first.symbol})")
    ax.set_ylabel("formation energy (eV/atom)")
    ax.set_title(f"{title}  (green: on hull, red: above; circles: candidates)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_hull(
    diagram: PhaseDiagram, path: str | Path, *, highlight: Collection[str] = (), title: str = ""
) -> Path | None:
    """Save a hull plot of ``diagram`` to ``path`` (PNG); returns ``None`` for systems of more than 4 elements.

    Args:
        diagram: the phase diagram.
        path: output file.
        highlight: entry names (candidate ids) to highlight.
        title: figure title.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt = _figure_module()
    if diagram.dim > MAX_PLOT_ELEMENTS:
        logger.warning("no hull plot for %s: more than %d elements", title or path.stem, MAX_PLOT_ELEMENTS)
        return None
    if diagram.dim == 1:
        fig = _unary_plot(diagram, set(highlight), title)
    elif diagram.dim == 2:
        fig = _binary_plot(diagram, set(highlight), title)
    else:
        from pymatgen.analysis.phase_diagram import PDPlotter

        chosen = [e for e in diagram.all_entries if e.name in set(highlight)]
        plotter = PDPlotter(diagram, show_unstable=float("inf"), backend="matplotlib")
        ax = plotter.get_plot(label_unstable=False, highlight_entries=chosen or None)
        fig = ax.figure
        if title:
            ax.set_title(title)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def hull_plot_name(chemsys: str) -> str:
    """File name of the hull plot of a chemical system, e.g. ``hull_Fe-Li-O.png``."""
    return f"hull_{re.sub(r'[^A-Za-z0-9-]', '_', chemsys)}.png"
