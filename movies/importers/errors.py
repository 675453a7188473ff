"""The one exception the MovieLens importer raises."""

from __future__ import annotations

from movies.exceptions import MoviesError


class MovieLensImportError(MoviesError):
    """A release that cannot be imported; names the file and 1-based line when one is to blame."""

    def __init__(self, problem: str, *, file: str | None = None, line: int | None = None) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        if file and line:
            message = f"{file}, line {line}: {problem}"
        elif file:
            message = f"{file}: {problem}"
        else:
            message = problem
        super().__init__(message)
