"""A loopback Materials Project API for the pipeline tests, serving real documents.

Documents are built from ``../shared/data/raw``:

- GGA: the 21 Li/Fe/V MP ``materials`` documents (``mp-api/test_files__materials_Li_Fe_V.json.gz``):
  structure and GGA entry energy of each material; the entry's ``task_id`` is the material's real
  task, served from the 99 legacy task documents (``emmet/test_files__tasks_Li_Fe_V.json.gz``,
  final structure and energy).
- r2SCAN: the MatPES r2SCAN elemental references (``frames/matpes_element_refs_r2SCAN.extxyz``)
  of the materials that are also in the GGA set (mp-13 Fe, mp-51 Li, mp-146 V).

Thermo documents are built by emmet-core itself (``ThermoDoc.from_entries``) per chemical system
and thermo type, so they have the real schema (``entries`` keyed by run type, ``entry_id`` like
``mp-13-GGA`` / ``mp-13-R2SCAN``).
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

R2SCAN_IDS = ("mp-13", "mp-51", "mp-146")
API_KEY = "x" * 32


def _load(path: Path) -> Any:
    with gzip.open(path) as handle:
        return json.load(handle)


def build_documents(shared: Path) -> dict[str, list[dict[str, Any]]]:
    """Summary, thermo and task documents (JSON-ready dicts) from the real files."""
    from ase.io import read
    from emmet.core.mpid import AlphaID
    from emmet.core.thermo import ThermoDoc
    from emmet.core.types.enums import ThermoType
    from pymatgen.core import Structure
    from pymatgen.entries.computed_entries import ComputedStructureEntry
    from pymatgen.io.ase import AseAtomsAdaptor

    materials = _load(shared / "raw/mp-api/test_files__materials_Li_Fe_V.json.gz")
    legacy_tasks = {t["task_id"]: t for t in _load(shared / "raw/emmet/test_files__tasks_Li_Fe_V.json.gz")}
    gga_entries, r2scan_entries, summary, tasks = {}, {}, [], []
    for m in materials:
        mid = m["task_id"]
        structure = Structure.from_dict(m["structure"])
        gga = m["entries"]["gga"]
        run_type = "GGA+U" if gga["parameters"].get("is_hubbard") else "GGA"
        task_id = gga["parameters"].get("task_id")
        entry = ComputedStructureEntry(
            structure,
            gga["energy"],
            parameters={"run_type": run_type},
            entry_id=f"{mid}-{run_type}",
            data={"material_id": mid, "task_id": task_id, "run_type": run_type},
        )
        gga_entries.setdefault(m["chemsys"], []).append(entry)
        summary.append(
            {
                "material_id": mid,
                "formula_pretty": m["formula_pretty"],
                "chemsys": m["chemsys"],
                "nsites": m["nsites"],
                "elements": m["elements"],
                "deprecated": False,
            }
        )
        if task_id in legacy_tasks:
            t = legacy_tasks[task_id]
            tasks.append(
                {
                    "task_id": task_id,
                    "run_type": "GGA+U" if t["input"].get("is_hubbard") else "GGA",
                    "task_type": t.get("task_type") or "Structure Optimization",
                    "formula_pretty": t["formula_pretty"],
                    "structure": t["output"]["structure"],
                    "output": {
                        "energy": t["output"]["energy"],
                        "energy_per_atom": t["output"]["energy_per_atom"],
                        "structure": t["output"]["structure"],
                    },
                }
            )
    for atoms in read(shared / "frames/matpes_element_refs_r2SCAN.extxyz", ":"):
        mid = atoms.info["matpes_id"]
        if mid not in R2SCAN_IDS:
            continue
        entry = ComputedStructureEntry(
            AseAtomsAdaptor.get_structure(atoms),
            atoms.get_potential_energy(),
            parameters={"run_type": "r2SCAN"},
            entry_id=f"{mid}-R2SCAN",
            data={"material_id": mid, "task_id": mid, "run_type": "r2SCAN"},
        )
        r2scan_entries.setdefault(atoms.info["element"], []).append(entry)
    thermo = []
    for grouped, thermo_type in ((gga_entries, ThermoType.GGA_GGA_U), (r2scan_entries, ThermoType.R2SCAN)):
        for entries in grouped.values():
            thermo.extend(d.model_dump(mode="json") for d in ThermoDoc.from_entries(entries, thermo_type))
    # emmet 0.87 dumps ids as AlphaIDs (mp-aaaaaafg); the API spells them mp-136: map them back.
    known = {str(m["task_id"]) for m in materials} | set(legacy_tasks)
    alpha = {f"mp-{str(AlphaID(i.split('-')[-1], padlen=8)).split('-')[-1]}": i for i in known}
    thermo = [_respell(doc, alpha) for doc in thermo]
    return {"materials/summary": summary, "materials/thermo": thermo, "materials/tasks": tasks}


def _respell(value: Any, alpha: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _respell(v, alpha) for k, v in value.items()}
    if isinstance(value, list):
        return [_respell(v, alpha) for v in value]
    return alpha.get(value, value) if isinstance(value, str) else value


PRIMARY = {"materials/summary": "material_id", "materials/thermo": "material_id", "materials/tasks": "task_id"}


class MPTestServer:
    """A threaded HTTP server on 127.0.0.1 with a random free port.

    Attributes:
        log: ``(route, params)`` of every data request, in order.
        fail_after: answer data requests with ``fail_status`` once this many have succeeded (None: never).
        fail_next: answer the next ``fail_next`` data requests with ``fail_status``, then recover.
        malformed: answer data requests with truncated JSON.
    """

    def __init__(self, documents: dict[str, list[dict[str, Any]]]) -> None:
        self.documents = documents
        self.log: list[tuple[str, dict[str, str]]] = []
        self.succeeded = 0
        self.fail_after: int | None = None
        self.fail_next = 0
        self.fail_status = 500
        self.malformed = False
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def start(self) -> MPTestServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.succeeded = 0
            self.fail_after, self.fail_next, self.malformed = None, 0, False

    def query(self, route: str, params: dict[str, str]) -> dict[str, Any]:
        docs = self.documents[route]
        key = PRIMARY[route]
        for name, field in (("material_ids", "material_id"), ("task_ids", "task_id"), ("chemsys", "chemsys")):
            if name in params:
                wanted = set(params[name].split(","))
                docs = [d for d in docs if str(d.get(field)) in wanted]
        if "thermo_types" in params:
            wanted = {t.upper() for t in params["thermo_types"].split(",")}
            docs = [d for d in docs if str(d["thermo_type"]).upper() in wanted]
        docs = sorted(docs, key=lambda d: str(d[key]))
        total = len(docs)
        skip, limit = int(params.get("_skip", 0)), int(params.get("_limit", 1000))
        docs = docs[skip : skip + limit]
        if "_fields" in params:
            fields = params["_fields"].split(",")
            docs = [{f: d[f] for f in fields if f in d} for d in docs]
        return {"data": docs, "meta": {"total_doc": total}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                route = parsed.path.strip("/")
                params = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                if route == "heartbeat":
                    body = {"version": "0.87.3", "db_version": "2025_09_25", "access_controlled_batch_ids": []}
                    self._send(200, json.dumps(body).encode())
                    return
                if route not in PRIMARY:
                    self._send(404, b'{"detail": "not found"}')
                    return
                with server._lock:
                    server.log.append((route, params))
                    failing = server.fail_next > 0 or (
                        server.fail_after is not None and server.succeeded >= server.fail_after
                    )
                    if server.fail_next > 0:
                        server.fail_next -= 1
                    malformed = server.malformed
                    if not failing and not malformed:
                        server.succeeded += 1
                if failing:
                    self._send(server.fail_status, b'{"detail": "internal server error"}')
                elif malformed:
                    self._send(200, b'{"data": [{"material_id": "mp-13", "entries": {')
                else:
                    self._send(200, json.dumps(server.query(route, params)).encode())

        return Handler
