"""Discovery metrics of predicted vs true energies above hull, to matbench-discovery's exact definitions.

A re-implementation of ``matbench_discovery.metrics.stable_metrics`` / ``classify_stable`` (v1.3.1, MIT):
the package itself imports plotly, pymatviz and wandb and needs scikit-learn, too heavy for this
dependency. Same conventions: stable means ``e_above_hull <= stability_threshold`` (0 eV/atom), NaN
predictions count as unstable (``fillna``), regression metrics drop pairs with a NaN, ``Accuracy`` divides
by the number of pairs without NaN (as upstream), R² as ``sklearn.metrics.r2_score``. Undefined ratios
(e.g. precision with no positive prediction) are ``nan`` instead of raising.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

METRIC_KEYS = ("F1", "DAF", "Precision", "Recall", "Accuracy", "TPR", "FPR", "TNR", "FNR", "TP", "FP", "TN", "FN")
REGRESSION_KEYS = ("MAE", "RMSE", "R2")


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination as ``sklearn.metrics.r2_score`` (1.0 / 0.0 for a constant target)."""
    if len(y_true) < 2:
        return math.nan
    ss_res = float(((y_true - y_pred) ** 2).sum())
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


def stable_metrics(
    e_above_hull_true: Sequence[float],
    e_above_hull_pred: Sequence[float],
    *,
    stability_threshold: float = 0.0,
    fillna: bool = True,
) -> dict[str, float]:
    """Classification (stable vs unstable) and regression metrics of predicted energies above hull.

    Args:
        e_above_hull_true: reference energies above hull, eV/atom.
        e_above_hull_pred: predicted energies above hull, eV/atom (NaN allowed).
        stability_threshold: largest energy above hull still counted as stable, eV/atom.
        fillna: count NaN predictions as unstable (matbench-discovery's default).

    Returns:
        ``F1, DAF, Precision, Recall, Accuracy, TPR, FPR, TNR, FNR, TP, FP, TN, FN, MAE, RMSE, R2``.

    Raises:
        ValueError: if the inputs differ in length or are empty.
    """
    true = np.asarray(e_above_hull_true, dtype=float)
    pred = np.asarray(e_above_hull_pred, dtype=float)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"true and predicted values must be 1-D of equal length, got {true.shape} and {pred.shape}")
    if len(true) == 0:
        raise ValueError("no labelled structures to compute metrics on")
    actual_pos = true <= stability_threshold
    actual_neg = true > stability_threshold
    model_pos = pred <= stability_threshold
    model_neg = pred > stability_threshold
    if fillna:
        nan_pred = np.isnan(pred)
        model_pos = model_pos & ~nan_pred
        model_neg = model_neg | nan_pred
    tp = int((actual_pos & model_pos).sum())
    fn = int((actual_pos & model_neg).sum())
    fp = int((actual_neg & model_pos).sum())
    tn = int((actual_neg & model_neg).sum())
    n_pos, n_neg = tp + fn, tn + fp
    prevalence = _ratio(n_pos, n_pos + n_neg)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, n_pos)
    valid = ~(np.isnan(true) | np.isnan(pred))
    true, pred = true[valid], pred[valid]
    error = true - pred
    return {
        "F1": _ratio(2 * precision * recall, precision + recall),
        "DAF": _ratio(precision, prevalence),
        "Precision": precision,
        "Recall": recall,
        "Accuracy": _ratio(tp + tn, len(true)),
        "TPR": recall,
        "FPR": _ratio(fp, n_neg),
        "TNR": _ratio(tn, n_neg),
        "FNR": _ratio(fn, n_pos),
        "TP": tp,
        "FP": fp,
        "TN": tn,
        "FN": fn,
        "MAE": float(np.abs(error).mean()) if len(error) else math.nan,
        "RMSE": float(np.sqrt((error**2).mean())) if len(error) else math.nan,
        "R2": r2_score(true, pred),
    }


def read_labels(path: str | Path) -> dict[str, float]:
    """Read a labels CSV with columns ``id`` and ``e_above_hull`` (eV/atom).

    Raises:
        ValueError: for missing columns, repeated ids or non-numeric values, naming the line.
    """
    path = Path(path)
    labels: dict[str, float] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if not {"id", "e_above_hull"} <= columns:
            raise ValueError(f"{path}: needs columns 'id' and 'e_above_hull' (eV/atom), found {sorted(columns)}")
        for line, row in enumerate(reader, start=2):
            key = row["id"].strip()
            if key in labels:
                raise ValueError(f"{path} line {line}: id {key!r} appears twice")
            try:
                labels[key] = float(row["e_above_hull"])
            except ValueError as error:
                raise ValueError(f"{path} line {line}: e_above_hull {row['e_above_hull']!r} is not a number") from error
    return labels


def metrics_against_labels(
    predicted: Mapping[str, float], labels: Mapping[str, float], *, stability_threshold: float = 0.0
) -> dict[str, float]:
    """``stable_metrics`` over the ids present in both ``predicted`` and ``labels``, plus the count used.

    Raises:
        ValueError: if no id is shared.
    """
    shared = [key for key in predicted if key in labels]
    if not shared:
        raise ValueError("no candidate id matches a label id; check the 'id' column of the labels file")
    unlabelled = len(predicted) - len(shared)
    unmatched = len(labels) - len(shared)
    if unlabelled or unmatched:
        logger.warning("%d candidates without a label and %d labels without a candidate", unlabelled, unmatched)
    metrics = stable_metrics(
        [labels[k] for k in shared], [predicted[k] for k in shared], stability_threshold=stability_threshold
    )
    metrics["n_labelled"] = len(shared)
    return metrics
