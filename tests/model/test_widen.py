"""Widening a trained network (``model/widen.py``): the wider network starts as the same function, then learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3

from tests.model.helpers import VARIANTS, batch_of, evaluate, molecule, rattled_crystal, small_model
from universal_mfp.model import build_model
from universal_mfp.model.widen import widen, widening_differences


def _wider(irreps: str, extra: int) -> str:
    return str(o3.Irreps([(mul + extra * (1 + k % 2), ir) for k, (mul, ir) in enumerate(o3.Irreps(irreps))]))


def _trained_like(variant: str):
    """A small model whose every weight is non-zero and non-uniform, as after training."""
    model = small_model(variant, seed=3)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name not in ("element_references",):
                parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return model


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_wider_network_computes_the_same_energies_forces_and_stresses(variant):
    narrow = _trained_like(variant)
    config = narrow.config.replace(hidden_irreps=_wider(narrow.config.hidden_irreps, 3), readout_hidden=13)
    wide = build_model(config, seed=11)
    assert widen(narrow, wide) == ["hidden_irreps", "readout_hidden"]
    wide.eval()
    assert sum(p.numel() for p in wide.parameters()) > 1.3 * sum(p.numel() for p in narrow.parameters())
    for atoms in (rattled_crystal(seed=1), molecule()):
        for fidelity in range(len(narrow.fidelities)):
            before = evaluate(narrow, atoms, fidelity, stress=bool(atoms.pbc.any()))
            after = evaluate(wide, atoms, fidelity, stress=bool(atoms.pbc.any()))
            for key, value in before.items():
                torch.testing.assert_close(after[key], value, rtol=1e-10, atol=1e-10, msg=f"{key} at {fidelity}")
    # and not by accident: a freshly built wide network predicts something else
    other = evaluate(build_model(config, seed=11).eval(), rattled_crystal(seed=1), 0)
    assert abs(float(other["energy"][0]) - float(evaluate(narrow, rattled_crystal(seed=1), 0)["energy"][0])) > 1e-3


def test_the_new_channels_get_a_gradient():
    """Zero weights from the new channels into the old ones do not freeze the new channels: their outgoing weights
    see a gradient, so training puts them to use."""
    narrow = _trained_like("angular")
    wide = build_model(narrow.config.replace(hidden_irreps="12x0e+6x1o+3x2e", readout_hidden=12), seed=2)
    widen(narrow, wide)
    wide.train()
    batch = batch_of([rattled_crystal()], [0], wide.config.cutoff)
    energy = wide(batch, compute_forces=True, compute_stress=False)
    (energy["energy"].sum() + energy["forces"].square().sum()).backward()
    new_hidden = wide.readout_out.fidelity_weight.grad[:, narrow.config.readout_hidden :]
    new_scalars = wide.readout_hidden.fidelity_weight.grad[:, narrow.embedding.weight.shape[1] :]
    assert float(new_hidden.abs().max()) > 1e-6 and float(new_scalars.abs().max()) > 1e-6
    assert np.isfinite(float(wide.interactions[0].linear_1.linear.weight.grad.abs().sum()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_irreps": "4x0e+4x1o+2x2e"}, "as many or more channels"),
        ({"hidden_irreps": "16x0e+8x1o+4x1e"}, "as many or more channels"),
        ({"readout_hidden": 4}, "readout_hidden shrinks"),
        ({"num_layers": 3}, r"these differ too: \['num_layers'\]"),
    ],
)
def test_anything_but_a_widening_is_refused(change, message):
    narrow = small_model("heads")
    wide = build_model(narrow.config.replace(**change), seed=0)
    with pytest.raises(ValueError, match=message):
        widening_differences(narrow.config, wide.config)
    with pytest.raises(ValueError, match=message):
        widen(narrow, wide)


def test_the_same_network_is_a_plain_copy():
    narrow = _trained_like("even")
    twin = build_model(narrow.config, seed=9)
    assert widen(narrow, twin) == []
    for key, value in narrow.state_dict().items():
        torch.testing.assert_close(twin.state_dict()[key], value)
