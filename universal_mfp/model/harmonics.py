"""Spherical harmonics of the edge directions in a handful of large operations.

e3nn's ``o3.SphericalHarmonics`` evaluates each harmonic with its own small operations (about a hundred for
l <= 4, each with an autograd node): about a tenth of a small cell's energy, forces and stress. Here every
harmonic is a fixed linear combination of monomials of the unit vector u = v / |v|: the degree-l harmonics are
homogeneous polynomials of degree l (e3nn builds them so, and ``normalize=True`` evaluates them at u), so

    Y(v) = m(u) @ C,

with m(u) all monomials x^a y^b z^c of degree a + b + c <= lmax and C a constant matrix, block-structured by
degree. The monomials are built by repeated squaring: w = (1, x, y, z) holds those of degree <= 1, and the
products of pairs of columns of the monomials of degree <= d give those of degree <= 2d (one gather-and-multiply
per doubling, two for lmax = 4). C is fitted once, in float64, to e3nn's own harmonics at random unit vectors.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import torch
from e3nn import o3
from torch import nn

# e3nn's normalisation: v / max(|v|, eps), so a zero vector gives u = 0 (harmonics (1, 0, ..., 0)), not NaN
_EPS = 1e-12
_FIT_POINTS = 2000
_FIT_TOLERANCE = 1e-10


def _doubling_plan(lmax: int) -> tuple[list[tuple[list[int], list[int]]], list[int]]:
    """Gathers that build the monomials of degree <= lmax from w = (1, x, y, z), and each column's degree.

    A monomial of degree <= d is a sorted d-tuple over {0: 1, 1: x, 2: y, 3: z}. Each step goes from degree
    <= d to degree <= min(2d, lmax) and is a pair of column lists (left, right): new column k is the product of
    old columns left[k] and right[k].
    """
    degree = 1
    current = list(itertools.combinations_with_replacement(range(4), degree))
    steps = []
    while degree < lmax:
        new_degree = min(2 * degree, lmax)
        position = {monomial: k for k, monomial in enumerate(current)}
        new = list(itertools.combinations_with_replacement(range(4), new_degree))
        left, right = [], []
        for monomial in new:  # split off the last `degree` factors; pad the rest with constants to `degree` factors
            head, tail = monomial[: new_degree - degree], monomial[new_degree - degree :]
            left.append(position[(0,) * (degree - len(head)) + head])
            right.append(position[tail])
        steps.append((left, right))
        current, degree = new, new_degree
    return steps, [sum(factor > 0 for factor in monomial) for monomial in current]


def _monomials(vectors: torch.Tensor, gathers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """[E, 3] -> [E, number of monomials] by the plan of ``_doubling_plan``."""
    monomials = nn.functional.pad(vectors, (1, 0), value=1.0)
    for left, right in gathers:
        monomials = monomials.index_select(1, left) * monomials.index_select(1, right)
    return monomials


@functools.lru_cache(maxsize=8)
def _fitted_coefficients(lmax: int) -> torch.Tensor:
    """The float64 matrix C [monomials, (lmax + 1)^2] with e3nn's harmonics = monomials(v / |v|) @ C.

    Fitted by least squares at random unit vectors, degree by degree: a homogeneous polynomial that vanishes on the
    sphere vanishes everywhere, so the degree-l monomials are independent there and the fit is unique.

    Raises:
        RuntimeError: if the fit, or a check at other random unit vectors, is off by more than 1e-10.
    """
    steps, degrees = _doubling_plan(lmax)
    gathers = [(torch.tensor(left), torch.tensor(right)) for left, right in steps]
    harmonics = o3.SphericalHarmonics(o3.Irreps.spherical_harmonics(lmax), normalize=True, normalization="component")
    generator = torch.Generator().manual_seed(0)  # never the global random state: model seeds stay reproducible
    fit, check = (
        torch.nn.functional.normalize(torch.randn(_FIT_POINTS, 3, dtype=torch.float64, generator=generator), dim=1)
        for _ in range(2)
    )
    monomials, target = _monomials(fit, gathers), harmonics(fit)
    coefficients = torch.zeros(len(degrees), target.shape[1], dtype=torch.float64)
    degree_of_row = torch.tensor(degrees)
    for degree in range(lmax + 1):  # the degree-l harmonics are homogeneous: only degree-l monomials enter
        rows = (degree_of_row == degree).nonzero().squeeze(1)
        columns = slice(degree**2, (degree + 1) ** 2)
        solution = torch.linalg.lstsq(monomials[:, rows], target[:, columns], driver="gelsd").solution
        coefficients[rows, columns] = solution if degree > 0 else torch.ones_like(solution)  # Y_0 = 1 exactly
    residual = float((monomials @ coefficients - target).abs().max())
    error = float((_monomials(check, gathers) @ coefficients - harmonics(check)).abs().max())
    if not max(residual, error) < _FIT_TOLERANCE:
        raise RuntimeError(f"monomials do not reproduce e3nn's harmonics (residual {residual:.1e}, check {error:.1e})")
    return coefficients


class EdgeHarmonics(nn.Module):
    """Edge vectors [E, 3] -> their spherical harmonics of degrees 0..lmax [E, (lmax + 1)^2].

    The same values, in the same column order, as
    ``o3.SphericalHarmonics(o3.Irreps.spherical_harmonics(lmax), normalize=True, normalization="component")``
    (to round-off), a zero vector included (1 in column 0, zeros elsewhere); differentiable to any order.
    """

    def __init__(self, lmax: int) -> None:
        super().__init__()
        if lmax < 0:
            raise ValueError(f"lmax must be >= 0, got {lmax}")
        self.lmax = lmax
        steps, _ = _doubling_plan(lmax)
        for k, (left, right) in enumerate(steps):
            self.register_buffer(f"left_{k}", torch.tensor(left), persistent=False)
            self.register_buffer(f"right_{k}", torch.tensor(right), persistent=False)
        self.num_steps = len(steps)
        exact = _fitted_coefficients(lmax).clone()
        self._exact = exact  # float64 master: see _apply
        self.register_buffer("coefficients", exact.clone(), persistent=False)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> EdgeHarmonics:
        """As ``nn.Module._apply``, but a dtype change re-derives the coefficients from the float64 master.

        A float32 model moved to float64 (``load_model(..., dtype="float64")``) thus has the exact float64
        coefficients, not float32 ones widened.
        """
        dtype = self.coefficients.dtype
        super()._apply(fn, recurse)
        if self.coefficients.dtype != dtype:
            self.coefficients = self._exact.to(device=self.coefficients.device, dtype=self.coefficients.dtype)
        return self

    def forward(self, edge_vectors: torch.Tensor) -> torch.Tensor:
        """Harmonics [E, (lmax + 1)^2] of the directions of ``edge_vectors`` [E, 3]."""
        if edge_vectors.ndim != 2 or edge_vectors.shape[1] != 3:
            raise ValueError(f"edge vectors must have shape [E, 3], got {tuple(edge_vectors.shape)}")
        lengths = torch.linalg.vector_norm(edge_vectors, dim=1, keepdim=True)
        units = edge_vectors / lengths.clamp_min(_EPS)  # as torch.nn.functional.normalize, which e3nn uses
        gathers = [(getattr(self, f"left_{k}"), getattr(self, f"right_{k}")) for k in range(self.num_steps)]
        coefficients = self.coefficients
        if coefficients.dtype != edge_vectors.dtype:
            coefficients = self._exact.to(device=edge_vectors.device, dtype=edge_vectors.dtype)
        return _monomials(units, gathers) @ coefficients

    def extra_repr(self) -> str:
        """The degree, for ``print(model)``."""
        return f"lmax={self.lmax}"


__all__ = ["EdgeHarmonics"]
