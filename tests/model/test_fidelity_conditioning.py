"""Where the fidelity enters the network: every layer (SevenNet-MF) or only the readout."""

from __future__ import annotations

import pytest
import torch
from ase import Atoms

from tests.model.helpers import batch_of, rattled_crystal, small_config, small_model
from universal_mfp.data import keys
from universal_mfp.model import ModelConfig
from universal_mfp.model.fidelity_linear import FidelityDense
from universal_mfp.model.potential import build_model


def _final_features(model, atoms, fidelity: int) -> torch.Tensor:
    """Node features entering the readout, captured with a forward hook."""
    captured = []
    handle = model.interactions[-1].register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        model(batch_of([atoms], [fidelity], model.config.cutoff), compute_forces=False)
    finally:
        handle.remove()
    return captured[-1]


def test_readout_conditioning_shares_the_interaction_layers():
    model = small_model(fidelity_conditioning="readout")
    for name, parameter in model.named_parameters():
        if name.endswith("fidelity_bias"):
            rows = 2 if name.startswith("readout") else 1
            assert parameter.shape[0] == rows, name
            assert model.is_per_fidelity(name) == (rows == 2), name
    atoms = rattled_crystal(seed=3)
    # the same atomic environment features at both fidelities; the energies still differ through the readout
    assert torch.equal(_final_features(model, atoms, 0), _final_features(model, atoms, 1))
    model.set_energy_normalization(torch.zeros_like(model.element_references), torch.ones(2))
    energies = [float(model(batch_of([atoms], [f], model.config.cutoff))[keys.ENERGY][0]) for f in (0, 1)]
    assert abs(energies[0] - energies[1]) > 1e-4


def test_full_conditioning_changes_the_interaction_features():
    model = small_model()
    assert model.interactions[0].linear_1.fidelity_bias.shape[0] == 2
    assert all(model.is_per_fidelity(n) for n, _ in model.named_parameters() if n.endswith("fidelity_bias"))
    atoms = rattled_crystal(seed=3)
    assert not torch.allclose(_final_features(model, atoms, 0), _final_features(model, atoms, 1))


def test_linear_delta_shares_the_network_and_adds_a_linear_correction():
    model = small_model(fidelity_conditioning="linear_delta")
    with torch.no_grad():
        model.fidelity_delta.zero_()
    biases = [n for n, _ in model.named_parameters() if n.endswith("fidelity_bias")]
    assert biases and all(model.get_parameter(n).shape[0] == 1 and not model.is_per_fidelity(n) for n in biases)
    assert model.fidelity_delta.shape == (2, 16) and model.is_per_fidelity("fidelity_delta")
    atoms = rattled_crystal(seed=4)
    model.set_energy_normalization(torch.zeros_like(model.element_references), torch.ones(2))
    batches = [batch_of([atoms], [f], model.config.cutoff) for f in (0, 1)]
    # zero at initialisation: the fidelities agree exactly
    out = [model(b) for b in batches]
    assert torch.equal(out[0][keys.ENERGY], out[1][keys.ENERGY]) and torch.equal(
        out[0][keys.FORCES], out[1][keys.FORCES]
    )
    with torch.no_grad():
        model.fidelity_delta[1] = torch.linspace(-0.2, 0.2, 16, dtype=model.dtype)
    features = _final_features(model, atoms, 1)
    energy_1 = float(model(batches[1])[keys.ENERGY][0])
    # E_1 - E_0 = sum_i w_1 . (h_i - h_isolated(Z_i)); the isolated part is the delta of a lone atom's features
    lone = torch.stack([_final_features(model, Atoms(numbers=[z], pbc=False), 1)[0] for z in atoms.numbers])
    expected = float(((features - lone) * model.fidelity_delta[1]).sum())
    assert energy_1 - float(out[0][keys.ENERGY][0]) == pytest.approx(expected, abs=1e-9)


def test_heads_share_the_interaction_layers_and_own_their_readout():
    model = small_model("heads")
    for layer in (model.readout_hidden, model.readout_out):
        assert layer.fidelity_weight.shape[0] == 2 and model.is_per_fidelity("readout_out.fidelity_weight")
    assert model.interactions[0].linear_1.fidelity_bias.shape[0] == 1
    atoms = rattled_crystal(seed=5)
    assert torch.equal(_final_features(model, atoms, 0), _final_features(model, atoms, 1))
    # a freshly built model's heads start with equal weights (they differ only by their biases)
    fresh = build_model(small_config("heads"), seed=4)
    for layer in (fresh.readout_hidden, fresh.readout_out):
        assert torch.equal(layer.fidelity_weight[1], layer.fidelity_weight[0])
        assert layer.fidelity_weight.abs().sum() > 0
    # changing one fidelity's head leaves the other fidelity's energy as it was
    batches = [batch_of([atoms], [f], fresh.config.cutoff) for f in (0, 1)]
    before = [float(fresh(b)[keys.ENERGY][0]) for b in batches]
    with torch.no_grad():
        fresh.readout_hidden.fidelity_weight[1].mul_(1.5)
    after = [float(fresh(b)[keys.ENERGY][0]) for b in batches]
    assert after[0] == before[0] and abs(after[1] - before[1]) > 1e-4


def test_conditioning_mode_round_trips_and_defaults_for_old_configs():
    config = small_config(fidelity_conditioning="readout")
    assert ModelConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["fidelity_conditioning"]  # configs written before the option existed
    assert ModelConfig.from_dict(old).fidelity_conditioning == "all"
    with pytest.raises(ValueError, match="unknown fidelity_conditioning 'hidden'"):
        small_config(fidelity_conditioning="hidden")


def test_a_head_gives_the_same_rows_alone_and_in_a_mixed_batch():
    """One fidelity in the batch takes the single-head path; a mixed batch evaluates every head: same rows."""
    dense = FidelityDense(6, 4, 3)
    with torch.no_grad():
        dense.fidelity_weight.normal_(generator=torch.Generator().manual_seed(0))
    features = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    alone = dense(features, torch.full((5,), 2))
    mixed = dense(features, torch.tensor([2, 0, 2, 1, 2]))
    for row in (0, 2, 4):
        assert torch.equal(alone[row], mixed[row])
    expected = features @ dense.fidelity_weight[2] / 6**0.5 + dense.fidelity_bias[2]
    assert torch.allclose(alone, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(mixed[1], alone[1], rtol=0, atol=1e-3)  # other heads differ
