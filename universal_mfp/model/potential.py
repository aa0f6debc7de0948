"""The multi-fidelity equivariant potential: embedding, interaction layers, fidelity-conditioned readout."""

from __future__ import annotations

import torch
from ase.data import chemical_symbols
from e3nn import o3
from torch import nn

from universal_mfp.data import keys
from universal_mfp.model.angular import AngularInvariants
from universal_mfp.model.config import ModelConfig, resolve_dtype
from universal_mfp.model.fidelity_linear import FidelityDense, FidelityLinear
from universal_mfp.model.frozen import frozen_key
from universal_mfp.model.gradients import energy_forces_stress, times_structure_matrix
from universal_mfp.model.harmonics import EdgeHarmonics
from universal_mfp.model.interaction import InteractionBlock
from universal_mfp.model.radial import RadialEmbedding
from universal_mfp.model.repulsion import ZBLRepulsion


class MultiFidelityPotential(nn.Module):
    """E(3)-equivariant message-passing potential with one-hot fidelity conditioning (SevenNet-MF style).

    With ``config.fidelity_conditioning == "readout"`` the interaction layers are shared (their linear
    layers have a single bias row, used for every fidelity) and only the readout depends on the fidelity.
    With ``"heads"`` the interaction layers are shared likewise and each fidelity has its own readout weights and
    biases. With ``"linear_delta"`` the readout is shared too and each fidelity adds ``fidelity_delta[f] · h`` (zero
    at initialisation) to it, ``h`` being the final scalar node features.

    The per-atom energy is ``ref[f, Z] + scale[f] * (y(h_i, f) - y_isolated(Z, f))`` where ``y`` is the
    fidelity-conditioned readout of the final node features, ``y_isolated`` the same readout for an atom
    with no neighbours, ``ref`` the per-fidelity element reference energies and ``scale`` a per-fidelity
    energy scale. An isolated atom therefore has exactly its reference energy at every fidelity.

    With ``config.pair_repulsion`` each atom also gets its share of a fixed ZBL pair repulsion
    (``model/repulsion.py``), the same at every fidelity: zero beyond a multiple of the sum of two atoms'
    covalent radii, tens of eV where two nuclei nearly meet, so the energy has a wall where training data has no atoms.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        num_fidelities = len(config.fidelities)
        num_species = len(config.elements)
        hidden = o3.Irreps(config.hidden_irreps).simplify()
        num_scalars = sum(mul for mul, ir in hidden if ir == o3.Irrep("0e"))

        table = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
        table[torch.tensor(config.elements)] = torch.arange(num_species)
        self.register_buffer("species_of_z", table, persistent=False)

        self.embedding = nn.Embedding(num_species, num_scalars)
        nn.init.normal_(self.embedding.weight)
        self.radial = RadialEmbedding(config.cutoff, config.num_radial_basis, config.cutoff_polynomial_p)
        self.angular = (
            AngularInvariants(
                config.angular_lmax,
                config.angular_channels,
                config.num_radial_basis,
                num_species,
                num_scalars,
                config.avg_num_neighbors,
            )
            if config.angular_lmax > 0
            else None
        )
        irreps_sh = o3.Irreps.spherical_harmonics(config.lmax_edge)
        # one evaluation serves both: the interaction layers take degrees <= lmax_edge, the invariants 1..angular_lmax
        self.edge_harmonics = EdgeHarmonics(max(config.lmax_edge, config.angular_lmax))
        self.num_edge_harmonics = irreps_sh.dim

        scalars_only = o3.Irreps(f"{num_scalars}x0e")
        irreps = scalars_only
        self.conditions_interactions = config.fidelity_conditioning == "all"
        block_fidelities = num_fidelities if self.conditions_interactions else 1
        blocks = []
        for layer in range(config.num_layers):
            target = scalars_only if layer == config.num_layers - 1 else hidden
            block = InteractionBlock(
                irreps,
                target,
                irreps_sh,
                config.num_radial_basis,
                config.radial_mlp_hidden,
                config.avg_num_neighbors,
                block_fidelities,
            )
            blocks.append(block)
            irreps = block.irreps_out
        self.interactions = nn.ModuleList(blocks)
        self.conditions_readout = config.fidelity_conditioning != "linear_delta"
        readout_fidelities = num_fidelities if self.conditions_readout else 1
        self.readout_hidden: FidelityLinear | FidelityDense
        self.readout_out: FidelityLinear | FidelityDense
        if config.fidelity_conditioning == "heads":  # the last interaction layer outputs scalars only
            self.readout_hidden = FidelityDense(irreps.dim, config.readout_hidden, num_fidelities)
            self.readout_out = FidelityDense(config.readout_hidden, 1, num_fidelities)
        else:
            self.readout_hidden = FidelityLinear(irreps, f"{config.readout_hidden}x0e", readout_fidelities)
            self.readout_out = FidelityLinear(f"{config.readout_hidden}x0e", "1x0e", readout_fidelities)
        # per-fidelity linear correction of the readout (``linear_delta`` only): [F, final scalar features]
        delta = None if self.conditions_readout else nn.Parameter(torch.zeros(num_fidelities, irreps.dim))
        self.register_parameter("fidelity_delta", delta)
        self.repulsion = (
            ZBLRepulsion(config.pair_repulsion_cutoff_factor, config.cutoff_polynomial_p)
            if config.pair_repulsion
            else None
        )

        # Per-fidelity element reference energies: the energy of each isolated atom at each fidelity. They are
        # initialised by a least-squares fit (see training/statistics.py) and trained with the rest.
        self.element_references = nn.Parameter(torch.zeros(num_fidelities, num_species))
        self.register_buffer("energy_scale", torch.ones(num_fidelities))
        self.to(resolve_dtype(config.dtype))
        # readout of isolated atoms when the parameters are frozen: (parameter key, {pair: value}); not state
        self._isolated_cache: tuple[tuple, dict[int, torch.Tensor]] | None = None
        self._parameter_list: tuple[torch.nn.Parameter, ...] | None = None  # see _parameters_once

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point dtype of the parameters."""
        return self.energy_scale.dtype

    @property
    def device(self) -> torch.device:
        """Device of the parameters and buffers."""
        return self.energy_scale.device

    @property
    def fidelities(self) -> tuple[str, ...]:
        """Fidelity names in one-hot order."""
        return self.config.fidelities

    def is_per_fidelity(self, name: str) -> bool:
        """Whether the parameter or buffer ``name`` (a state-dict key) has one row per fidelity."""
        last = name.rsplit(".", 1)[-1]
        if last in ("element_references", "energy_scale", "fidelity_delta", "fidelity_weight"):
            return True
        if last != "fidelity_bias":
            return False
        if name.startswith("interactions."):
            return self.conditions_interactions
        return self.conditions_readout

    def set_energy_normalization(self, references: torch.Tensor, scale: torch.Tensor) -> None:
        """Set per-fidelity element references [F, S] (eV) and energy scales [F] (eV)."""
        references = torch.as_tensor(references, dtype=self.dtype, device=self.device)
        scale = torch.as_tensor(scale, dtype=self.dtype, device=self.device)
        if references.shape != self.element_references.shape or scale.shape != self.energy_scale.shape:
            raise ValueError(
                f"expected references {tuple(self.element_references.shape)} and scale "
                f"{tuple(self.energy_scale.shape)}, got {tuple(references.shape)} and {tuple(scale.shape)}"
            )
        if not (torch.isfinite(references).all() and torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("references must be finite and scales finite and positive")
        with torch.no_grad():
            self.element_references.copy_(references)
            self.energy_scale.copy_(scale)

    def species(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Map atomic numbers [N] to embedding indices, raising ``ValueError`` on elements the model lacks."""
        if atomic_numbers.numel() and (atomic_numbers.min() < 1 or atomic_numbers.max() >= len(chemical_symbols)):
            raise ValueError("atomic numbers must be in 1..118")
        species = self.species_of_z[atomic_numbers]
        if (species < 0).any():
            unknown = sorted({chemical_symbols[int(z)] for z in atomic_numbers[species < 0].unique()})
            raise ValueError(
                f"elements {unknown} are not supported by this model; it knows {self.config.element_symbols}"
            )
        return species

    def _features(
        self,
        species: torch.Tensor,
        node_fidelity: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        *,
        recompute: bool = False,
    ) -> torch.Tensor:
        """Final node features [N, scalars] after the interaction layers (``recompute``: see ``InteractionBlock``)."""
        lengths = torch.linalg.vector_norm(edge_vectors, dim=1)
        edge_radial = self.radial(lengths)
        all_harmonics = self.edge_harmonics(edge_vectors)  # degrees 0..max(lmax_edge, angular_lmax)
        edge_harmonics = all_harmonics[:, : self.num_edge_harmonics]
        features = self.embedding(species)
        if self.angular is not None:
            features = features + self.angular(species, edge_index, all_harmonics, edge_radial, lean=recompute)
        for block in self.interactions:  # shared layers (one bias row) ignore the fidelity
            features = block(features, node_fidelity, edge_index, edge_harmonics, edge_radial, recompute=recompute)
        return features

    def _head(self, features: torch.Tensor, node_fidelity: torch.Tensor) -> torch.Tensor:
        """The fidelity-conditioned readout ``y`` [N] of final node features."""
        hidden = torch.nn.functional.silu(self.readout_hidden(features, node_fidelity))
        y = self.readout_out(hidden, node_fidelity).squeeze(-1)
        if self.fidelity_delta is not None:
            y = y + (self.fidelity_delta[node_fidelity] * features).sum(-1)
        return y

    def _isolated_readout(self, species: torch.Tensor, node_fidelity: torch.Tensor) -> torch.Tensor:
        """Readout of each atom as if it had no neighbours, computed once per (fidelity, species) pair."""
        num_species = self.species_of_z.new_tensor(len(self.config.elements))
        pair = node_fidelity * num_species + species
        unique, inverse = torch.unique(pair, return_inverse=True)
        frozen = frozen_key(self._parameters_once())
        if frozen is None:
            return self._isolated_values(unique, num_species)[inverse]
        # frozen parameters (evaluation copies): the values are constants, cached until a parameter changes
        key = (frozen, species.device)
        if self._isolated_cache is None or self._isolated_cache[0] != key:
            self._isolated_cache = (key, {})
        cache = self._isolated_cache[1]
        wanted = unique.tolist()
        missing = [p for p in wanted if p not in cache]
        if missing:
            values = self._isolated_values(unique.new_tensor(missing), num_species).detach()
            cache.update(zip(missing, values.unbind(0), strict=True))
        return torch.stack([cache[p] for p in wanted])[inverse]

    def _parameters_once(self) -> tuple[torch.nn.Parameter, ...]:
        """The parameter objects, listed once (walking the module tree costs ~1 ms per small-cell call).

        The layers are fixed at construction; ``.to()``, ``load_state_dict``, deep copies and in-place updates
        keep (or copy along) the same objects, and the cache key above sees their new data pointers and versions.
        """
        if self._parameter_list is None:
            self._parameter_list = tuple(self.parameters())
        return self._parameter_list

    def _isolated_values(self, pairs: torch.Tensor, num_species: torch.Tensor) -> torch.Tensor:
        species, node_fidelity = pairs % num_species, pairs // num_species
        return self._head(self._lone_features(species, node_fidelity), node_fidelity)

    def _lone_features(self, species: torch.Tensor, node_fidelity: torch.Tensor) -> torch.Tensor:
        """Final node features of atoms with no neighbours."""
        empty_edges = torch.zeros(2, 0, dtype=torch.long, device=species.device)
        empty_vectors = torch.zeros(0, 3, dtype=self.dtype, device=species.device)
        return self._features(species, node_fidelity, empty_edges, empty_vectors)

    def _repulsion(
        self, atomic_numbers: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor
    ) -> torch.Tensor | None:
        """Per-atom pair repulsion [N] (``config.pair_repulsion``), else ``None``."""
        if self.repulsion is None:
            return None
        return self.repulsion(atomic_numbers, edge_index, torch.linalg.vector_norm(edge_vectors, dim=1))

    @staticmethod
    def _edge_vectors(
        positions: torch.Tensor,
        cell: torch.Tensor,
        edge_index: torch.Tensor,
        edge_shifts: torch.Tensor,
        batch_index: torch.Tensor,
    ) -> torch.Tensor:
        """Vectors [E, 3] from each edge's centre to its neighbour's periodic image."""
        centre, neighbour = edge_index[0], edge_index[1]
        offsets = times_structure_matrix(edge_shifts, cell, batch_index, centre)
        # index_select, not advanced indexing: the backward of the latter accumulates rows one by one
        return positions.index_select(0, neighbour) - positions.index_select(0, centre) + offsets

    @staticmethod
    def _per_structure(atomic: torch.Tensor, batch_index: torch.Tensor, num_structures: int) -> torch.Tensor:
        """Sum of per-atom energies [N] per structure [B], in float64."""
        energy = torch.zeros(num_structures, dtype=torch.float64, device=atomic.device)
        return energy.index_add(0, batch_index, atomic.to(torch.float64))

    def energy_with_frozen_features(
        self, batch: dict[str, torch.Tensor], fidelity: int, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Energy [B] (float64, eV) of each structure at fidelity index ``fidelity``, features without gradient.

        The node features (of the structure and of each element's lone atom) are computed without gradient, so
        only the readout and the element references receive one: the embedding and interaction layers learn
        nothing from this energy. ``features`` takes the structure's final node features when they are already
        known (``forward(..., return_features=True)`` gives them for the same batch), saving a message pass.

        Used by the cross-fidelity prior in training (``training.fidelity_prior``), which shapes a fidelity's
        readout where that fidelity has no labels. No forces or stress.
        """
        if not 0 <= fidelity < len(self.config.fidelities):
            raise ValueError(f"fidelity index {fidelity} out of range; this model's are {list(self.config.fidelities)}")
        batch_index = batch[keys.BATCH]
        species = self.species(batch[keys.ATOMIC_NUMBERS])
        node_fidelity = torch.full_like(batch_index, fidelity)
        unique, inverse = torch.unique(species, return_inverse=True)
        lone_fidelity = torch.full_like(unique, fidelity)
        edge_index = batch[keys.EDGE_INDEX]
        with torch.no_grad():
            edge_vectors = None
            if features is None or self.repulsion is not None:
                edge_vectors = self._edge_vectors(
                    batch[keys.POSITIONS].to(self.dtype),
                    batch[keys.CELL].to(self.dtype),
                    edge_index,
                    batch[keys.EDGE_SHIFTS].to(self.dtype),
                    batch_index,
                )
            if features is None:
                features = self._features(species, node_fidelity, edge_index, edge_vectors, recompute=True)
            elif features.shape[0] != species.shape[0]:
                raise ValueError(f"features for {features.shape[0]} atoms given for a batch of {species.shape[0]}")
            lone = self._lone_features(unique, lone_fidelity)
            repulsion = self._repulsion(batch[keys.ATOMIC_NUMBERS], edge_index, edge_vectors)
        y = self._head(features.detach(), node_fidelity)
        y_isolated = self._head(lone, lone_fidelity)[inverse]
        atomic = self.element_references[node_fidelity, species] + self.energy_scale[node_fidelity] * (y - y_isolated)
        if repulsion is not None:
            atomic = atomic + repulsion
        return self._per_structure(atomic, batch_index, batch[keys.FIDELITY].shape[0])

    def forward(
        self,
        batch: dict[str, torch.Tensor],
        *,
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool | None = None,
        return_features: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Predict energy [B] (float64, eV) and, as asked, forces [N, 3] and stress [B, 3, 3].

        Args:
            batch: a batch dict (``universal_mfp.data.keys``).
            compute_forces: also return forces (eV/Å).
            compute_stress: also return stress (eV/Å³, ASE convention; zero for non-periodic structures).
            create_graph: keep the derivative graph; defaults to ``self.training``.
            return_features: also return the final node features, detached (``keys.NODE_FEATURES``).

        Raises:
            ValueError: on an element the model does not know or a fidelity index out of range.
        """
        fidelity = batch[keys.FIDELITY]
        if fidelity.numel() and (fidelity.min() < 0 or fidelity.max() >= len(self.config.fidelities)):
            raise ValueError(f"fidelity index out of range; this model's fidelities are {list(self.config.fidelities)}")
        batch_index = batch[keys.BATCH]
        species = self.species(batch[keys.ATOMIC_NUMBERS])
        node_fidelity = fidelity[batch_index]
        edge_index = batch[keys.EDGE_INDEX]
        edge_shifts = batch[keys.EDGE_SHIFTS].to(self.dtype)
        num_structures = fidelity.shape[0]
        reference = self.element_references[node_fidelity, species]
        scale = self.energy_scale[node_fidelity]
        y_isolated = self._isolated_readout(species, node_fidelity)
        create_graph = self.training if create_graph is None else create_graph
        kept: dict[str, torch.Tensor] = {}

        def energy_fn(positions: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            edge_vectors = self._edge_vectors(positions, cell, edge_index, edge_shifts, batch_index)
            # without create_graph, no derivative is differentiated again: use the memory-lean message pass
            features = self._features(species, node_fidelity, edge_index, edge_vectors, recompute=not create_graph)
            if return_features:
                kept[keys.NODE_FEATURES] = features.detach()
            atomic = reference + scale * (self._head(features, node_fidelity) - y_isolated)
            repulsion = self._repulsion(batch[keys.ATOMIC_NUMBERS], edge_index, edge_vectors)
            if repulsion is not None:
                atomic = atomic + repulsion
            return self._per_structure(atomic, batch_index, num_structures), atomic

        out = energy_forces_stress(
            energy_fn,
            batch[keys.POSITIONS].to(self.dtype),
            batch[keys.CELL].to(self.dtype),
            batch_index,
            batch[keys.PBC],
            compute_forces=compute_forces,
            compute_stress=compute_stress,
            create_graph=create_graph,
        )
        out.update(kept)
        return out


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(config: ModelConfig, *, seed: int | None = None) -> MultiFidelityPotential:
    """Build a freshly initialised model; ``seed`` makes the initialisation reproducible without global state."""
    if seed is None:
        return MultiFidelityPotential(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MultiFidelityPotential(config)


__all__ = ["MultiFidelityPotential", "build_model", "count_parameters"]
