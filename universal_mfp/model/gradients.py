"""Forces and stress by automatic differentiation of the energy: the only place they are computed.

Forces are ``-dE/dx``. Stress is the derivative with respect to a symmetric strain ε applied to
positions and cell, ``σ = (1/V) dE/dε`` (ASE's sign convention), evaluated at ε = 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from universal_mfp.data import keys

EnergyFunction = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def energy_forces_stress(
    energy_fn: EnergyFunction,
    positions: torch.Tensor,
    cell: torch.Tensor,
    batch_index: torch.Tensor,
    pbc: torch.Tensor,
    *,
    compute_forces: bool,
    compute_stress: bool,
    create_graph: bool,
) -> dict[str, torch.Tensor]:
    """Evaluate ``energy_fn(positions, cell) -> (energy [B], atomic_energies [N])`` and its derivatives.

    Args:
        energy_fn: maps positions [N, 3] and cell [B, 3, 3] to total and per-atom energies.
        positions: [N, 3] in the model's dtype.
        cell: [B, 3, 3] in the model's dtype.
        batch_index: [N] structure of each atom.
        pbc: [B, 3]; stress is only defined (and only non-zero) for fully periodic structures.
        compute_forces: return ``forces``.
        compute_stress: return ``stress``.
        create_graph: keep the graph of the derivatives (training on forces or stress).

    Returns:
        A dict with ``energy``, ``atomic_energies`` and, as asked, ``forces`` and ``stress``.
    """
    inputs: list[torch.Tensor] = []
    if compute_forces:
        positions = positions.detach().requires_grad_(True)
        inputs.append(positions)
    strain = None
    if compute_stress:
        strain = torch.zeros_like(cell, requires_grad=True)
        inputs.append(strain)
        symmetric = 0.5 * (strain + strain.transpose(1, 2))
        if symmetric.shape[0] == 1:  # one structure: one matrix product, with a cheap backward
            positions = positions + positions @ symmetric[0]
        else:
            positions = positions + (positions.unsqueeze(-1) * symmetric.index_select(0, batch_index)).sum(1)
        cell = cell + torch.bmm(cell, symmetric)

    energy, atomic_energies = energy_fn(positions, cell)
    out = {keys.ENERGY: energy, keys.ATOMIC_ENERGIES: atomic_energies}
    if not inputs:
        return out

    gradients = torch.autograd.grad(
        energy.sum(), inputs, create_graph=create_graph, allow_unused=True, materialize_grads=True
    )
    grad_iter = iter(gradients)
    if compute_forces:
        out[keys.FORCES] = -next(grad_iter)
    if compute_stress:
        virial = next(grad_iter)
        periodic = pbc.all(dim=1)
        volume = torch.linalg.det(cell).abs()
        safe_volume = torch.where(periodic, volume, torch.ones_like(volume))
        stress = virial / safe_volume.view(-1, 1, 1)
        out[keys.STRESS] = torch.where(periodic.view(-1, 1, 1), stress, torch.zeros_like(stress))
    return out
