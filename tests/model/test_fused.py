"""``FusedLinear`` and ``FusedGate`` compute exactly what e3nn's ``o3.Linear`` and ``Gate`` compute."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.nn import Gate

from universal_mfp.model.fused import FusedGate, FusedLinear

LINEARS = [
    ("64x0e", "64x0e"),
    ("64x0e", "88x0e+16x1o+8x2e"),  # no path reaches 1o and 2e: zeros
    ("64x0e+16x0e+8x0e+64x1o+16x1o+16x1o+8x1o+64x2e+16x2e+8x2e+8x2e", "88x0e+16x1o+8x2e"),
    ("8x1o+4x0e+3x2e+2x0e", "5x2e+3x0e+2x1o+1x0e"),  # unsorted, repeated kinds in the output too
    ("4x1e+2x0o", "3x1e+2x0o+1x2o"),
]


@pytest.mark.parametrize(("irreps_in", "irreps_out"), LINEARS)
def test_fused_linear_equals_e3nn(irreps_in, irreps_out):
    torch.manual_seed(0)
    linear = o3.Linear(irreps_in, irreps_out).double()
    fused = FusedLinear(linear).double()
    x = torch.randn(11, linear.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    expected, got = linear(x), fused(x, linear.weight)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # the same gradients with respect to the input and the weights
    probe = torch.randn_like(expected)
    grads_expected = torch.autograd.grad((expected * probe).sum(), (x, linear.weight))
    grads_got = torch.autograd.grad((got * probe).sum(), (x, linear.weight))
    for a, b in zip(grads_got, grads_expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not list(fused.parameters()) and not fused.state_dict()


def test_fused_linear_refuses_biases():
    with pytest.raises(ValueError, match="no biases"):
        FusedLinear(o3.Linear("4x0e", "4x0e", biases=True))


def _gate(scalars: str, gated: str) -> Gate:
    gated_irreps = o3.Irreps(gated)
    gates = f"{gated_irreps.num_irreps}x0e" if gated_irreps.num_irreps else ""
    return Gate(scalars, [torch.nn.functional.silu], gates, [torch.sigmoid] if gates else [], gated)


@pytest.mark.parametrize(
    ("scalars", "gated"),
    [("64x0e", "16x1o+8x2e"), ("64x0e", ""), ("5x0e", "3x2e+2x1o+4x1e"), ("3x0e", "2x0o")],
)
def test_fused_gate_equals_e3nn(scalars, gated):
    torch.manual_seed(1)
    gate = _gate(scalars, gated)
    fused = FusedGate(gate)
    x = torch.randn(9, gate.irreps_in.dim, requires_grad=True)
    expected, got = gate(x), fused(x, gate)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    probe = torch.randn_like(expected)
    (grad_expected,) = torch.autograd.grad((expected * probe).sum(), x)
    (grad_got,) = torch.autograd.grad((got * probe).sum(), x)
    torch.testing.assert_close(grad_got, grad_expected, rtol=1e-6, atol=1e-6)


def test_frozen_weights_are_gathered_once_and_regathered_after_a_change():
    torch.manual_seed(2)
    linear = o3.Linear("8x0e+4x1o", "6x0e+2x1o")
    fused = FusedLinear(linear)
    linear.weight.requires_grad_(False)
    x = torch.randn(5, linear.irreps_in.dim)
    torch.testing.assert_close(fused(x, linear.weight), linear(x))
    cached = {g: matrix for g, (_, matrix) in fused._cache.items()}
    assert len(cached) == 2
    fused(x, linear.weight)
    assert all(fused._cache[g][1] is m for g, m in cached.items())  # reused, not rebuilt
    with torch.no_grad():
        linear.weight.mul_(-2.0)  # an in-place update (optimizer step, load_state_dict) bumps the version
    torch.testing.assert_close(fused(x, linear.weight), linear(x))
    linear.weight.requires_grad_(True)  # training: never cached
    fused(x, linear.weight)
    assert not fused._cache
