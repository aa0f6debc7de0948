"""The chunked neighbour moments equal the plain autograd ones, values and first derivatives."""

from __future__ import annotations

import pytest
import torch

from universal_mfp.model import neighbour_density
from universal_mfp.model.neighbour_density import neighbour_moments


@pytest.mark.parametrize("chunk_numbers", [40, None], ids=["many chunks", "one chunk"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_lean_moments_equal_plain_ones(dtype, chunk_numbers, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    num_nodes, num_edges, k, m = 6, 50, 3, 8
    weights = torch.randn(num_edges, k, dtype=dtype, generator=generator).requires_grad_(True)
    harmonics = torch.randn(num_edges, m, dtype=dtype, generator=generator).requires_grad_(True)
    centre = torch.randint(0, num_nodes - 1, (num_edges,), generator=generator)  # the last atom has no edges
    probe = torch.randn(num_nodes, k, m, dtype=dtype, generator=generator)
    if chunk_numbers is not None:
        monkeypatch.setattr(neighbour_density, "_CHUNK_NUMBERS", chunk_numbers)  # 16 edges per chunk

    plain = neighbour_moments(weights, harmonics, centre, num_nodes)
    lean = neighbour_moments(weights, harmonics, centre, num_nodes, lean=True)
    expected = torch.zeros(num_nodes, k, m, dtype=dtype)
    for e in range(num_edges):
        expected[centre[e]] += torch.outer(weights[e], harmonics[e]).detach()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert float((plain.detach() - expected).abs().max()) <= tol
    assert float((lean.detach() - expected).abs().max()) <= tol
    assert float(lean[-1].abs().max()) == 0.0

    ref = torch.autograd.grad((plain * probe).sum(), [weights, harmonics])
    new = torch.autograd.grad((lean * probe).sum(), [weights, harmonics])
    for a, b in zip(ref, new, strict=True):
        assert float((a - b).abs().max()) <= tol * float(a.abs().max())
    (only_harmonics,) = torch.autograd.grad(
        (neighbour_moments(weights.detach(), harmonics, centre, num_nodes, lean=True) * probe).sum(), [harmonics]
    )
    assert float((only_harmonics - ref[1]).abs().max()) <= tol * float(ref[1].abs().max())

    lean = neighbour_moments(weights, harmonics, centre, num_nodes, lean=True)
    with pytest.raises(RuntimeError, match="not twice differentiable"):
        torch.autograd.grad((lean * probe).sum(), [weights], create_graph=True)
