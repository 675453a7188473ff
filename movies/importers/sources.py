"""Find a MovieLens release in a folder or a .zip, tell its format, and open its files."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import MovieLensImportError

# Format name -> (files that identify it, every data file the importer reads, in fingerprint order).
FORMATS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "csv": (("movies.csv", "ratings.csv"), ("links.csv", "movies.csv", "ratings.csv", "tags.csv")),
    "dat": (("movies.dat", "ratings.dat"), ("movies.dat", "ratings.dat", "tags.dat", "users.dat")),
    "100k": (("u.item", "u.data"), ("u.data", "u.genre", "u.item", "u.user")),
}
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ReleaseSource:
    """One release: its folder name (``ml-25m``), format, and where its files are."""

    location: Path
    name: str
    format: str
    folder: str  # inside the zip (posix, "" for the root) or an absolute directory path
    members: frozenset[str]  # the release's file names present
    is_zip: bool

    def has(self, filename: str) -> bool:
        return filename in self.members

    @contextmanager
    def open(self, filename: str) -> Iterator[BinaryIO]:
        if self.is_zip:
            with zipfile.ZipFile(self.location) as archive:
                member = f"{self.folder}/{filename}" if self.folder else filename
                with archive.open(member) as handle:
                    yield handle  # type: ignore[misc]
        else:
            with open(Path(self.folder) / filename, "rb") as handle:
                yield handle

    def data_files(self) -> list[str]:
        return [name for name in FORMATS[self.format][1] if self.has(name)]

    def fingerprint(self) -> str:
        """sha256 over the data files this importer reads (names and contents, in a fixed order)."""
        digest = hashlib.sha256()
        for filename in self.data_files():
            digest.update(filename.encode() + b"\0")
            with self.open(filename) as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
            digest.update(b"\0")
        return digest.hexdigest()


def _detect_format(names: set[str]) -> str | None:
    for format_name, (markers, _) in FORMATS.items():
        if all(marker in names for marker in markers):
            return format_name
    return None


def _no_release(path: Path) -> MovieLensImportError:
    markers = " or ".join(" + ".join(markers) for markers, _ in FORMATS.values())
    return MovieLensImportError(f"no MovieLens release found in {path} (looked for {markers})")


def release_source_open(*, path: Path) -> ReleaseSource:
    """Locate the release at ``path``: a release folder, a folder holding one, or a .zip of one."""
    path = Path(path)
    if not path.exists():
        raise MovieLensImportError(f"{path} does not exist")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise MovieLensImportError(f"{path} is neither a folder nor a .zip file")
        return _zip_source(path)
    return _directory_source(path)


def _directory_source(path: Path) -> ReleaseSource:
    candidates = [path, *sorted(child for child in path.iterdir() if child.is_dir())]
    for folder in candidates:
        names = {child.name for child in folder.iterdir() if child.is_file()}
        format_name = _detect_format(names)
        if format_name:
            folder = folder.resolve()
            return ReleaseSource(
                location=path.resolve(),
                name=folder.name,
                format=format_name,
                folder=str(folder),
                members=frozenset(names),
                is_zip=False,
            )
    raise _no_release(path)


def _zip_source(path: Path) -> ReleaseSource:
    with zipfile.ZipFile(path) as archive:
        by_folder: dict[str, set[str]] = {}
        for info in archive.infolist():
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                continue
            member = PurePosixPath(info.filename)
            by_folder.setdefault(str(member.parent) if str(member.parent) != "." else "", set()).add(
                member.name
            )
    found = [(folder, names, _detect_format(names)) for folder, names in by_folder.items()]
    found = [item for item in found if item[2]]
    if not found:
        raise _no_release(path)
    if len(found) > 1:
        folders = ", ".join(sorted(folder or "/" for folder, _, _ in found))
        raise MovieLensImportError(
            f"{path} holds more than one release ({folders}); unpack the one to import"
        )
    folder, names, format_name = found[0]
    return ReleaseSource(
        location=path.resolve(),
        name=PurePosixPath(folder).name if folder else path.stem,
        format=format_name or "",
        folder=folder,
        members=frozenset(names),
        is_zip=True,
    )
