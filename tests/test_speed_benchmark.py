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


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import sys; sys.stderr.write('no memory left\\n'); sys.exit(3)", "exit code 3: no memory left"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
    ],
)
def test_a_failed_measurement_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, code, reason):
    worker = tmp_path / "worker.py"
    worker.write_text(code + "\n")
    monkeypatch.setattr(speed, "WORKER", worker)
    entry = speed.measure("sevennet", "efs", 1, repeat=8)
    assert entry["failed"].startswith(reason)
    row = {"shipped": {"atoms_per_second": 900.0}, "chgnet": {"atoms_per_second": 300.0}, "sevennet": entry}
    assert speed._ratios(row, "atoms_per_second") == {"shipped/chgnet": 3.0}
    assert speed._cell(entry, "atoms_per_second") == "failed"
