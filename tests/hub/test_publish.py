"""Model cards and publishing (the upload goes to the fake Hub on 127.0.0.1 through the real HfApi)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hub.helpers import METRICS, file_hashes, tiny_model, write_registry
from universal_mfp.hub import load_checkpoint, publish, render_card, save_checkpoint, validate_card
from universal_mfp.hub.card import default_template_path
from universal_mfp.models import load_model

FAKE = "hf_not_a_real_credential"  # the fake Hub accepts anything
CARDS = Path(__file__).resolve().parents[2] / "model_cards"


def test_template_renders_a_valid_card(checkpoint_dir: Path):
    metadata = load_checkpoint(checkpoint_dir).metadata
    card = render_card(metadata, name="tiny-mf", load_name="owner/tiny-mf")
    front = validate_card(card)
    assert default_template_path().is_file() and default_template_path().parent.name == "hub"  # package data
    assert front["license"] == "cc-by-4.0"
    assert front["library_name"] == "universal-mfp"
    results = front["model-index"][0]["results"]
    assert len(results) == 4  # 2 fidelities x 2 splits
    r2scan_test = next(r for r in results if r["dataset"]["split"] == "test" and r["task"]["name"].startswith("r2scan"))
    assert {m["type"]: m["value"] for m in r2scan_test["metrics"]} == METRICS["r2scan"]["test"]
    assert "| Fidelity | Split | Energy MAE (meV/atom) | Force MAE (meV/Å) | Stress MAE (GPa) |" in card
    assert "| r2scan | test | 19 | 50.3 | 0.44 |" in card
    assert "| pbe | val | 21.5 | 55 | – |" in card
    assert 'load_model("owner/tiny-mf")' in card
    assert "| fidelity_conditioning | all |" in card  # where the fidelity enters the network
    for section in ("## Training data", "## Intended use", "## Limitations", "## Citation"):
        assert section in card
    assert "mp-pbe-r2scan-pairs" in card


def test_card_describes_fidelities_and_carries_notes(checkpoint_dir: Path):
    metadata = load_checkpoint(checkpoint_dir).metadata
    plain = render_card(metadata, name="tiny-mf")
    assert "## Fidelities" not in plain
    training = {
        **metadata.get("training", {}),
        "fidelity_descriptions": {"pbe": "MP legacy GGA/GGA+U"},
        "card_notes": "## What it has seen\n\nOnly dimers.",
    }
    card = render_card({**metadata, "training": training}, name="tiny-mf")
    validate_card(card)
    assert "| `pbe` | MP legacy GGA/GGA+U |" in card
    assert "| `r2scan` | not described |" in card
    assert card.index("## Metrics") < card.index("## What it has seen\n\nOnly dimers.") < card.index("## Intended use")
    assert "card_notes" not in card and "fidelity_descriptions" not in card  # not repeated under run details


def test_every_card_in_model_cards_validates():
    cards = list(CARDS.glob("*.md"))
    assert cards
    for path in cards:
        validate_card(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.replace('license: "cc-by-4.0"\n', ""), "no license"),
        (lambda c: c.replace("---\n", "", 1), "no YAML front matter"),
        (lambda c: c.replace("model-index:", "model-index: [\n"), "not valid YAML"),
        (lambda c: c + "\n${leftover}\n", "unrendered template placeholders"),
        (lambda c: c.replace("value: 19.0", "value: n/a"), "no numeric value"),
    ],
)
def test_card_validation_catches_problems(checkpoint_dir: Path, edit, message: str):
    card = render_card(load_checkpoint(checkpoint_dir).metadata, name="tiny-mf")
    with pytest.raises(ValueError, match=message):
        validate_card(edit(card))


def test_card_without_metrics_is_invalid(tmp_path: Path):
    folder = save_checkpoint(tiny_model(), tmp_path / "nometrics")
    card = (folder / "README.md").read_text()
    assert "No metrics have been measured" in card
    with pytest.raises(ValueError, match="no model-index metrics"):
        validate_card(card)


def test_unknown_metric_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        save_checkpoint(tiny_model(), tmp_path / "bad", metrics={"pbe": {"test": {"accuracy": 1.0}}})


def test_publish_uploads_exact_files_and_round_trips(fake_hub, checkpoint_dir: Path, tmp_path: Path):
    result = publish(checkpoint_dir, "umfp-tests/tiny-mf-v0.1", private=True, token=FAKE)
    repo = fake_hub.repos["umfp-tests/tiny-mf-v0.1"]
    assert repo.private
    assert len(fake_hub.uploads) == 1
    upload = fake_hub.uploads[0]
    assert upload["commit"] == result.commit_sha == repo.refs["main"]
    assert sorted(upload["files"]) == ["README.md", "config.json", "model.safetensors"]
    for name in ("config.json", "model.safetensors"):
        assert upload["files"][name] == (checkpoint_dir / name).read_bytes()
    assert upload["files"]["README.md"].decode() == result.card
    validate_card(result.card)
    assert 'load_model("umfp-tests/tiny-mf-v0.1")' in result.card
    requested = {path for _, path in fake_hub.requests}
    assert "/api/repos/create" in requested
    assert "/api/models/umfp-tests/tiny-mf-v0.1/commit/main" in requested

    entry = result.registry_entry
    assert entry["repo_id"] == "umfp-tests/tiny-mf-v0.1" and entry["revision"] == result.commit_sha
    assert entry["fidelities"] == ["pbe", "r2scan"] and entry["default_fidelity"] is None
    assert entry["files"]["model.safetensors"] == file_hashes(checkpoint_dir)["model.safetensors"]
    # The printed entry is ready to paste: the loader downloads and verifies the published files.
    registry = write_registry(tmp_path / "registry.json", [entry])
    loaded = load_model("tiny-mf-v0.1", registry=registry)
    assert loaded.path.name == result.commit_sha


def test_publish_to_a_branch(fake_hub, checkpoint_dir: Path):
    result = publish(checkpoint_dir, "umfp-tests/tiny-branch", revision="v0.1", token=FAKE)
    assert fake_hub.repos["umfp-tests/tiny-branch"].refs["v0.1"] == result.commit_sha
    assert fake_hub.uploads[-1]["revision"] == "v0.1"


def test_publish_refuses_before_any_request(fake_hub, tmp_path: Path, monkeypatch):
    folder = save_checkpoint(tiny_model(), tmp_path / "nometrics")
    with pytest.raises(ValueError, match="model card is incomplete"):
        publish(folder, "umfp-tests/nometrics", token=FAKE)
    with pytest.raises(ValueError, match="owner/name"):
        publish(folder, "not a repo id")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="offline"):
        publish(folder, "umfp-tests/nometrics")
    assert fake_hub.requests == []
    assert json.loads((folder / "config.json").read_text())["metrics"] == {}
