"""The real ``mp_api`` client against a loopback server: pull -> pair -> build, resume, errors."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from ase.io import read
from universal_mfp_pipelines._io import read_jsonl
from universal_mfp_pipelines.cli import main
from universal_mfp_pipelines.mp_client import MissingAPIKeyError, MPClient, MPPullError
from universal_mfp_pipelines.pull import PullQuery, pull

from tests.data_pipelines.mp_server import API_KEY
from universal_mfp.data.readers import read_frames
from universal_mfp.files import sha256_file

QUERY = PullQuery(chemsys=("Li", "Fe", "V"))


def _client(tmp_path: Path, server, **kwargs) -> MPClient:
    kwargs.setdefault("backoff", 0.001)
    return MPClient(tmp_path / "cache", api_key=API_KEY, endpoint=server.url, **kwargs)


def _cache_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_full_pull_pair_build(tmp_path, mp_server, shared_dir):
    argv = ["--no-progress", "all", str(tmp_path / "work"), "--chemsys", "Li", "Fe", "V", "--chunk-size", "5"]
    argv += ["--endpoint", mp_server.url, "--api-key", API_KEY, "--backoff", "0.001"]
    assert main(argv) == 0

    # every thermo request named its thermo type explicitly, one at a time, never the mixed default
    thermo_types = Counter(p.get("thermo_types") for route, p in mp_server.log if route == "materials/thermo")
    assert thermo_types == {"GGA_GGA+U": 5, "r2SCAN": 5}
    assert all("_fields" in p for _, p in mp_server.log)

    records = list(read_jsonl(tmp_path / "work/pull/records.jsonl"))
    by_kind = Counter((r["route"], r["run_type"]) for r in records)
    assert by_kind == {
        ("materials/thermo", "GGA"): 21,
        ("materials/thermo", "r2SCAN"): 3,
        ("materials/tasks", "GGA"): 19,
    }
    assert len({r["record_id"] for r in records}) == len(records)

    # energies are the real ones: the MP GGA entry of mp-136 and the MatPES r2SCAN energy of mp-13
    with gzip.open(shared_dir / "raw/mp-api/test_files__materials_Li_Fe_V.json.gz") as handle:
        materials = json.load(handle)
    gga_136 = next(m for m in materials if m["task_id"] == "mp-136")["entries"]["gga"]["energy"]
    r2scan_13 = next(
        a for a in read(shared_dir / "frames/matpes_element_refs_r2SCAN.extxyz", ":") if a.info["matpes_id"] == "mp-13"
    ).get_potential_energy()
    by_id = {r["record_id"]: r for r in records}
    assert by_id["thermo:mp-136:GGA"]["energy"] == pytest.approx(gga_136, abs=1e-8)
    assert by_id["thermo:mp-13:r2SCAN"]["energy"] == pytest.approx(r2scan_13, abs=1e-8)
    assert by_id["thermo:mp-13:r2SCAN"]["fidelity"] == "r2scan"

    pairs = {row["material_id"]: row for row in pq.read_table(tmp_path / "work/pull/pairs.parquet").to_pylist()}
    assert len(pairs) == 21
    assert pairs["mp-51"]["status"] == "matched" and pairs["mp-146"]["status"] == "matched"
    # bcc Fe at r2SCAN also matches mp-1271068, a duplicate of bcc Fe in the GGA set
    assert pairs["mp-13"]["status"] == "ambiguous"
    assert pairs["mp-13"]["other_matches"] == ["mp-1271068"]
    assert Counter(row["reason"] for row in pairs.values())["no_r2scan_record"] == 18

    dataset = tmp_path / "work/dataset"
    manifest = json.loads((dataset / "manifest.json").read_text())
    # 19 thermo entries duplicate their pulled task: 19 task frames + 2 GGA entries + 3 r2SCAN entries
    assert manifest["rows"]["total"] == 24
    assert manifest["rows"]["by_fidelity"] == {"pbe": 21, "r2scan": 3}
    for shard in manifest["shards"]:
        assert sha256_file(dataset / shard["file"]) == shard["sha256"]
    frames = read_frames(dataset)
    assert len(frames) == 24
    splits = {}
    for frame in frames:
        assert splits.setdefault(frame.info["material_id"], frame.info["split"]) == frame.info["split"]
    assert manifest["statistics"]["r2scan"]["frames"] == 3

    # running the build again without --overwrite is refused, with it succeeds
    build = ["--no-progress", "build", str(tmp_path / "work/pull"), str(dataset)]
    assert main(build) == 1
    assert main([*build, "--overwrite"]) == 0


def test_interrupted_pull_resumes_without_duplicates(tmp_path, mp_server):
    clean = pull(_client(tmp_path / "clean", mp_server), QUERY, tmp_path / "clean/out", chunk_size=5, progress=False)
    clean_requests = len(mp_server.log)
    # resolve + (summary, 2 thermo) per chunk of 5 materials + 22 task ids (19 GGA, 3 r2SCAN) in chunks of 5
    assert clean_requests == 1 + 5 * 3 + 5
    mp_server.reset()

    mp_server.fail_after = 10  # the server goes down half-way through the pull
    with pytest.raises(MPPullError, match="after 2 attempts"):
        pull(_client(tmp_path, mp_server, max_attempts=2), QUERY, tmp_path / "out", chunk_size=5, progress=False)
    first = [(route, params) for route, params in mp_server.log[:10]]
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 10
    assert not (tmp_path / "out/records.jsonl").exists()

    mp_server.reset()
    result = pull(_client(tmp_path, mp_server), QUERY, tmp_path / "out", chunk_size=5, progress=False)
    # only the missing chunks were fetched: nothing finished before is downloaded again
    assert len(mp_server.log) == clean_requests - 10
    assert not any(entry in first for entry in mp_server.log)

    resumed = list(read_jsonl(result.records_path))
    assert len({r["record_id"] for r in resumed}) == len(resumed) == clean.num_records == 43
    assert resumed == list(read_jsonl(clean.records_path))


@pytest.mark.parametrize("status", [500, 503])
def test_http_errors_are_retried_then_reported(tmp_path, mp_server, status):
    delays = []
    client = _client(tmp_path, mp_server, max_attempts=3, backoff=0.01, sleep=delays.append)
    mp_server.fail_status = status
    mp_server.fail_next = 2  # transient: two failures, then the request succeeds
    docs = client.search("materials/summary", "probe", {"material_ids": ["mp-13"]}, ["material_id"])
    assert [d["material_id"] for d in docs] == ["mp-13"]
    assert delays == [0.01, 0.02]
    assert len(mp_server.log) == 3

    mp_server.fail_after = 0  # permanent failure
    with pytest.raises(MPPullError, match=f"status code {status}") as info:
        client.search(
            "materials/thermo",
            "GGA-1",
            {"material_ids": ["mp-13"], "thermo_types": ["GGA_GGA+U"]},
            ["material_id", "entries"],
        )
    assert "after 3 attempts" in str(info.value) and "materials/thermo chunk GGA-1" in str(info.value)
    assert delays == [0.01, 0.02, 0.01, 0.02]
    assert client.cache.get("materials/thermo", "GGA-1") is None
    assert client.cache.get("materials/summary", "probe") == docs  # the finished chunk is intact


def test_malformed_json_never_reaches_the_cache(tmp_path, mp_server):
    client = _client(tmp_path, mp_server, max_attempts=2)
    pull(client, PullQuery(material_ids=("mp-13",)), tmp_path / "out", chunk_size=5, progress=False)
    before = _cache_files(tmp_path / "cache")
    assert len(before) == 4  # summary, two thermo chunks, one task chunk

    mp_server.malformed = True
    with pytest.raises(MPPullError, match="malformed response after 2 attempts"):
        pull(client, PullQuery(material_ids=("mp-51",)), tmp_path / "out2", chunk_size=5, progress=False)
    assert _cache_files(tmp_path / "cache") == before
    for path in (tmp_path / "cache").rglob("*.json"):
        assert isinstance(json.loads(path.read_text())["data"], list)


def test_malformed_document_is_not_cached(tmp_path, mp_server):
    thermo = mp_server.documents["materials/thermo"]
    doc = next(d for d in thermo if d["material_id"] == "mp-51" and d["thermo_type"] == "GGA_GGA+U")
    broken = {**doc, "entries": {"GGA": {**doc["entries"]["GGA"], "structure": {"lattice": "nonsense"}}}}
    mp_server.documents = {**mp_server.documents, "materials/thermo": [broken if d is doc else d for d in thermo]}
    client = _client(tmp_path, mp_server, max_attempts=2)
    with pytest.raises(MPPullError, match="unreadable entry"):
        pull(client, PullQuery(material_ids=("mp-51",)), tmp_path / "out", chunk_size=5, progress=False)
    assert not list((tmp_path / "cache").glob("materials__thermo/GGA_GGApU-*.json"))


def test_api_key_is_required(tmp_path, mp_server):
    with pytest.raises(MissingAPIKeyError, match="MP_API_KEY"):
        MPClient(tmp_path, endpoint=mp_server.url)
    with pytest.raises(MissingAPIKeyError, match="32 characters"):
        MPClient(tmp_path, api_key="short", endpoint=mp_server.url)
    argv = ["--no-progress", "pull", str(tmp_path / "p"), "--material-ids", "mp-13", "--endpoint", mp_server.url]
    assert main(argv) == 1
    assert mp_server.log == []


def test_endpoint_from_environment(tmp_path, mp_server, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", API_KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", mp_server.url)
    client = MPClient(tmp_path / "cache")
    docs = client.search("materials/summary", "env", {"material_ids": ["mp-146"]}, ["material_id", "formula_pretty"])
    assert docs == [{"material_id": "mp-146", "formula_pretty": "V"}]
    assert np.isclose(len(mp_server.log), 1)
