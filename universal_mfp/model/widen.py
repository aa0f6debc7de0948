"""Copy a trained network into a wider one that computes the same function (function-preserving widening).

A network trained at one width can grow more channels without losing what it learned (Net2WiderNet, Chen et
al. 2016): every old channel keeps its weights, every new channel receives inputs like a freshly initialised
one, and every weight from a new channel to an old one is zero. Before the first training step the wider
network therefore predicts exactly what the narrow one did (to rounding); training then puts the new channels
to use, because the gradient on their outgoing weights is not zero.

What may grow (``widening_differences``): the multiplicities of ``hidden_irreps`` (the same irreps, each as
many or more channels) and ``readout_hidden``. Everything else must be the same network.

e3nn's layers normalise by their fan-in (``o3.Linear`` multiplies each path by ``1/sqrt(fan_in)``, dense layers
divide by ``sqrt(in_features)``). Where the fan-in grows, the old weights are scaled up by the ratio of the old
path weight to the new one, so each old output is the same sum as before.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from e3nn import o3

from universal_mfp.model.config import ModelConfig
from universal_mfp.model.fidelity_linear import FidelityDense, FidelityLinear
from universal_mfp.model.interaction import InteractionBlock
from universal_mfp.model.potential import MultiFidelityPotential

GROWABLE_WIDTHS = ("hidden_irreps", "readout_hidden")

# for each irreps block, the new channel index of each old channel
ChannelMap = list[torch.Tensor]


def widening_differences(narrow: ModelConfig, wide: ModelConfig) -> list[str]:
    """The settings in which ``wide`` grows ``narrow``; raises ``ValueError`` if it is not a widening of it.

    Raises:
        ValueError: if a setting other than the widths differs, or a width shrinks or changes its irreps.
    """
    a, b = dataclasses.asdict(narrow), dataclasses.asdict(wide)
    other = sorted(k for k in a.keys() | b.keys() if k not in GROWABLE_WIDTHS and a.get(k) != b.get(k))
    if other:
        raise ValueError(f"only {list(GROWABLE_WIDTHS)} may grow; these differ too: {other}")
    old_irreps, new_irreps = o3.Irreps(narrow.hidden_irreps), o3.Irreps(wide.hidden_irreps)
    if [ir for _, ir in old_irreps] != [ir for _, ir in new_irreps] or any(
        m_new < m_old for (m_old, _), (m_new, _) in zip(old_irreps, new_irreps, strict=True)
    ):
        raise ValueError(
            f"hidden_irreps {wide.hidden_irreps!r} is not {narrow.hidden_irreps!r} with as many or more channels"
        )
    if wide.readout_hidden < narrow.readout_hidden:
        raise ValueError(f"readout_hidden shrinks from {narrow.readout_hidden} to {wide.readout_hidden}")
    return [k for k in GROWABLE_WIDTHS if a[k] != b[k]]


def _prefix_map(old: o3.Irreps, new: o3.Irreps) -> ChannelMap:
    """Old channel c of block i is new channel c of block i."""
    if [ir for _, ir in old] != [ir for _, ir in new]:
        raise ValueError(f"irreps {old} and {new} do not have the same blocks")
    return [torch.arange(mul) for mul, _ in old]


def _gate_input_map(old: InteractionBlock, new: InteractionBlock) -> ChannelMap:
    """Where each old channel of a gate's input sits in the new one.

    The input holds the scalars, then one gate per gated irrep (all merged into the 0e block), then the gated
    irreps. The gates of the new gated channels sit between the old ones', so the 0e block is not a prefix.
    """
    old_in, new_in = old.gate.irreps_in, new.gate.irreps_in
    mapping = _prefix_map(old_in, new_in)
    scalar_block = [k for k, (_, ir) in enumerate(old_in) if ir == o3.Irrep("0e")]
    if not scalar_block:
        return mapping
    (k,) = scalar_block
    pieces = [torch.arange(_even_scalars(old.gate.irreps_scalars))]
    start = _even_scalars(new.gate.irreps_scalars)
    for (m_old, _), (m_new, _) in zip(old.gate.irreps_gated, new.gate.irreps_gated, strict=True):
        pieces.append(start + torch.arange(m_old))
        start += m_new
    mapping[k] = torch.cat(pieces)
    return mapping


def _grow_linear(old: o3.Linear, new: o3.Linear, in_map: ChannelMap, out_map: ChannelMap) -> None:
    """Old weights into their new places, rescaled for the new fan-in; new inputs to old outputs: zero."""
    if len(old.instructions) != len(new.instructions):
        raise ValueError("linear layers with different paths")
    old_offset = new_offset = 0
    for a, b in zip(old.instructions, new.instructions, strict=True):
        if (a.i_in, a.i_out) != (b.i_in, b.i_out):
            raise ValueError("linear layers with different paths")
        old_block = old.weight[old_offset : old_offset + a.path_shape[0] * a.path_shape[1]].view(*a.path_shape)
        new_block = new.weight[new_offset : new_offset + b.path_shape[0] * b.path_shape[1]].view(*b.path_shape)
        rows, cols = in_map[a.i_in], out_map[a.i_out]
        new_block[:, cols] = 0.0  # into the old outputs, only the old inputs count
        new_block[rows[:, None], cols[None, :]] = old_block * (a.path_weight / b.path_weight)
        old_offset += a.path_shape[0] * a.path_shape[1]
        new_offset += b.path_shape[0] * b.path_shape[1]


def _even_scalars(irreps: o3.Irreps) -> int:
    return sum(mul for mul, ir in irreps if ir == o3.Irrep("0e"))


def _grow_fidelity_linear(old: FidelityLinear, new: FidelityLinear, in_map: ChannelMap, out_map: ChannelMap) -> None:
    _grow_linear(old.linear, new.linear, in_map, out_map)
    # the bias columns are the output's 0e channels, block after block
    columns, start = [], 0
    for k, (mul, ir) in enumerate(new.irreps_out):
        if ir == o3.Irrep("0e"):
            columns.append(start + out_map[k])
            start += mul
    if columns:
        new.fidelity_bias[:, torch.cat(columns)] = old.fidelity_bias


def _grow_radial(old: InteractionBlock, new: InteractionBlock) -> None:
    """The radial network's last layer gives each tensor-product path one weight per input channel.

    Its hidden layers keep their shapes and are copied with the rest.
    """
    last_old = list(old.radial_network.children())[-1].weight
    last_new = list(new.radial_network.children())[-1].weight
    old_start = new_start = 0
    for a, b in zip(old.tensor_product.instructions, new.tensor_product.instructions, strict=True):
        m_old = old.tensor_product.irreps_in1[a.i_in1].mul
        m_new = new.tensor_product.irreps_in1[b.i_in1].mul
        last_new[:, new_start : new_start + m_old] = last_old[:, old_start : old_start + m_old]
        old_start, new_start = old_start + m_old, new_start + m_new


def _grow_dense(old: FidelityDense, new: FidelityDense) -> None:
    """A readout layer: old weights rescaled for the new fan-in, new inputs to old outputs zero."""
    n_in, n_out = old.fidelity_weight.shape[1:]
    scale = math.sqrt(new.in_features / old.in_features)
    new.fidelity_weight[:, n_in:, :n_out] = 0.0
    new.fidelity_weight[:, :n_in, :n_out] = old.fidelity_weight * scale
    new.fidelity_bias[:, :n_out] = old.fidelity_bias


def _grow_readout(narrow: MultiFidelityPotential, wide: MultiFidelityPotential, features: ChannelMap) -> None:
    """The readout: final scalars -> hidden -> energy; new hidden units start with no say in the energy."""
    if isinstance(narrow.readout_hidden, FidelityDense):
        _grow_dense(narrow.readout_hidden, wide.readout_hidden)
        _grow_dense(narrow.readout_out, wide.readout_out)
        return
    hidden_old = o3.Irreps(f"{narrow.config.readout_hidden}x0e")
    hidden = _prefix_map(hidden_old, o3.Irreps(f"{wide.config.readout_hidden}x0e"))
    _grow_fidelity_linear(narrow.readout_hidden, wide.readout_hidden, features, hidden)
    _grow_fidelity_linear(narrow.readout_out, wide.readout_out, hidden, [torch.arange(1)])


@torch.no_grad()
def widen(narrow: MultiFidelityPotential, wide: MultiFidelityPotential) -> list[str]:
    """Copy ``narrow``'s weights into ``wide`` (built fresh, at least as wide), so that it computes the same function.

    ``wide``'s new channels keep their random initial weights, except those into old channels, set to zero.
    Returns the settings that grew (empty if the two are the same network: then a plain copy).

    Raises:
        ValueError: if ``wide`` is not a widening of ``narrow`` (``widening_differences``).
    """
    grown = widening_differences(narrow.config, wide.config)
    if not grown:
        wide.load_state_dict(narrow.state_dict())
        return grown
    scalars_old = narrow.embedding.weight.shape[1]
    # everything that did not change shape (the radial basis, the element references, ...) is copied as it is
    wide_state = wide.state_dict()
    for name, value in narrow.state_dict().items():
        if wide_state[name].shape == value.shape:
            wide_state[name].copy_(value)
    wide.embedding.weight[:, :scalars_old] = narrow.embedding.weight
    if narrow.angular is not None:  # its radial and species weights keep their shapes
        wide.angular.output.weight[:scalars_old] = narrow.angular.output.weight
    features_in = _prefix_map(narrow.interactions[0].irreps_in, wide.interactions[0].irreps_in)
    for old, new in zip(narrow.interactions, wide.interactions, strict=True):
        _grow_fidelity_linear(old.linear_1, new.linear_1, features_in, features_in)
        mid = _prefix_map(old.tensor_product.irreps_out, new.tensor_product.irreps_out)
        _grow_radial(old, new)
        gate_in = _gate_input_map(old, new)
        _grow_fidelity_linear(old.linear_2, new.linear_2, mid, gate_in)
        _grow_linear(old.self_connection, new.self_connection, features_in, gate_in)
        features_in = _prefix_map(old.irreps_out, new.irreps_out)
    _grow_readout(narrow, wide, features_in)
    if narrow.fidelity_delta is not None:
        wide.fidelity_delta[:, :scalars_old] = narrow.fidelity_delta
    return grown


__all__ = ["GROWABLE_WIDTHS", "widen", "widening_differences"]
