"""The cached isolated-atom readout of a frozen model equals the computed one, and follows parameter changes."""

from __future__ import annotations

import torch

from tests.model.helpers import batch_of, rattled_crystal, small_model
from universal_mfp.data import keys


def _energy(model, batch):
    return model(batch, compute_forces=True, compute_stress=True)[keys.ENERGY].detach()


def test_frozen_model_cache_matches_and_is_invalidated_by_parameter_changes():
    model = small_model()
    batch = batch_of([rattled_crystal(seed=3), rattled_crystal(seed=4)], [0, 1], model.config.cutoff)
    reference = _energy(model, batch)  # parameters require grad: computed, not cached
    model.requires_grad_(False)
    assert torch.equal(_energy(model, batch), reference)
    assert torch.equal(_energy(model, batch), reference)  # from the cache
    assert model._isolated_cache is not None
    assert not any("isolated" in key for key in model.state_dict())

    with torch.no_grad():
        model.readout_out.linear.weight.mul_(1.5)  # in place: the cache must not be reused
    changed = _energy(model, batch)
    model.requires_grad_(True)
    torch.testing.assert_close(changed, _energy(model, batch), rtol=0, atol=1e-12)
    assert not torch.allclose(changed, reference)
