"""Training end to end: exact resume after a kill mid-epoch, and 2-process data parallelism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import write_config

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _train(config: Path, *extra: str, torchrun: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    if torchrun:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(torchrun),
            "--master_port",
            str(29500 + os.getpid() % 1000),
            "-m",
            "universal_mfp.training",
            str(config),
            *extra,
        ]
    else:
        command = [sys.executable, "-m", "universal_mfp.training", str(config), *extra]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.mark.slow
def test_resume_after_kill_mid_epoch_equals_uninterrupted(small_real_set, tmp_path):
    reference = write_config(tmp_path / "a", small_real_set, checkpoint_every_steps=1, epochs=3)
    _train(reference)
    ref_dir = tmp_path / "a" / "run"

    interrupted = write_config(tmp_path / "b", small_real_set, checkpoint_every_steps=1, epochs=3)
    run_dir = tmp_path / "b" / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "universal_mfp.training", str(interrupted)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    killed_mid_epoch = False
    while time.time() < deadline and process.poll() is None:
        states = sorted((run_dir / "states").glob("step-*/state.json")) if (run_dir / "states").exists() else []
        if states and json.loads(states[-1].read_text())["counters"]["epoch"] >= 1:
            mid = [s for s in states if json.loads(s.read_text())["counters"]["step_in_epoch"] > 0]
            if mid:
                process.send_signal(signal.SIGKILL)
                killed_mid_epoch = True
                break
        time.sleep(0.02)
    process.wait(timeout=30)
    assert killed_mid_epoch, "the run finished before it could be killed; make it longer"
    # the killed run left a state in the middle of an epoch; a best model exists exactly when an epoch finished
    assert (run_dir / "best_model").exists() == bool(_records(run_dir, "val"))
    _train(interrupted)  # resumes from the newest complete state

    ref_train = _records(ref_dir, "train")
    res_train = _records(run_dir, "train")
    assert [r["step"] for r in res_train] == [r["step"] for r in ref_train]
    for a, b in zip(ref_train, res_train, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-9, abs=1e-12)
    ref_weights = load_file(str(ref_dir / "best_model" / "model.safetensors"))
    res_weights = load_file(str(run_dir / "best_model" / "model.safetensors"))
    assert ref_weights.keys() == res_weights.keys()
    for key, value in ref_weights.items():
        torch.testing.assert_close(res_weights[key], value, rtol=1e-6, atol=1e-7, msg=key)


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(small_real_set, tmp_path):
    single = write_config(tmp_path / "one", small_real_set, epochs=2)
    double = write_config(tmp_path / "two", small_real_set, epochs=2)
    _train(single)
    _train(double, torchrun=2)
    one = _records(tmp_path / "one" / "run", "train")
    two = _records(tmp_path / "two" / "run", "train")
    assert len(one) == len(two) > 4
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    val_one = _records(tmp_path / "one" / "run", "val")
    val_two = _records(tmp_path / "two" / "run", "val")
    for a, b in zip(val_one, val_two, strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
