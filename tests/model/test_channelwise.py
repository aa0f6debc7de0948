"""The fast channel-wise tensor product equals e3nn's TensorProduct + sum over edges (values and derivatives)."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from tests.model.helpers import VARIANTS, batch_of, rattled_crystal, small_model
from universal_mfp.data import keys
from universal_mfp.model import channelwise_recompute
from universal_mfp.model.channelwise import ChannelwiseTensorProduct
from universal_mfp.model.interaction import InteractionBlock

# relative tolerances; float64 is limited by e3nn's float32-rounded Wigner 3j buffers in the reference
REL_TOL = {torch.float32: 2e-5, torch.float64: 1e-6}

LAYERS = [
    ("16x0e", "16x0e+8x1o+4x2e", 2),
    ("16x0e+8x1o+4x2e", "16x0e+8x1o+4x2e", 2),
    ("16x0e+8x1o+4x2e", "16x0e", 2),
    ("8x0e+2x0o+4x1o+4x1e+2x2e", "8x0e+2x0o+4x1o+4x1e+2x2e", 3),
]


def _reference_messages(block, x, harmonics, weights, centre, neighbour):
    messages = block.tensor_product(x[neighbour], harmonics, weights)
    return torch.zeros(x.shape[0], messages.shape[1], dtype=x.dtype).index_add(0, centre, messages)


def _reference_forward(self, features, node_fidelity, edge_index, edge_harmonics, edge_radial, *, recompute=False):
    """InteractionBlock.forward with e3nn's TensorProduct (the implementation before ChannelwiseTensorProduct)."""
    centre, neighbour = edge_index[0], edge_index[1]
    x = self.linear_1(features, node_fidelity)
    weights = self.radial_network(edge_radial)
    aggregated = _reference_messages(self, x, edge_harmonics, weights, centre, neighbour) / self.avg_num_neighbors
    out = self.linear_2(aggregated, node_fidelity) + self.self_connection(features)
    return self.gate(out)


def _close(a, b, dtype):
    scale = float(a.abs().max()) + 1e-30
    assert float((a - b).abs().max()) <= REL_TOL[dtype] * scale


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("irreps_in", "irreps_out", "lmax"), LAYERS)
def test_layer_matches_e3nn_with_first_and_second_derivatives(irreps_in, irreps_out, lmax, dtype, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    irreps_sh = o3.Irreps.spherical_harmonics(lmax)
    block = InteractionBlock(irreps_in, irreps_out, irreps_sh, 8, (16,), 10.0, 2).to(dtype)
    fast = block.messages
    num_nodes, num_edges = 7, 40
    x = torch.randn(num_nodes, block.irreps_in.dim, dtype=dtype, generator=generator).requires_grad_(True)
    vectors = torch.randn(num_edges, 3, dtype=dtype, generator=generator)
    harmonics = o3.spherical_harmonics(irreps_sh, vectors, normalize=True, normalization="component")
    harmonics = harmonics.requires_grad_(True)
    weights = torch.randn(num_edges, fast.weight_numel, dtype=dtype, generator=generator).requires_grad_(True)
    centre = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    neighbour = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    inputs = [x, harmonics, weights]

    ref = _reference_messages(block, x, harmonics, weights, centre, neighbour)
    new = fast(x, harmonics, weights, centre, neighbour)
    _close(ref, new, dtype)
    probe = torch.randn(ref.shape, dtype=dtype, generator=generator)
    grads_ref = torch.autograd.grad((ref * probe).sum(), inputs, create_graph=True)
    grads_new = torch.autograd.grad((new * probe).sum(), inputs, create_graph=True)
    for a, b in zip(grads_ref, grads_new, strict=True):
        _close(a, b, dtype)
    second_ref = torch.autograd.grad(sum((g**2).sum() for g in grads_ref), inputs)
    second_new = torch.autograd.grad(sum((g**2).sum() for g in grads_new), inputs)
    for a, b in zip(second_ref, second_new, strict=True):
        _close(a, b, dtype)

    # the memory-lean path: same values and first derivatives, in several chunks of edges
    monkeypatch.setattr(channelwise_recompute, "_CHUNK_NUMBERS", 64)
    lean = fast(x, harmonics, weights, centre, neighbour, recompute=True)
    _close(ref, lean, dtype)
    grads_lean = torch.autograd.grad((lean * probe).sum(), inputs)
    for a, b in zip(grads_ref, grads_lean, strict=True):
        _close(a.detach(), b, dtype)
    lean = fast(x, harmonics, weights, centre, neighbour, recompute=True)
    with pytest.raises(RuntimeError, match="not twice differentiable"):
        torch.autograd.grad((lean * probe).sum(), inputs, create_graph=True)


def test_no_edges_gives_zero_messages():
    block = InteractionBlock("4x0e+2x1o", "4x0e+2x1o", o3.Irreps.spherical_harmonics(2), 8, (8,), 10.0, 2)
    out = block.messages(
        torch.randn(3, block.irreps_in.dim),
        torch.zeros(0, 9),
        torch.zeros(0, block.messages.weight_numel),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, dtype=torch.long),
    )
    assert out.shape == (3, block.messages.irreps_out.dim)
    assert float(out.abs().max()) == 0.0


def test_rejects_tensor_products_it_does_not_implement():
    tp = o3.FullyConnectedTensorProduct("2x0e+2x1o", "1x0e+1x1o", "2x0e+2x1o", shared_weights=False)
    with pytest.raises(ValueError, match="uvu"):
        ChannelwiseTensorProduct(tp)


@pytest.mark.parametrize("create_graph", [False, True], ids=["evaluation", "training"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_model_outputs_match_the_e3nn_implementation(variant, dtype, create_graph, monkeypatch):
    model = small_model(variant, dtype)
    batch = batch_of([rattled_crystal(seed=1, repeat=(2, 1, 1)), rattled_crystal(seed=2)], [0, 1], model.config.cutoff)
    new = model(batch, compute_forces=True, compute_stress=True, create_graph=create_graph)
    monkeypatch.setattr(InteractionBlock, "forward", _reference_forward)
    ref = model(batch, compute_forces=True, compute_stress=True, create_graph=create_graph)
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS):
        _close(ref[key].detach(), new[key].detach(), getattr(torch, dtype))
    assert not any(".messages." in key for key in model.state_dict())  # no new checkpoint entries
