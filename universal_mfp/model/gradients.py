"""Forces and stress by automatic differentiation of the energy: the only place they are computed.

Forces are ``-dE/dx``. Stress is the derivative with respect to a symmetric strain ε applied to
positions and cell, ``σ = (1/V) dE/dε`` (ASE's sign convention), evaluated at ε = 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from universal_mfp.data import keys

EnergyFunction = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def times_structure_matrix(
    rows: torch.Tensor, matrices: torch.Tensor, batch_index: torch.Tensor, row_atoms: torch.Tensor | None = None
) -> torch.Tensor:
    """``rows[r] @ matrices[b]`` [R, 3] for rows [R, 3] and per-structure matrices [B, 3, 3].

    Row r belongs to structure ``batch_index[r]``, or ``batch_index[row_atoms[r]]`` when the rows belong to atoms
    (edges to their centre atom). One structure is one matrix product; several are gathered by ``index_select``
    (the backward of advanced indexing would add every row's gradient into its structure's matrix one by one).
    """
    if matrices.shape[0] == 1:
        return rows @ matrices[0]
    structure = batch_index if row_atoms is None else batch_index.index_select(0, row_atoms)
    return (rows.unsqueeze(-1) * matrices.index_select(0, structure)).sum(1)


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
        positions = positions + times_structure_matrix(positions, symmetric, batch_index)
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
