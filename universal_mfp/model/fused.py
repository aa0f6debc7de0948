"""e3nn's ``o3.Linear`` and ``nn.Gate`` computed in a few large operations instead of one small one per irrep.

On small structures a forward and backward pass costs about as much in per-operation overhead as in
arithmetic: e3nn's generated code for a linear layer slices, reshapes and multiplies every input irrep on its
own (268 operations for the layers of one 8-atom call), and its gate extracts, activates and multiplies
every block separately. The modules here compute exactly the same functions from the same parameters:

* ``FusedLinear``: for each kind of irrep (``0e``, ``1o``, ...) the input blocks of that kind are stacked along
  their channels, the weights of all paths between them and the output blocks of that kind are gathered, with
  e3nn's path normalisation, into one matrix by one precomputed index, and one matrix product gives every
  output block of that kind;
* ``FusedGate``: the scalars, gates and gated blocks are read by slices (or one gather) and each gate is
  broadcast onto the components it scales by one precomputed index.

Neither holds parameters or persistent buffers: the e3nn modules keep the weights and the state-dict layout,
and stay the reference the tests compare with.
"""

from __future__ import annotations

import copy

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

from universal_mfp.model.frozen import frozen_key


class FusedLinear(nn.Module):
    """The function of an ``o3.Linear`` (internal, shared weights, no biases), evaluated per kind of irrep.

    Args:
        linear: the layer whose irreps, instructions and path weights define the function; its ``weight`` is
            passed to ``forward``.
    """

    def __init__(self, linear: o3.Linear) -> None:
        super().__init__()
        if linear.bias_numel > 0 or not linear.internal_weights or not linear.shared_weights:
            raise ValueError("FusedLinear needs an o3.Linear with internal shared weights and no biases")
        irreps_in, irreps_out = linear.irreps_in, linear.irreps_out
        self.irreps_out_dim = irreps_out.dim
        in_slices, out_slices = irreps_in.slices(), irreps_out.slices()
        offsets, offset = [], 0
        for ins in linear.instructions:
            offsets.append(offset)
            offset += ins.path_shape[0] * ins.path_shape[1] if ins.i_in >= 0 else 0
        self.weight_numel = offset
        kinds = []
        for _, ir in irreps_out:
            if ir not in kinds:
                kinds.append(ir)
        groups = []
        for ir in kinds:
            outs = [k for k, (mul, ir_out) in enumerate(irreps_out) if ir_out == ir and mul > 0]
            ins = [k for k, (mul, ir_in) in enumerate(irreps_in) if ir_in == ir and mul > 0]
            ins = [k for k in ins if any(i.i_in == k and i.i_out in outs for i in linear.instructions)]
            if not outs:
                continue
            rows = {k: r for k, r in zip(ins, _starts([irreps_in[k].mul for k in ins]), strict=True)}
            cols = {k: c for k, c in zip(outs, _starts([irreps_out[k].mul for k in outs]), strict=True)}
            num_rows, num_cols = sum(irreps_in[k].mul for k in ins), sum(irreps_out[k].mul for k in outs)
            index = torch.zeros(num_rows, num_cols, dtype=torch.long)
            scale = torch.zeros(num_rows, num_cols, dtype=torch.float64)
            for ins_k, instruction in enumerate(linear.instructions):
                if instruction.i_out not in cols or instruction.i_in not in rows:
                    continue
                mul_in, mul_out = instruction.path_shape
                block = offsets[ins_k] + torch.arange(mul_in * mul_out).reshape(mul_in, mul_out)
                r, c = rows[instruction.i_in], cols[instruction.i_out]
                if bool(scale[r : r + mul_in, c : c + mul_out].any()):
                    raise ValueError("FusedLinear: two paths between the same irreps")
                index[r : r + mul_in, c : c + mul_out] = block
                scale[r : r + mul_in, c : c + mul_out] = instruction.path_weight
            name = len(groups)
            self.register_buffer(f"index_{name}", index.reshape(-1), persistent=False)
            self.register_buffer(f"scale_{name}", scale.reshape(-1), persistent=False)
            groups.append(
                (
                    ir.dim,
                    tuple((in_slices[k].start, irreps_in[k].mul) for k in ins),
                    tuple((k, irreps_out[k].mul) for k in outs),
                    num_rows,
                    num_cols,
                )
            )
        self._groups = tuple(groups)
        self._cache: dict[int, tuple[tuple, torch.Tensor]] = {}  # frozen weights: group -> (key, matrix)
        self._out_order = tuple(k for k, (mul, _) in enumerate(irreps_out) if mul > 0)
        self._out_starts = tuple(s.start for s in out_slices)

    def _matrix(self, group: int, weight: torch.Tensor, num_rows: int, num_cols: int) -> torch.Tensor:
        """The group's weights as one [rows, cols] matrix; kept while a frozen weight stays unchanged."""
        key = frozen_key([weight])
        if key is not None and self._cache.get(group, (None,))[0] == key:
            return self._cache[group][1]
        index, scale = getattr(self, f"index_{group}"), getattr(self, f"scale_{group}")
        matrix = (weight.index_select(0, index) * scale.to(weight.dtype)).view(num_rows, num_cols)
        if weight.requires_grad:
            self._cache.pop(group, None)
        else:
            self._cache[group] = (key, matrix)
        return matrix

    def forward(self, features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``linear(features)`` for features [N, irreps_in.dim] and the layer's flat ``weight``."""
        num_nodes = features.shape[0]
        pieces: dict[int, torch.Tensor] = {}
        for g, (dim, inputs, outputs, num_rows, num_cols) in enumerate(self._groups):
            if not inputs:  # no path reaches these outputs: e3nn gives zeros
                for k, mul in outputs:
                    pieces[k] = features.new_zeros(num_nodes, mul * dim)
                continue
            matrix = self._matrix(g, weight, num_rows, num_cols)
            blocks = [features.narrow(1, start, mul * dim).view(num_nodes, mul, dim) for start, mul in inputs]
            stacked = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)  # [N, rows, dim]
            if dim == 1:
                out = stacked.view(num_nodes, num_rows) @ matrix  # [N, cols]
                columns = out.view(num_nodes, num_cols, 1)
            else:
                out = stacked.transpose(1, 2).reshape(num_nodes * dim, num_rows) @ matrix  # [N dim, cols]
                columns = out.view(num_nodes, dim, num_cols).transpose(1, 2)  # [N, cols, dim]
            if len(outputs) == 1:
                pieces[outputs[0][0]] = columns.reshape(num_nodes, num_cols * dim)
                continue
            start = 0
            for k, mul in outputs:
                pieces[k] = columns[:, start : start + mul].reshape(num_nodes, mul * dim)
                start += mul
        if not pieces:
            return features.new_zeros(num_nodes, self.irreps_out_dim)
        ordered = [pieces[k] for k in self._out_order]
        return ordered[0] if len(ordered) == 1 else torch.cat(ordered, dim=1)


class FusedGate(nn.Module):
    """The function of an e3nn ``Gate``: activated scalars, then each gated block times its activated gate.

    ``forward`` takes the ``Gate`` itself for its two (normalised) activations, so the e3nn module stays the one
    place they are defined.
    """

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        dim_in = gate.irreps_in.dim
        probe = torch.arange(dim_in, dtype=torch.float64).unsqueeze(0)
        scalars, gates, gated = (t[0].round().long() for t in gate.sc(probe))
        self._scalars = _as_range(scalars)
        self._gates = _as_range(gates)
        self._gated = _as_range(gated)
        for name, part, span in (("scalars", scalars, self._scalars), ("gates", gates, self._gates)):
            if span is None:
                self.register_buffer(f"{name}_index", part, persistent=False)
        if self._gated is None:
            self.register_buffer("gated_index", gated, persistent=False)
        self.num_gates = gates.numel()
        if self.num_gates:
            # which gate scales each gated component, and by what constant (e3nn's normalisation: 1 for 0e x l)
            ones = torch.ones(1, gated.numel(), dtype=torch.float64)
            product = copy.deepcopy(gate.mul).double()  # probed in float64 on a copy; the model's stays untouched
            owner = torch.full((gated.numel(),), -1, dtype=torch.long)
            factor = torch.zeros(gated.numel(), dtype=torch.float64)
            for k in range(self.num_gates):
                hot = torch.zeros(1, self.num_gates, dtype=torch.float64)
                hot[0, k] = 1.0
                out = product(ones, hot)[0]
                touched = out != 0
                if bool((owner[touched] >= 0).any()):
                    raise ValueError("FusedGate: a gated component depends on two gates")
                owner[touched], factor[touched] = k, out[touched]
            if bool((owner < 0).any()):
                raise ValueError("FusedGate: a gated component has no gate")
            self.register_buffer("gate_of_component", owner, persistent=False)
            self.unit_factor = bool(torch.allclose(factor, torch.ones_like(factor), rtol=0, atol=1e-12))
            self.register_buffer("factor", factor, persistent=False)

    def _part(self, features: torch.Tensor, span: tuple[int, int] | None, name: str) -> torch.Tensor:
        if span is not None:
            return features.narrow(1, span[0], span[1])
        return features.index_select(1, getattr(self, f"{name}_index"))

    def forward(self, features: torch.Tensor, gate: Gate) -> torch.Tensor:
        """``gate(features)`` for features [N, gate.irreps_in.dim]."""
        scalars = gate.act_scalars(self._part(features, self._scalars, "scalars"))
        if not self.num_gates:
            return scalars
        gates = gate.act_gates(self._part(features, self._gates, "gates"))
        gated = self._part(features, self._gated, "gated") * gates.index_select(1, self.gate_of_component)
        if not self.unit_factor:
            gated = gated * self.factor.to(gated.dtype)
        return torch.cat([scalars, gated], dim=1)


def _starts(sizes: list[int]) -> list[int]:
    out, start = [], 0
    for size in sizes:
        out.append(start)
        start += size
    return out


def _as_range(indices: torch.Tensor) -> tuple[int, int] | None:
    """``(start, length)`` when the indices are consecutive, else ``None``."""
    if indices.numel() == 0:
        return (0, 0)
    start = int(indices[0])
    if torch.equal(indices, torch.arange(start, start + indices.numel())):
        return (start, int(indices.numel()))
    return None
