from pathlib import Path

import pytest
import torch

from universal_mfp import ModelConfig, build_model

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ELEMENTS = (3, 6, 8, 11, 14, 29)  # Li C O Na Si Cu


@pytest.fixture(scope="session")
def tiny_model():
    config = ModelConfig(
        elements=ELEMENTS,
        fidelities=("pbe", "r2scan"),
        num_layers=2,
        hidden_irreps="8x0e+4x1o",
        radial_mlp_hidden=(16,),
        readout_hidden=8,
    )
    model = build_model(config, seed=0)
    # distinct per-fidelity element references and a scale, so fidelities and structures differ visibly
    references = torch.tensor([[-1.9, -9.2, -4.9, -1.3, -5.4, -4.1], [-2.3, -9.9, -6.1, -1.6, -5.9, -4.6]])
    model.set_energy_normalization(references.to(model.dtype), torch.tensor([2.0, 2.5], dtype=model.dtype))
    return model


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (needed for real-data hull tests)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread():
    # the tiny model's kernels are too small for intra-op threads; on 2 shared cores they only contend
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
