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


def test_frozen_radial_matrices_follow_in_place_weight_changes():
    """The lean pass keeps a frozen layer's folded radial matrices; changing a weight in place must renew them."""
    model = small_model()
    batch = batch_of([rattled_crystal(seed=5)], [0], model.config.cutoff)
    model.requires_grad_(False)
    reference = _energy(model, batch)
    assert torch.equal(_energy(model, batch), reference)  # second call: matrices from the cache
    assert getattr(model.interactions[0], "_radial_cache", None) is not None
    assert not any("radial_cache" in key for key in model.state_dict())

    with torch.no_grad():
        model.interactions[0].radial_network[0].weight.mul_(1.3)
    changed = _energy(model, batch)
    model.requires_grad_(True)  # computed afresh from the weights
    torch.testing.assert_close(changed, _energy(model, batch), rtol=0, atol=1e-10)
    assert not torch.allclose(changed, reference)
