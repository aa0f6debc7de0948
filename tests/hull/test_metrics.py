"""matbench-discovery metrics on a small labelled set, checked against values computed by hand."""

import math

import pytest

from universal_mfp.hull.metrics import metrics_against_labels, read_labels, stable_metrics

TRUE = [-0.1, 0.0, 0.05, 0.2, 0.3]
PRED = [0.0, 0.1, -0.02, 0.25, math.nan]
# stable iff <= 0: actual stable {0, 1}; predicted stable {0, 2}; the NaN prediction counts as unstable.
# TP = {0}, FN = {1}, FP = {2}, TN = {3, 4}


def test_stable_metrics_by_hand():
    m = stable_metrics(TRUE, PRED)
    assert (m["TP"], m["FN"], m["FP"], m["TN"]) == (1, 1, 1, 2)
    assert m["Precision"] == pytest.approx(0.5)
    assert m["Recall"] == pytest.approx(0.5)
    assert m["F1"] == pytest.approx(0.5)
    assert m["DAF"] == pytest.approx(0.5 / (2 / 5))
    assert m["Accuracy"] == pytest.approx(3 / 4)  # upstream divides by the pairs without NaN
    assert m["TPR"] == pytest.approx(0.5)
    assert m["FPR"] == pytest.approx(1 / 3)
    assert m["TNR"] == pytest.approx(2 / 3)
    assert m["FNR"] == pytest.approx(0.5)
    # regression metrics on the 4 pairs without NaN: errors -0.1, -0.1, 0.07, -0.05
    assert m["MAE"] == pytest.approx(0.32 / 4)
    assert m["RMSE"] == pytest.approx(math.sqrt(0.0274 / 4))
    assert m["R2"] == pytest.approx(1 - 0.0274 / 0.046875)


def test_undefined_ratios_are_nan_and_threshold_applies():
    m = stable_metrics([0.1, 0.2], [0.3, 0.4])
    assert math.isnan(m["Precision"])
    assert math.isnan(m["F1"])
    assert m["Accuracy"] == 1.0
    shifted = stable_metrics([0.1, 0.2], [0.05, 0.4], stability_threshold=0.1)
    assert (shifted["TP"], shifted["FN"], shifted["FP"], shifted["TN"]) == (1, 0, 0, 1)


def test_read_labels_and_join(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,e_above_hull\na,0.0\nb,0.1\nzzz,0.5\n")
    labels = read_labels(path)
    assert labels == {"a": 0.0, "b": 0.1, "zzz": 0.5}
    m = metrics_against_labels({"a": -0.01, "b": 0.2, "c": 0.0}, labels)
    assert m["n_labelled"] == 2
    assert (m["TP"], m["TN"]) == (1, 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,e\nx,1\n")
    with pytest.raises(ValueError, match="'id' and 'e_above_hull'"):
        read_labels(bad)
    with pytest.raises(ValueError, match="no candidate id"):
        metrics_against_labels({"q": 0.0}, labels)
