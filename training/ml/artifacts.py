"""Atomic, checksummed model artifacts: a folder of ``.npy`` arrays plus ``manifest.json``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from training.ml.baselines import EASE, Popularity
from training.ml.scoring import NumpyRecommender, Scorer

FORMAT_VERSION = 1  # bump when the folder layout or manifest keys change incompatibly
MANIFEST_NAME = "manifest.json"


class ArtifactError(Exception):
    """An artifact is missing, incomplete, corrupt or of an unknown format."""


def scorer_from_arrays(kind: str, arrays: dict[str, np.ndarray]) -> Scorer:
    """Rebuild any exported policy from its ``kind`` (as stored in the artifact manifest)."""
    classes: dict[str, type[Scorer]] = {cls.kind: cls for cls in (NumpyRecommender, Popularity, EASE)}
    if kind not in classes:
        raise ValueError(f"unknown scorer kind {kind!r}; expected one of {sorted(classes)}")
    return classes[kind].from_arrays(arrays)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_artifact(root: Path, name: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    """Write ``root/name/`` atomically and return its path.

    Files go to a temporary folder inside ``root``, are fsynced, then the folder is renamed into
    place, so readers see either no artifact or a complete one. ``manifest`` (JSON-safe) is
    stored under ``"meta"``; the format version and each file's sha256, shape and dtype are added.
    An existing ``root/name`` is an error: artifacts are immutable, write a new name instead.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists():
        raise ArtifactError(f"artifact {final} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        files = {}
        for key, array in arrays.items():
            if not all(part.isidentifier() for part in key.split("/")):
                raise ArtifactError(f"array name {key!r} is not identifiers joined by '/'")
            array = np.asarray(array)
            if array.dtype == object:
                raise ArtifactError(f"array {key!r} has dtype object, which needs pickle")
            path = staging / f"{key.replace('/', '--')}.npy"  # '-' never occurs in an identifier
            np.save(path, array, allow_pickle=False)
            _fsync(path)
            files[key] = {
                "file": path.name,
                "sha256": _sha256(path),
                "shape": list(array.shape),
                "dtype": array.dtype.str,
            }
        document = {"format_version": FORMAT_VERSION, "arrays": files, "meta": manifest}
        manifest_path = staging / MANIFEST_NAME
        manifest_path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
        _fsync(manifest_path)
        _fsync(staging)
        os.rename(staging, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def load_artifact(
    path: Path, mmap: bool = True, verify: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an artifact back as ``(arrays, meta)``, checking it matches its manifest.

    Arrays are memory-mapped read-only by default, so several worker processes share the pages
    of one model. ``verify`` hashes every file (one sequential read); any missing file, checksum,
    shape or dtype mismatch, or unknown format version raises ``ArtifactError``.
    """
    path = Path(path)
    manifest_path = path / MANIFEST_NAME
    try:
        document = json.loads(manifest_path.read_text())
    except FileNotFoundError as error:
        raise ArtifactError(f"{path} has no {MANIFEST_NAME}") from error
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{manifest_path} is not valid JSON: {error}") from error
    if document.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format version {document.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    arrays = {}
    for key, entry in document["arrays"].items():
        file = path / entry["file"]
        if not file.is_file():
            raise ArtifactError(f"{path} is missing {entry['file']}")
        if verify and _sha256(file) != entry["sha256"]:
            raise ArtifactError(f"{file} does not match its checksum (corrupt or modified)")
        try:
            array = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as error:
            raise ArtifactError(f"{file} is not a readable .npy file: {error}") from error
        if list(array.shape) != entry["shape"] or array.dtype.str != entry["dtype"]:
            raise ArtifactError(
                f"{file} is {array.dtype.str}{list(array.shape)}, "
                f"manifest says {entry['dtype']}{entry['shape']}"
            )
        arrays[key] = array
    return arrays, document["meta"]


def save_scorer(
    root: Path, name: str, scorer: Scorer, item_ids: np.ndarray, meta: dict[str, Any] | None = None
) -> Path:
    """Write any policy with the movie ids of its catalogue indices (``item_ids``)."""
    if len(item_ids) != scorer.n_items:
        raise ArtifactError(f"{len(item_ids)} item ids for a scorer of {scorer.n_items} items")
    arrays = {**scorer.export_arrays(), "item_ids": np.asarray(item_ids, np.int64)}
    return write_artifact(root, name, arrays, {**(meta or {}), "kind": scorer.kind})


def load_scorer(path: Path, mmap: bool = True) -> tuple[Scorer, np.ndarray, dict[str, Any]]:
    """Load a policy written by ``save_scorer``: ``(scorer, item_ids, meta)``."""
    arrays, meta = load_artifact(path, mmap=mmap)
    if "kind" not in meta or "item_ids" not in arrays:
        raise ArtifactError(f"{path} is not a scorer artifact (no kind or item_ids)")
    item_ids = arrays.pop("item_ids")
    try:
        scorer = scorer_from_arrays(meta["kind"], arrays)
    except (KeyError, ValueError) as error:
        raise ArtifactError(f"{path} cannot be rebuilt as a {meta['kind']!r} scorer: {error}") from error
    return scorer, item_ids, meta
