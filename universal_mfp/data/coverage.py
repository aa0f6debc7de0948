"""Which elements a model saw, per fidelity, in real DFT and in teacher labels; a warning outside that.

A checkpoint's training record holds ``coverage``: for each fidelity, the elements of the training frames
labelled by real DFT at that fidelity (``"dft"``) and the elements of teacher-labelled training frames
that inform it (``"teacher"``: frames at that fidelity labelled by a teacher model, or frames at a teacher
fidelity tied to it by a fidelity prior). An element in neither list was never seen at that fidelity:
its predictions there rest on what the network transfers from other fidelities and elements.

``CoverageWatch`` emits one ``CoverageWarning`` per element and fidelity the first time a structure with
such an element is predicted.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from universal_mfp.data.frame import Frame

COVERAGE_KEY = "coverage"
DFT = "dft"
TEACHER = "teacher"
TEACHER_SOURCE_PREFIX = "teacher:"


class CoverageWarning(UserWarning):
    """A prediction at a fidelity for an element the model never saw at that fidelity."""


def is_teacher_labelled(frame: Frame) -> bool:
    """Whether a frame's labels come from a teacher model rather than from DFT."""
    return "teacher" in frame.info or str(frame.info.get("source", "")).startswith(TEACHER_SOURCE_PREFIX)


def element_coverage(
    frames: Iterable[Frame], priors: Mapping[str, Sequence[str]] | None = None
) -> dict[str, dict[str, list[str]]]:
    """Per fidelity, the elements seen in DFT labels and in teacher labels (symbols, by atomic number).

    Args:
        frames: the training frames (only those with an energy, force or stress label count).
        priors: for each target fidelity, the source fidelities tied to it by a fidelity prior; a source's
            teacher elements count as teacher coverage of the target too.
    """
    dft: dict[str, set[int]] = {}
    teacher: dict[str, set[int]] = {}
    for frame in frames:
        if frame.fidelity is None or (frame.energy is None and frame.forces is None and frame.stress is None):
            continue
        table = teacher if is_teacher_labelled(frame) else dft
        table.setdefault(str(frame.fidelity), set()).update(int(z) for z in np.unique(frame.numbers))
    for target, sources in (priors or {}).items():
        for source in sources:
            teacher.setdefault(target, set()).update(teacher.get(source, set()))
    fidelities = sorted(set(dft) | set(teacher))
    tables = ((DFT, dft), (TEACHER, teacher))
    return {
        fid: {kind: [chemical_symbols[z] for z in sorted(table.get(fid, set()))] for kind, table in tables}
        for fid in fidelities
    }


def merge_coverage(*records: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, dict[str, list[str]]]:
    """The union of coverage records (``element_coverage`` layout), per fidelity and kind."""
    merged: dict[str, dict[str, set[int]]] = {}
    for record in records:
        for fidelity, kinds in record.items():
            for kind in (DFT, TEACHER):
                numbers = {atomic_numbers[s] for s in kinds.get(kind, [])}
                merged.setdefault(str(fidelity), {DFT: set(), TEACHER: set()})[kind].update(numbers)
    return {
        fid: {kind: [chemical_symbols[z] for z in sorted(numbers)] for kind, numbers in kinds.items()}
        for fid, kinds in sorted(merged.items())
    }


@dataclass(frozen=True)
class ElementCoverage:
    """The elements seen per fidelity: ``dft`` and ``teacher`` map a fidelity to atomic numbers."""

    dft: Mapping[str, frozenset[int]]
    teacher: Mapping[str, frozenset[int]]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ElementCoverage:
        """Read the ``coverage`` entry of a training record; a malformed one raises ``ValueError``."""
        if not isinstance(record, Mapping):
            kind = type(record).__name__
            raise ValueError(f"coverage record must map each fidelity to element lists, got {kind}")
        dft: dict[str, frozenset[int]] = {}
        teacher: dict[str, frozenset[int]] = {}
        for fidelity, kinds in record.items():
            if not isinstance(kinds, Mapping) or set(kinds) - {DFT, TEACHER}:
                raise ValueError(f"coverage of fidelity {fidelity!r} must map 'dft'/'teacher' to element symbols")
            for kind, table in ((DFT, dft), (TEACHER, teacher)):
                symbols = kinds.get(kind, [])
                unknown = [s for s in symbols if s not in atomic_numbers]
                if unknown:
                    raise ValueError(f"coverage of fidelity {fidelity!r} ({kind}) names unknown elements {unknown}")
                table[str(fidelity)] = frozenset(atomic_numbers[s] for s in symbols)
        return cls(dft=dft, teacher=teacher)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ElementCoverage | None:
        """The coverage recorded in a checkpoint's ``config.json`` content, or ``None`` if it has none."""
        record = (metadata.get("training") or {}).get(COVERAGE_KEY)
        return None if record is None else cls.from_record(record)

    def seen(self, fidelity: str) -> frozenset[int]:
        """Atomic numbers seen at ``fidelity`` in DFT or teacher labels."""
        return self.dft.get(fidelity, frozenset()) | self.teacher.get(fidelity, frozenset())

    def unseen(self, fidelity: str, numbers: Iterable[int]) -> list[int]:
        """The atomic numbers among ``numbers`` never seen at ``fidelity``, sorted."""
        return sorted({int(z) for z in numbers} - self.seen(fidelity))


@dataclass
class CoverageWatch:
    """Warns once per element and fidelity when a prediction leaves the model's training coverage."""

    coverage: ElementCoverage
    warned: set[tuple[str, int]] = field(default_factory=set)

    def check(self, fidelity: str, numbers: Iterable[int]) -> None:
        """Emit a ``CoverageWarning`` for each element of ``numbers`` unseen at ``fidelity`` and not yet warned."""
        for z in self.coverage.unseen(fidelity, numbers):
            if (fidelity, z) in self.warned:
                continue
            self.warned.add((fidelity, z))
            warnings.warn(
                f"{chemical_symbols[z]} was never seen at fidelity {fidelity!r} in training (neither DFT nor "
                f"teacher labels): its {fidelity} predictions rest on transfer from other fidelities and elements "
                "and are less reliable (this warning is given once per element and fidelity)",
                CoverageWarning,
                stacklevel=3,
            )
