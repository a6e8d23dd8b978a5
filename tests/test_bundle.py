"""The bundle JSON: round trip, its checksum, and clear errors for missing, corrupt, edited or
newer bundles."""

from __future__ import annotations

import json

import pytest

from forecaster.bundle import (
    SCHEMA_VERSION,
    Bundle,
    DataSpec,
    ExportSpec,
    ModelSpec,
    TrainingSpec,
    content_checksum,
)
from forecaster.errors import BundleError
from forecaster.scaling import MinMaxParams


def make_bundle() -> Bundle:
    return Bundle(
        data=DataSpec(
            source="s.csv",
            source_sha256="ab" * 32,
            time_col="time",
            features=("temp", "load"),
            targets=("temp",),
            step_seconds=3600.0,
            freq="1h",
            max_gap=3,
            dedupe="error",
            bad_rows="error",
            split=(0.7, 0.15, 0.15),
            train_start="2024-01-01 00:00:00",
            train_end="2024-02-01 00:00:00",
            season=24,
            mase_scale=(0.5,),
        ),
        scaler=MinMaxParams(("temp", "load"), (0.0, 1.0), (10.0, 5.0), (0.1, 0.25), (0.0, -0.25)),
        model=ModelSpec("gru", 8, 1, 0.0, False, 1e-3, 1.0, 24, 6, 321),
        training=TrainingSpec(2, 32, 5, 7, True, 2, 2, 0.01, 1.5, 0.7, False),
        baselines={"holt_winters": [{"alpha": 0.5}]},
        metrics={"test": {"mase": 0.8}},
        export=ExportSpec("model.tflite", "cd" * 32, 1234, "int8", None, 0.1, -3, 0.2, 5),
        versions={"keras": "3"},
    )


def test_round_trip(tmp_path):
    bundle = make_bundle()
    bundle.save(tmp_path)
    loaded = Bundle.load(tmp_path)
    assert loaded == bundle
    assert isinstance(loaded.data.features, tuple)
    assert isinstance(loaded.scaler, MinMaxParams)


def test_json_is_plain_and_versioned(tmp_path):
    path = make_bundle().save(tmp_path)
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["scaler"]["scale"] == [0.1, 0.25]
    assert raw["export"]["sha256"] == "cd" * 32


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleError, match=r"is not a forecaster run or bundle: bundle.json"):
        Bundle.load(tmp_path)


def test_corrupt_bundle(tmp_path):
    (tmp_path / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"bundle.json is corrupt \(.*\); retrain or re-export"):
        Bundle.load(tmp_path)


def test_incomplete_bundle(tmp_path):
    raw = json.loads(make_bundle().to_json())
    del raw["data"]["targets"]
    (tmp_path / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="corrupt or incomplete"):
        Bundle.load(tmp_path)


def test_newer_schema_is_refused(tmp_path):
    raw = json.loads(make_bundle().to_json())
    raw["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match=r"newer than this forecaster .* upgrade forecaster"):
        Bundle.load(tmp_path)


def test_the_checksum_covers_every_value(tmp_path):
    path = make_bundle().save(tmp_path)
    raw = json.loads(path.read_text())
    assert list(raw)[-1] == "checksum" and raw["checksum"].startswith("sha256:")
    assert raw["checksum"] == content_checksum(raw)
    raw["scaler"]["min"][1] = -0.3
    path.write_text(json.dumps(raw, indent=2))
    with pytest.raises(BundleError, match=r"was changed after forecaster wrote it .* re-export"):
        Bundle.load(tmp_path)


def test_the_checksum_ignores_the_layout_of_the_file(tmp_path):
    path = make_bundle().save(tmp_path)
    path.write_text(json.dumps(json.loads(path.read_text()), sort_keys=True))  # one line
    assert Bundle.load(tmp_path) == make_bundle()


def test_an_exported_bundle_needs_its_checksum_and_a_run_does_not(tmp_path):
    raw = json.loads(make_bundle().to_json())
    del raw["checksum"]
    (tmp_path / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="has no checksum, so its content cannot be trusted"):
        Bundle.load(tmp_path)
    raw["export"] = None  # a run directory written before bundles had a checksum
    (tmp_path / "bundle.json").write_text(json.dumps(raw))
    assert Bundle.load(tmp_path).export is None


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(BundleError, match=r"absent does not exist; check the path"):
        Bundle.load(tmp_path / "absent")
