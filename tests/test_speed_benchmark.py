"""The speed benchmark refuses to start when an anchor it is asked to time cannot be imported."""

from __future__ import annotations

import sys

import pytest

from tests.hull.benchmark_scripts import load_benchmark

speed = load_benchmark("speed")


def test_a_missing_anchor_package_is_named_with_how_to_install_it(monkeypatch):
    monkeypatch.setitem(speed.ANCHOR_PACKAGES, "sevennet", ("no_such_package_umfp", "pip install it"))
    assert speed.missing_anchors(("shipped", "ours")) == []
    assert speed.missing_anchors(("shipped", "sevennet")) == [
        "sevennet: no module 'no_such_package_umfp'; pip install it"
    ]
    monkeypatch.setattr(sys, "argv", ["speed.py", "--models", "shipped", "sevennet"])
    with pytest.raises(SystemExit, match="cannot time every model asked for:\nsevennet: no module"):
        speed.main()
