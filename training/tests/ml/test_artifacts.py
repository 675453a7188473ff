"""Atomic, checksummed artifacts and the scorers saved in them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.ml.artifacts import ArtifactError, load_artifact, load_scorer, save_scorer, write_artifact
from training.ml.baselines import Popularity


def sample_arrays():
    return {
        "item_embeddings": np.arange(12, dtype=np.float32).reshape(4, 3),
        "item_bias": np.array([0.5, -1.0, 2.0, 0.0], np.float32),
        "recency_half_life": np.asarray(32.0, np.float32),
    }


def test_an_artifact_round_trips_arrays_and_metadata(tmp_path):
    path = write_artifact(tmp_path, "model-1", sample_arrays(), {"seed": 3, "config": {"dim": 3}})
    arrays, meta = load_artifact(path)
    assert meta == {"seed": 3, "config": {"dim": 3}}
    for key, expected in sample_arrays().items():
        assert np.array_equal(arrays[key], expected) and arrays[key].dtype == expected.dtype
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["arrays"]["item_embeddings"]["shape"] == [4, 3]
    assert len(manifest["arrays"]["item_bias"]["sha256"]) == 64


def test_writing_leaves_no_temporary_folder_behind(tmp_path):
    write_artifact(tmp_path, "model-1", sample_arrays(), {})
    assert [p.name for p in tmp_path.iterdir()] == ["model-1"]


def test_an_existing_artifact_is_never_overwritten(tmp_path):
    write_artifact(tmp_path, "model-1", sample_arrays(), {})
    with pytest.raises(ArtifactError, match="already exists"):
        write_artifact(tmp_path, "model-1", sample_arrays(), {})


def test_loading_rejects_a_file_with_one_flipped_byte(tmp_path):
    path = write_artifact(tmp_path, "model-1", sample_arrays(), {})
    file = path / "item_embeddings.npy"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(path)


def test_loading_rejects_a_missing_file(tmp_path):
    path = write_artifact(tmp_path, "model-1", sample_arrays(), {})
    (path / "item_bias.npy").unlink()
    with pytest.raises(ArtifactError, match=r"missing item_bias\.npy"):
        load_artifact(path)


def test_loading_rejects_a_shape_that_disagrees_with_the_manifest(tmp_path):
    path = write_artifact(tmp_path, "model-1", sample_arrays(), {})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["arrays"]["item_embeddings"]["shape"] = [3, 4]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="manifest says"):
        load_artifact(path)


def test_loading_rejects_an_unknown_format_version_or_a_missing_manifest(tmp_path):
    path = write_artifact(tmp_path, "model-1", sample_arrays(), {})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format version"):
        load_artifact(path)
    (path / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest"):
        load_artifact(path)


def test_arrays_are_memory_mapped_read_only(tmp_path):
    arrays, _ = load_artifact(write_artifact(tmp_path, "model-1", sample_arrays(), {}))
    with pytest.raises(ValueError):
        arrays["item_bias"][0] = 1.0


def test_a_saved_scorer_loads_back_with_its_movie_ids(tmp_path, taste_split):
    model = Popularity.fit(taste_split.train)
    path = save_scorer(tmp_path, "popularity-1", model, taste_split.train.item_ids, {"seed": 0})
    loaded, item_ids, meta = load_scorer(path)
    assert isinstance(loaded, Popularity) and meta["kind"] == "popularity"
    assert np.array_equal(item_ids, taste_split.train.item_ids)
    history = taste_split.train.history(0)
    assert np.array_equal(loaded.top_k(history, 5)[0], model.top_k(history, 5)[0])
