"""EdgeHarmonics: e3nn's spherical harmonics (normalize=True, component normalisation), from monomials."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from tests.model.helpers import random_rotation
from universal_mfp.model.harmonics import EdgeHarmonics

DEGREES = range(5)


def _e3nn(lmax: int) -> o3.SphericalHarmonics:
    return o3.SphericalHarmonics(o3.Irreps.spherical_harmonics(lmax), normalize=True, normalization="component")


def _random_vectors(dtype: torch.dtype, count: int = 300, seed: int = 0) -> torch.Tensor:
    """Random directions with lengths from 1e-3 to 1e3."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(count, 3, dtype=torch.float64, generator=generator)
    lengths = 10 ** (6 * torch.rand(count, 1, dtype=torch.float64, generator=generator) - 3)
    return (directions / directions.norm(dim=1, keepdim=True) * lengths).to(dtype)


def _axis_vectors(dtype: torch.dtype) -> torch.Tensor:
    """The six axis directions and the diagonals of the coordinate planes and of the cube, various lengths."""
    axes = torch.eye(3, dtype=torch.float64)
    vectors = [sign * axis * length for axis in axes for sign in (1, -1) for length in (0.5, 3.0)]
    vectors += [
        torch.tensor(v, dtype=torch.float64) for v in ((1, 1, 0), (0, -2, 2), (3, 0, -3), (1, 1, 1), (-1, 2, -1))
    ]
    return torch.stack(vectors).to(dtype)


@pytest.mark.parametrize("lmax", DEGREES)
@pytest.mark.parametrize("vectors", [_random_vectors, _axis_vectors])
def test_values_equal_e3nn_in_float64_and_float32(lmax, vectors):
    expected = _e3nn(lmax)(vectors(torch.float64))
    got = EdgeHarmonics(lmax)(vectors(torch.float64))
    assert got.shape == (expected.shape[0], (lmax + 1) ** 2)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # float32: both within float32 round-off of the float64 values (harmonics are of order 1 to 3)
    got32 = EdgeHarmonics(lmax).float()(vectors(torch.float32))
    e3nn32 = _e3nn(lmax)(vectors(torch.float32))
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), expected, rtol=0, atol=3e-6)
    torch.testing.assert_close(got32, e3nn32, rtol=0, atol=3e-6)


def test_degree_zero_is_exactly_one_and_axis_harmonics_are_exact_where_e3nn_is_zero():
    vectors = _axis_vectors(torch.float64)
    got, expected = EdgeHarmonics(4)(vectors), _e3nn(4)(vectors)
    assert torch.equal(got[:, 0], torch.ones(len(vectors), dtype=torch.float64))
    zeros = expected.abs() < 1e-15
    assert zeros.sum() > 50  # many vanish on the axes
    assert got[zeros].abs().max() < 1e-13


@pytest.mark.parametrize("lmax", [1, 2, 4])
def test_gradient_equals_e3nn(lmax):
    vectors = _random_vectors(torch.float64, count=100, seed=1)
    weights = torch.randn(
        len(vectors), (lmax + 1) ** 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    gradients = []
    for harmonics in (EdgeHarmonics(lmax), _e3nn(lmax)):
        x = vectors.clone().requires_grad_()
        (gradient,) = torch.autograd.grad((harmonics(x) * weights).sum(), x)
        gradients.append(gradient * vectors.norm(dim=1, keepdim=True))  # |v| dY/dv is of order 1 to 10
    torch.testing.assert_close(gradients[0], gradients[1], rtol=0, atol=1e-11)


def test_second_derivatives_equal_e3nn_as_training_takes_them():
    """Forces in the loss are differentiated again (create_graph=True)."""
    vectors = _random_vectors(torch.float64, count=50, seed=3).clamp(-5, 5) + 0.1
    generator = torch.Generator().manual_seed(4)
    weights = torch.randn(len(vectors), 25, dtype=torch.float64, generator=generator)
    force_weights = torch.randn(len(vectors), 3, dtype=torch.float64, generator=generator)
    results = []
    for harmonics in (EdgeHarmonics(4), _e3nn(4)):
        x = vectors.clone().requires_grad_()
        (gradient,) = torch.autograd.grad((harmonics(x) * weights).sum(), x, create_graph=True)
        (second,) = torch.autograd.grad((gradient * force_weights).sum(), x)
        results.append(second)
    assert results[0].abs().max() > 1e-2  # not trivially zero
    torch.testing.assert_close(results[0], results[1], rtol=1e-9, atol=1e-9)


def test_gradgradcheck():
    vectors = _random_vectors(torch.float64, count=6, seed=5).requires_grad_()
    harmonics = EdgeHarmonics(3)
    assert torch.autograd.gradcheck(harmonics, (vectors,))
    assert torch.autograd.gradgradcheck(harmonics, (vectors,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_edges(dtype):
    harmonics = EdgeHarmonics(4).to(dtype)
    vectors = torch.zeros(0, 3, dtype=dtype, requires_grad=True)
    out = harmonics(vectors)
    assert out.shape == (0, 25)
    assert out.dtype == dtype
    (gradient,) = torch.autograd.grad(out.sum(), vectors, allow_unused=True)
    assert gradient is None or gradient.shape == (0, 3)


def test_zero_vector_as_e3nn_gives_it():
    """e3nn normalises with v / max(|v|, 1e-12): a zero vector has harmonics (1, 0, ..., 0), not NaN, and a finite
    (huge, 1e12-scale) gradient through the degree-1 harmonics."""
    vectors = torch.tensor([[0.0, 0.0, 0.0], [0.3, -1.0, 2.0]], dtype=torch.float64)
    weights = torch.randn(2, 25, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    results = []
    for harmonics in (EdgeHarmonics(4), _e3nn(4)):
        x = vectors.clone().requires_grad_()
        values = harmonics(x)
        (gradient,) = torch.autograd.grad((values * weights).sum(), x)
        results.append((values, gradient))
    (values, gradient), (expected_values, expected_gradient) = results
    assert torch.equal(values[0], torch.eye(25, dtype=torch.float64)[0])
    torch.testing.assert_close(values, expected_values, rtol=0, atol=1e-12)
    assert torch.isfinite(gradient).all()
    assert gradient[0].abs().max() > 1e11
    torch.testing.assert_close(gradient, expected_gradient, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("proper", [True, False])
def test_each_degree_transforms_with_the_wigner_matrix(proper):
    """Y_l(R v) = D_l(R) Y_l(v), D_l with the parity (-1)^l under an improper R."""
    vectors = _random_vectors(torch.float64, count=60, seed=7)
    rotation = torch.as_tensor(random_rotation(8, proper=proper))
    harmonics = EdgeHarmonics(4)
    rotated, original = harmonics(vectors @ rotation.T), harmonics(vectors)
    for degree in range(5):
        columns = slice(degree**2, (degree + 1) ** 2)
        # e3nn's D is float32-accurate (its tables are float32): to 1e-5 against it
        wigner = o3.Irrep(degree, (-1) ** degree).D_from_matrix(rotation)
        torch.testing.assert_close(rotated[:, columns], original[:, columns] @ wigner.T, rtol=0, atol=1e-5)
        # to float64 round-off: the degree-l block at R v is an orthogonal map of the block at v
        fitted = torch.linalg.lstsq(original[:, columns], rotated[:, columns]).solution.T
        torch.testing.assert_close(original[:, columns] @ fitted.T, rotated[:, columns], rtol=0, atol=1e-12)
        torch.testing.assert_close(
            fitted @ fitted.T, torch.eye(2 * degree + 1, dtype=torch.float64), rtol=0, atol=1e-12
        )
        torch.testing.assert_close(fitted, wigner, rtol=0, atol=1e-5)
        if degree > 0:  # and the test has teeth: the block does move
            assert (rotated[:, columns] - original[:, columns]).abs().max() > 0.1


def test_dtype_round_trip_keeps_the_float64_coefficients_and_no_state():
    fresh = EdgeHarmonics(4)
    assert fresh.state_dict() == {}  # a model's state dict does not change
    round_trip = EdgeHarmonics(4).float().double()
    assert torch.equal(round_trip.coefficients, fresh.coefficients)
    vectors = _random_vectors(torch.float64, count=20)
    assert torch.equal(round_trip(vectors), fresh(vectors))
    # a float32 module given float64 vectors computes in float64 with the exact coefficients
    assert torch.equal(EdgeHarmonics(4).float()(vectors), fresh(vectors))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="lmax must be >= 0"):
        EdgeHarmonics(-1)
    with pytest.raises(ValueError, match=r"shape \[E, 3\]"):
        EdgeHarmonics(2)(torch.zeros(4, 2))
