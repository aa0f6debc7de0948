"""The radial network as folded matrices, and the memory-lean message pass that evaluates it chunk by chunk."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet

from universal_mfp.model import channelwise_recompute, radial_mlp
from universal_mfp.model.interaction import InteractionBlock

HIDDEN = [(16,), (16, 12)]


def _network(hidden: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> FullyConnectedNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FullyConnectedNet([8, *hidden, 20], torch.nn.functional.silu).to(dtype)


@pytest.mark.parametrize("hidden", HIDDEN, ids=str)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 2e-6)], ids=["f64", "f32"])
def test_folded_matrices_give_the_networks_output_and_gradients(hidden, dtype, tol):
    network = _network(hidden, dtype)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(50, 8, dtype=dtype, generator=generator).requires_grad_(True)
    probe = torch.randn(50, 20, dtype=dtype, generator=generator)
    reference = network(inputs)
    ref_grads = torch.autograd.grad((reference * probe).sum(), [inputs, *network.parameters()])

    matrices = radial_mlp.radial_matrices(network)
    assert len(matrices) == len(hidden) + 1
    out, pre_activations = radial_mlp.forward_chunk(inputs.detach(), [m.detach() for m in matrices])
    scale = float(reference.abs().max())
    assert float((out - reference).abs().max()) <= tol * scale

    # hand-written backward: the inputs' gradient and, through the folding, the network weights' gradients
    grad_matrices = [torch.zeros_like(m) for m in matrices]
    grad_inputs = radial_mlp.backward_chunk(
        probe, inputs.detach(), pre_activations, [m.detach() for m in matrices], grad_matrices, True
    )
    weight_grads = torch.autograd.grad(matrices, list(network.parameters()), grad_matrices)
    for ref, new in zip(ref_grads, [grad_inputs, *weight_grads], strict=True):
        assert float((ref - new).abs().max()) <= 10 * tol * float(ref.abs().max())
    assert radial_mlp.backward_chunk(probe, inputs.detach(), pre_activations, matrices, None, False) is None


def test_rejects_networks_it_does_not_implement():
    with pytest.raises(ValueError, match="SiLU"):
        radial_mlp.radial_matrices(FullyConnectedNet([8, 16, 4], torch.tanh))


@pytest.mark.parametrize("chunk_numbers", [64, None], ids=["70 chunks", "one chunk kept"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_lean_pass_with_the_radial_network_inside_equals_the_plain_pass(dtype, chunk_numbers, monkeypatch):
    """Values and gradients (node features, harmonics, radial features, radial weights), chunked or in one
    chunk whose per-edge work the forward pass keeps for the backward."""
    irreps_sh = o3.Irreps.spherical_harmonics(2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        block = InteractionBlock("8x0e+4x1o+2x2e", "8x0e+4x1o+2x2e", irreps_sh, 8, (16, 12), 10.0, 1).to(dtype)
    generator = torch.Generator().manual_seed(2)
    num_nodes, num_edges = 9, 70
    x = torch.randn(num_nodes, block.irreps_in.dim, dtype=dtype, generator=generator).requires_grad_(True)
    vectors = torch.randn(num_edges, 3, dtype=dtype, generator=generator)
    harmonics = o3.spherical_harmonics(irreps_sh, vectors, normalize=True, normalization="component")
    harmonics.requires_grad_(True)
    radial = torch.randn(num_edges, 8, dtype=dtype, generator=generator).requires_grad_(True)
    centre = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    neighbour = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    inputs = [x, harmonics, radial, *block.radial_network.parameters()]

    plain = block.messages(x, harmonics, block.radial_network(radial), centre, neighbour)
    probe = torch.randn(plain.shape, dtype=dtype, generator=generator)
    ref_grads = torch.autograd.grad((plain * probe).sum(), inputs)

    if chunk_numbers is not None:
        monkeypatch.setattr(channelwise_recompute, "_CHUNK_NUMBERS", chunk_numbers)  # one edge per chunk
    matrices = radial_mlp.radial_matrices(block.radial_network)
    lean = channelwise_recompute.recomputed_messages(block.messages, x, harmonics, radial, centre, neighbour, matrices)
    tol = 1e-5 if dtype == torch.float32 else 1e-11
    assert float((lean - plain).abs().max()) <= tol * float(plain.abs().max())
    grads = torch.autograd.grad((lean * probe).sum(), inputs)
    for ref, new in zip(ref_grads, grads, strict=True):
        assert float((ref - new).abs().max()) <= tol * float(ref.abs().max())

    # only what is asked for is computed: node features alone
    lean = channelwise_recompute.recomputed_messages(
        block.messages, x, harmonics.detach(), radial.detach(), centre, neighbour, [m.detach() for m in matrices]
    )
    (grad_x,) = torch.autograd.grad((lean * probe).sum(), [x])
    assert float((grad_x - ref_grads[0]).abs().max()) <= tol * float(ref_grads[0].abs().max())
