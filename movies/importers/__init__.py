"""Import GroupLens MovieLens releases (CSV, ``::`` and ml-100k formats) into the catalogue."""

from __future__ import annotations

from .errors import MovieLensImportError

__all__ = ["MovieLensImportError"]
