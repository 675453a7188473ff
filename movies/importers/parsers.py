"""Read and validate a whole MovieLens release into pandas frames before anything is written.

Pure pandas and numpy, no Django. The happy path is vectorised (pandas' C parser with explicit
dtypes, numpy checks); only when something is wrong does a slow line-by-line pass run, to name
the file and the 1-based line (a CSV header is line 1) of the first bad row.
"""

from __future__ import annotations

import csv
import io
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import MovieLensImportError
from .sources import ReleaseSource

RATING_MIN = 0.5
RATING_MAX = 5.0
MAX_ID = 2**31 - 1
# Timestamps must become datetimes that every backend stores: 1970-01-01 up to 9999-12-31.
MAX_TIMESTAMP = 253_402_300_799
TAG_MAX_LENGTH = 255  # Tag.tag; longer tags are cut rather than rejecting a whole release
TITLE_MAX_LENGTH = 512
GENRE_MAX_LENGTH = 64
# Python's csv module refuses fields over 131,072 characters; the line-by-line pass must read any
# field pandas read, so it raises that limit while it runs (a too-long value is then named).
CSV_FIELD_LIMIT = 2**31 - 1
SHOWN_VALUE_CHARS = 40  # longer values are cut in messages
NO_GENRES = {"(no genres listed)", "unknown"}  # csv releases and ml-100k's "unknown" flag

# ml-1m README, "Occupation is chosen from the following choices".
ML_1M_OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)

# "Heat (1995)", "Fawlty Towers (1975-1979)", "Some Series (2007- )": the year is the first one.
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?\s*)?\)\s*$")
_RELEASE_DATE_YEAR = re.compile(r"(\d{4})\s*$")

RATING_DTYPES = {"user_id": "int32", "movie_id": "int32", "rating": "float32", "timestamp": "int64"}
TAG_DTYPES = {"user_id": "int32", "movie_id": "int32", "tag": "str", "timestamp": "int64"}


@dataclass
class Release:
    """A validated release. Ratings are sorted by (user_id, movie_id) and hold no duplicates."""

    source: ReleaseSource
    movies: pd.DataFrame  # id, title, year (Int64), imdb_id, tmdb_id (Int64)
    movie_genres: pd.DataFrame  # movie_id, genre
    users: pd.DataFrame  # movielens_id, gender, age (Int64), occupation, zip_code
    ratings: pd.DataFrame  # RATING_DTYPES
    tags: pd.DataFrame  # TAG_DTYPES
    skipped_empty_tags: int = 0

    @property
    def genres(self) -> list[str]:
        return sorted(self.movie_genres["genre"].unique().tolist())


# --- Reading one file --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """How one data file is laid out, and what each field must parse as."""

    filename: str
    separator: str  # "," (quoted CSV), "::", "\t" or "|"
    encoding: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]  # per column: "id", "integer", "number" or "text"
    header: tuple[str, ...] | None = None  # the exact CSV header, when the file has one
    labels: dict[str, str] = field(default_factory=dict)  # column -> name used in messages

    @property
    def first_record_line(self) -> int:
        return 2 if self.header else 1

    def label(self, column: str) -> str:
        return self.labels.get(column, column.replace("_", " "))


@dataclass
class _Table:
    """A file's rows. The frame's index is the 0-based record number, kept through filtering."""

    source: ReleaseSource
    layout: _Layout
    frame: pd.DataFrame
    lines: np.ndarray | None = None  # physical line of each record, when known while reading

    def line_of(self, record: int) -> int:
        if self.lines is not None:
            return int(self.lines[record])
        if self.layout.separator == "," and "text" in self.layout.kinds:
            return _csv_record_line(self.source, self.layout, record)
        return self.layout.first_record_line + record

    def fail(self, record: int, problem: str) -> MovieLensImportError:
        return MovieLensImportError(problem, file=self.layout.filename, line=self.line_of(record))

    def require(self, ok: np.ndarray, problem) -> None:
        """Raise for the first row where ``ok`` is False; ``problem(row)`` words the message."""
        if len(ok) and not ok.all():
            position = int(np.argmin(ok))
            raise self.fail(int(self.frame.index[position]), problem(_row(self.frame, position)))


def _row(frame: pd.DataFrame, position: int) -> dict[str, object]:
    """One row with each column's own type (``frame.iloc`` would turn a mixed row into floats)."""
    return {column: frame[column].iloc[position] for column in frame.columns}


def _pandas_dtype(kind: str, column: str, dtypes: dict[str, str]) -> str:
    return dtypes.get(column) or {"id": "int32", "integer": "int64", "number": "float64", "text": "str"}[kind]


def _read_table(source: ReleaseSource, layout: _Layout, dtypes: dict[str, str] | None = None) -> _Table:
    """Read a file with pandas' C parser; on any parse problem, find and report the bad line."""
    dtypes = dtypes or {}
    column_dtypes = {
        column: _pandas_dtype(kind, column, dtypes)
        for column, kind in zip(layout.columns, layout.kinds, strict=True)
    }
    try:
        with source.open(layout.filename) as handle, warnings.catch_warnings():
            # Extra fields make pandas warn about "a loss of data" (or take a column as the index):
            # both are malformed rows here.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            if layout.header:
                _check_header(layout, handle.readline())
            stream = io.BytesIO(handle.read().replace(b"::", b"\t")) if layout.separator == "::" else handle
            frame = pd.read_csv(
                stream,
                sep="\t" if layout.separator == "::" else layout.separator,
                header=None,
                names=list(layout.columns),
                index_col=False,
                dtype=column_dtypes,
                engine="c",
                na_filter=False,
                skip_blank_lines=False,
                encoding=layout.encoding,
                quoting=csv.QUOTE_MINIMAL if layout.separator == "," else csv.QUOTE_NONE,
            )
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in column_dtypes.items()})
    except (
        ValueError,
        OverflowError,
        UnicodeDecodeError,
        pd.errors.ParserError,
        pd.errors.ParserWarning,
    ) as exc:
        _diagnose(source, layout)
        raise MovieLensImportError(f"could not be read: {exc}", file=layout.filename) from exc
    nullable = [column for column, dtype in column_dtypes.items() if not dtype.startswith("int")]
    if frame[nullable].isna().to_numpy().any():
        _diagnose(source, layout)  # a missing field; a literal "nan" rating is left to the value checks
    return _require_no_nul(_Table(source, layout, frame))


def _check_header(layout: _Layout, first_line: bytes) -> None:
    assert layout.header is not None
    if not first_line:
        raise MovieLensImportError("is empty (expected a header line)", file=layout.filename, line=1)
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MovieLensImportError(
            f"is not valid {layout.encoding.upper()}", file=layout.filename, line=1
        ) from None
    limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        found = tuple(next(csv.reader([text.rstrip("\r\n")]), []))
    finally:
        csv.field_size_limit(limit)
    if found != layout.header:
        raise MovieLensImportError(
            f"expected the header {','.join(layout.header)!r}, found {text.rstrip()!r}",
            file=layout.filename,
            line=1,
        )


def _decoded_lines(source: ReleaseSource, layout: _Layout) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending) for each physical line."""
    with source.open(layout.filename) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode(layout.encoding)
            except UnicodeDecodeError as exc:
                raise MovieLensImportError(
                    f"is not valid {layout.encoding.upper()} (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                    file=layout.filename,
                    line=number,
                ) from None
            yield number, text.rstrip("\r\n")


def _records(source: ReleaseSource, layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for each record after the header; the slow, exact reader."""
    lines = _decoded_lines(source, layout)
    if layout.separator == ",":
        # Every physical line is consumed in order, so a record starts one line after the
        # previous one ended, even when a quoted field spans several lines.
        reader = csv.reader(text + "\n" for _, text in lines)
        previous_end = 0
        limit = csv.field_size_limit(CSV_FIELD_LIMIT)
        try:
            for fields in reader:
                start, previous_end = previous_end + 1, reader.line_num
                if start == 1 and layout.header:
                    continue
                yield start, fields
        finally:
            csv.field_size_limit(limit)
    else:
        for number, text in lines:
            if number == 1 and layout.header:
                continue
            yield number, (text.split(layout.separator) if text else [])


def _csv_record_line(source: ReleaseSource, layout: _Layout, record: int) -> int:
    for index, (line, _) in enumerate(_records(source, layout)):
        if index == record:
            return line
    return layout.first_record_line + record


_KIND_WORDS = {"id": "a positive whole number", "integer": "a whole number", "number": "a number"}


def _shown(value: str) -> str:
    """A value for a message: quoted, and cut when long (a 200,000-character field stays readable)."""
    if len(value) <= SHOWN_VALUE_CHARS:
        return repr(value)
    return f"{value[:SHOWN_VALUE_CHARS]!r}... ({len(value):,} characters)"


def _field_problem(kind: str, label: str, value: str) -> str | None:
    text = value.strip()
    try:
        if kind == "id":
            number = _as_integer(text)
            if not 1 <= number <= MAX_ID:
                return f"{label} {_shown(text)} is out of range"
        elif kind == "integer":
            number = _as_integer(text)
            if abs(number) >= 2**63:
                return f"{label} {_shown(text)} is out of range"
        elif kind == "number" and not math.isfinite(float(text)):
            return f"{label} {_shown(value)} is not a finite number"
    except (ValueError, OverflowError):  # OverflowError: int(float("inf"))
        return f"{label} {_shown(value)} is not {_KIND_WORDS[kind]}"
    return None


def _require_no_nul(table: _Table) -> _Table:
    """PostgreSQL text cannot hold a NUL character (psycopg raises DataError): name the line instead."""
    for column, kind in zip(table.layout.columns, table.layout.kinds, strict=True):
        if kind == "text" and len(table.frame):
            clean = ~table.frame[column].str.contains("\x00", regex=False).to_numpy(dtype=bool)
            table.require(
                clean,
                lambda row, c=column: f"the {table.layout.label(c)} contains a NUL character (byte 0x00)",
            )
    return table


def _as_integer(text: str) -> int:
    if len(text) > 20 and text.lstrip("+-").isdigit():  # beyond int64; int() refuses over 4,300 digits
        return -(2**63) if text.startswith("-") else 2**63
    try:
        return int(text)
    except ValueError:
        number = float(text)  # pandas accepts "3.0" as an integer; so does this
        if not number.is_integer():
            raise
        return int(number)


def _diagnose(source: ReleaseSource, layout: _Layout) -> None:
    """Raise for the first malformed line: bad encoding, wrong field count or unparsable field."""
    expected = len(layout.columns)
    sep_name = {"\t": "tab", ",": "comma"}.get(layout.separator, repr(layout.separator))
    for line, fields in _records(source, layout):
        if not fields or fields == [""]:
            raise MovieLensImportError("is an empty line", file=layout.filename, line=line)
        if len(fields) != expected:
            raise MovieLensImportError(
                f"expected {expected} {sep_name}-separated fields ({', '.join(layout.header or layout.columns)}), "
                f"found {len(fields)}",
                file=layout.filename,
                line=line,
            )
        for column, kind, value in zip(layout.columns, layout.kinds, fields, strict=True):
            if kind != "text" and (problem := _field_problem(kind, layout.label(column), value)):
                raise MovieLensImportError(problem, file=layout.filename, line=line)


def _read_small(source: ReleaseSource, layout: _Layout, *, free_text_column: str | None = None) -> _Table:
    """Read a small file line by line (movies, tags and users of the non-CSV formats).

    ``free_text_column`` may itself contain the separator (a title or tag with "::"): extra
    fields are joined back into it, since the other fields are fixed.
    """
    expected = len(layout.columns)
    joined_at = layout.columns.index(free_text_column) if free_text_column else None
    values: list[list[object]] = []
    lines: list[int] = []
    for line, fields in _records(source, layout):
        if not fields or fields == [""]:
            continue  # blank lines, e.g. at the end of u.genre
        if joined_at is not None and len(fields) > expected:
            extra = len(fields) - expected
            fields = [
                *fields[:joined_at],
                layout.separator.join(fields[joined_at : joined_at + extra + 1]),
                *fields[joined_at + extra + 1 :],
            ]
        if len(fields) != expected:
            raise MovieLensImportError(
                f"expected {expected} {layout.separator!r}-separated fields, found {len(fields)}",
                file=layout.filename,
                line=line,
            )
        row: list[object] = []
        for column, kind, value in zip(layout.columns, layout.kinds, fields, strict=True):
            if kind != "text" and (problem := _field_problem(kind, layout.label(column), value)):
                raise MovieLensImportError(problem, file=layout.filename, line=line)
            row.append(_as_integer(value.strip()) if kind in ("id", "integer") else value)
        values.append(row)
        lines.append(line)
    frame = pd.DataFrame(values, columns=list(layout.columns))
    for column, kind in zip(layout.columns, layout.kinds, strict=True):
        frame[column] = frame[column].astype("int64" if kind in ("id", "integer") else "str")
    return _require_no_nul(_Table(source, layout, frame, lines=np.asarray(lines, dtype=np.int64)))


# --- Validating and shaping ----------------------------------------------------------------------


def _require_positive_ids(table: _Table, *columns: str) -> None:
    for column in columns:
        label = table.layout.label(column)
        table.require(
            table.frame[column].to_numpy() >= 1,
            lambda row, c=column, lb=label: f"{lb} {row[c]} must be positive",
        )


def _require_known_movies(table: _Table, movie_ids: np.ndarray, movies_file: str) -> None:
    known = np.isin(table.frame["movie_id"].to_numpy(), movie_ids)
    table.require(known, lambda row: f"movie id {row['movie_id']} is not in {movies_file}")


def _require_timestamps(table: _Table) -> None:
    stamps = table.frame["timestamp"].to_numpy()
    table.require(
        (stamps >= 0) & (stamps <= MAX_TIMESTAMP), lambda row: f"timestamp {row['timestamp']} is out of range"
    )


def _require_max_length(table: _Table, column: str, limit: int) -> None:
    lengths = table.frame[column].str.len().to_numpy()
    table.require(
        lengths <= limit, lambda row: f"{table.layout.label(column)} is longer than {limit} characters"
    )


def _build_movies(table: _Table, release_dates: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Movies (title without the year suffix, year) and their (movie_id, genre) pairs."""
    frame = table.frame
    _require_positive_ids(table, "id")
    repeated = frame["id"].duplicated().to_numpy()
    table.require(
        ~repeated,
        lambda row: (
            f"movie id {row['id']} appears twice "
            f"(first on line {table.line_of(int(frame.index[np.argmax(frame['id'].to_numpy() == row['id'])]))})"
        ),
    )
    raw_titles = frame["title"].str.strip()
    table.require((raw_titles != "").to_numpy(), lambda row: "the title is empty")
    parts = raw_titles.str.extract(_TITLE_YEAR)
    has_year = parts["year"].notna() & (parts["title"].fillna("") != "")
    titles = raw_titles.where(~has_year, parts["title"])
    years = pd.to_numeric(parts["year"].where(has_year), errors="coerce").astype("Int64")
    if release_dates is not None:
        fallback = pd.to_numeric(release_dates.str.extract(_RELEASE_DATE_YEAR)[0], errors="coerce").astype(
            "Int64"
        )
        years = years.fillna(fallback)
    table.require(
        (titles.str.len() <= TITLE_MAX_LENGTH).to_numpy(),
        lambda row: f"the title is longer than {TITLE_MAX_LENGTH} characters",
    )
    movies = pd.DataFrame({"id": frame["id"].astype("int64"), "title": titles, "year": years})

    genres = frame[["id", "genres"]].assign(genre=frame["genres"].str.split("|")).explode("genre")
    genres["genre"] = genres["genre"].fillna("").str.strip()
    genres = genres[(genres["genre"] != "") & ~genres["genre"].isin(NO_GENRES)]
    too_long = (genres["genre"].str.len() > GENRE_MAX_LENGTH).to_numpy()
    if too_long.any():
        raise table.fail(
            int(genres.index[np.argmax(too_long)]), f"a genre is longer than {GENRE_MAX_LENGTH} characters"
        )
    movie_genres = (
        genres.rename(columns={"id": "movie_id"})[["movie_id", "genre"]]
        .drop_duplicates()
        .reset_index(drop=True)
    )
    movie_genres["movie_id"] = movie_genres["movie_id"].astype("int64")
    return movies, movie_genres


def _attach_links(movies: pd.DataFrame, table: _Table | None, movies_file: str) -> pd.DataFrame:
    if table is None:
        return movies.assign(imdb_id="", tmdb_id=pd.array([pd.NA] * len(movies), dtype="Int64"))
    frame = table.frame
    _require_positive_ids(table, "movie_id")
    _require_known_movies(table, movies["id"].to_numpy(), movies_file)
    table.require(
        ~frame["movie_id"].duplicated().to_numpy(), lambda row: f"movie id {row['movie_id']} is linked twice"
    )
    imdb = frame["imdb_id"].str.strip()
    table.require(
        imdb.str.fullmatch(r"\d{0,16}").to_numpy(dtype=bool),
        lambda row: f"imdbId {row['imdb_id']!r} is not digits",
    )
    tmdb_text = frame["tmdb_id"].str.strip()
    table.require(
        tmdb_text.str.fullmatch(r"\d{0,10}").to_numpy(dtype=bool),
        lambda row: f"tmdbId {row['tmdb_id']!r} is not a number",
    )
    tmdb = pd.to_numeric(tmdb_text.replace("", None), errors="coerce").astype("Int64")
    table.require(
        (tmdb.fillna(1) <= MAX_ID).to_numpy(dtype=bool),
        lambda row: f"tmdbId {row['tmdb_id']} is out of range",
    )
    links = pd.DataFrame({"id": frame["movie_id"].astype("int64"), "imdb_id": imdb, "tmdb_id": tmdb})
    merged = movies.merge(links, on="id", how="left")
    merged["imdb_id"] = merged["imdb_id"].fillna("")
    return merged


def _check_ratings(table: _Table, movie_ids: np.ndarray, movies_file: str) -> pd.DataFrame:
    """Validate ratings and return them sorted by (user_id, movie_id)."""
    frame = table.frame
    _require_positive_ids(table, "user_id", "movie_id")
    _require_known_movies(table, movie_ids, movies_file)
    rating = frame["rating"].to_numpy()
    with np.errstate(invalid="ignore"):
        table.require(
            (rating >= RATING_MIN) & (rating <= RATING_MAX),
            lambda row: f"rating {row['rating']:g} is outside {RATING_MIN:g}..{RATING_MAX:g}",
        )
        doubled = rating * 2
        table.require(
            doubled == np.round(doubled), lambda row: f"rating {row['rating']:g} is not a multiple of 0.5"
        )
    _require_timestamps(table)

    # One key per (user, movie): sorted keys put duplicates next to each other.
    key = frame["user_id"].to_numpy().astype(np.int64)  # in place from here: 8 bytes a rating, not 32
    key <<= 32
    key |= frame["movie_id"].to_numpy()
    order = None
    if len(key) > 1 and not (key[1:] >= key[:-1]).all():
        order = np.argsort(key, kind="stable")
        key = key[order]
    same = np.flatnonzero(key[1:] == key[:-1])
    if len(same):
        seconds = same + 1 if order is None else order[same + 1]
        firsts = same if order is None else order[same]
        pick = int(np.argmin(seconds))
        second, first = int(seconds[pick]), int(firsts[pick])
        row = _row(frame, second)
        raise table.fail(
            int(frame.index[second]),
            f"user {row['user_id']} rates movie {row['movie_id']} a second time "
            f"(first on line {table.line_of(int(frame.index[first]))})",
        )
    if order is not None:
        frame = frame.take(order)
    return frame.reset_index(drop=True)


def _check_tags(table: _Table | None, movie_ids: np.ndarray, movies_file: str) -> tuple[pd.DataFrame, int]:
    """Validated tags without empty ones (and how many were empty), cut to TAG_MAX_LENGTH."""
    if table is None:
        return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in TAG_DTYPES.items()}), 0
    _require_positive_ids(table, "user_id", "movie_id")
    _require_known_movies(table, movie_ids, movies_file)
    _require_timestamps(table)
    frame = table.frame
    tags = frame["tag"].str.strip()
    keep = (tags != "").to_numpy()
    frame = frame.assign(tag=tags.str.slice(0, TAG_MAX_LENGTH))[keep]
    frame = frame.astype({"user_id": "int32", "movie_id": "int32", "timestamp": "int64"})
    return frame.reset_index(drop=True), int((~keep).sum())


def _build_users(
    ratings: pd.DataFrame, tags: pd.DataFrame, demographics: pd.DataFrame | None
) -> pd.DataFrame:
    """Every user id the release mentions, with demographics where the release has them."""
    ids = np.union1d(pd.unique(ratings["user_id"]), pd.unique(tags["user_id"])).astype(np.int64)
    if demographics is not None:
        ids = np.union1d(ids, demographics["movielens_id"].to_numpy()).astype(np.int64)
    users = pd.DataFrame({"movielens_id": ids})
    if demographics is None:
        return users.assign(
            gender="", age=pd.array([pd.NA] * len(users), dtype="Int64"), occupation="", zip_code=""
        )
    users = users.merge(demographics, on="movielens_id", how="left")
    for column in ("gender", "occupation", "zip_code"):
        users[column] = users[column].fillna("")
    users["age"] = users["age"].astype("Int64")
    return users


def _check_demographics(table: _Table) -> pd.DataFrame:
    frame = table.frame
    _require_positive_ids(table, "movielens_id")
    table.require(
        ~frame["movielens_id"].duplicated().to_numpy(),
        lambda row: f"user id {row['movielens_id']} appears twice",
    )
    ages = frame["age"].to_numpy()
    table.require((ages >= 0) & (ages <= 32767), lambda row: f"age {row['age']} is out of range")
    for column, limit in (("gender", 8), ("occupation", 64), ("zip_code", 16)):
        frame[column] = frame[column].str.strip()
        _require_max_length(table, column, limit)
    return frame[["movielens_id", "gender", "age", "occupation", "zip_code"]]


# --- The three formats ---------------------------------------------------------------------------


def _parse_csv(source: ReleaseSource) -> Release:
    def layout(
        filename: str, columns: tuple[str, ...], kinds: tuple[str, ...], header: tuple[str, ...]
    ) -> _Layout:
        labels = {
            "id": "movie id",
            "movie_id": "movie id",
            "user_id": "user id",
            "imdb_id": "imdbId",
            "tmdb_id": "tmdbId",
        }
        return _Layout(filename, ",", "utf-8", columns, kinds, header=header, labels=labels)

    movies_table = _read_table(
        source,
        layout(
            "movies.csv", ("id", "title", "genres"), ("id", "text", "text"), ("movieId", "title", "genres")
        ),
    )
    movies, movie_genres = _build_movies(movies_table)
    links_table = (
        _read_table(
            source,
            layout(
                "links.csv",
                ("movie_id", "imdb_id", "tmdb_id"),
                ("id", "text", "text"),
                ("movieId", "imdbId", "tmdbId"),
            ),
        )
        if source.has("links.csv")
        else None
    )
    movies = _attach_links(movies, links_table, "movies.csv")
    movie_ids = movies["id"].to_numpy()
    ratings_table = _read_table(
        source,
        layout(
            "ratings.csv",
            ("user_id", "movie_id", "rating", "timestamp"),
            ("id", "id", "number", "integer"),
            ("userId", "movieId", "rating", "timestamp"),
        ),
        RATING_DTYPES,
    )
    ratings = _check_ratings(ratings_table, movie_ids, "movies.csv")
    tags_table = (
        _read_table(
            source,
            layout(
                "tags.csv",
                ("user_id", "movie_id", "tag", "timestamp"),
                ("id", "id", "text", "integer"),
                ("userId", "movieId", "tag", "timestamp"),
            ),
            TAG_DTYPES,
        )
        if source.has("tags.csv")
        else None
    )
    tags, skipped = _check_tags(tags_table, movie_ids, "movies.csv")
    users = _build_users(ratings, tags, None)
    return Release(source, movies, movie_genres, users, ratings, tags, skipped)


_DAT_LABELS = {"id": "movie id", "movie_id": "movie id", "user_id": "user id", "movielens_id": "user id"}


def _parse_dat(source: ReleaseSource) -> Release:
    def layout(filename: str, columns: tuple[str, ...], kinds: tuple[str, ...]) -> _Layout:
        return _Layout(filename, "::", "latin-1", columns, kinds, labels=_DAT_LABELS)

    movies_table = _read_small(
        source,
        layout("movies.dat", ("id", "title", "genres"), ("id", "text", "text")),
        free_text_column="title",
    )
    movies, movie_genres = _build_movies(movies_table)
    movies = _attach_links(movies, None, "movies.dat")
    movie_ids = movies["id"].to_numpy()
    ratings_table = _read_table(
        source,
        layout(
            "ratings.dat", ("user_id", "movie_id", "rating", "timestamp"), ("id", "id", "number", "integer")
        ),
        RATING_DTYPES,
    )
    ratings = _check_ratings(ratings_table, movie_ids, "movies.dat")
    tags_table = None
    if source.has("tags.dat"):
        tags_table = _read_small(
            source,
            layout("tags.dat", ("user_id", "movie_id", "tag", "timestamp"), ("id", "id", "text", "integer")),
            free_text_column="tag",
        )
    tags, skipped = _check_tags(tags_table, movie_ids, "movies.dat")
    demographics = None
    if source.has("users.dat"):
        users_table = _read_small(
            source,
            layout(
                "users.dat",
                ("movielens_id", "gender", "age", "occupation", "zip_code"),
                ("id", "text", "integer", "integer", "text"),
            ),
        )
        codes = users_table.frame["occupation"].to_numpy()
        users_table.require(
            (codes >= 0) & (codes < len(ML_1M_OCCUPATIONS)),
            lambda row: (
                f"occupation {row['occupation']} is not one of the codes 0-{len(ML_1M_OCCUPATIONS) - 1}"
            ),
        )
        users_table.frame["occupation"] = pd.Series(
            np.asarray(ML_1M_OCCUPATIONS, dtype=object)[codes], index=users_table.frame.index, dtype="str"
        )
        demographics = _check_demographics(users_table)
    users = _build_users(ratings, tags, demographics)
    return Release(source, movies, movie_genres, users, ratings, tags, skipped)


ML_100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def _parse_100k(source: ReleaseSource) -> Release:
    def layout(filename: str, separator: str, columns: tuple[str, ...], kinds: tuple[str, ...]) -> _Layout:
        return _Layout(filename, separator, "latin-1", columns, kinds, labels=_DAT_LABELS)

    genre_names = list(ML_100K_GENRES)
    if source.has("u.genre"):
        genre_table = _read_small(source, layout("u.genre", "|", ("name", "index"), ("text", "integer")))
        positions = genre_table.frame["index"].to_numpy()
        genre_table.require(
            positions == np.arange(len(positions)), lambda row: f"genre index {row['index']} is out of order"
        )
        genre_names = genre_table.frame["name"].str.strip().tolist()
    flag_columns = tuple(f"genre_{index}" for index in range(len(genre_names)))
    movies_table = _read_small(
        source,
        layout(
            "u.item",
            "|",
            ("id", "title", "release_date", "video_release_date", "imdb_url", *flag_columns),
            ("id", "text", "text", "text", "text", *(["integer"] * len(flag_columns))),
        ),
    )
    flags = movies_table.frame[list(flag_columns)].to_numpy()
    movies_table.require(((flags == 0) | (flags == 1)).all(axis=1), lambda row: "genre flags must be 0 or 1")
    names = np.asarray(genre_names, dtype=object)
    movies_table.frame["genres"] = pd.Series(
        ["|".join(names[row.astype(bool)]) for row in flags], index=movies_table.frame.index, dtype="str"
    )
    movies, movie_genres = _build_movies(movies_table, release_dates=movies_table.frame["release_date"])
    movies = _attach_links(movies, None, "u.item")
    movie_ids = movies["id"].to_numpy()
    ratings_table = _read_table(
        source,
        layout(
            "u.data", "\t", ("user_id", "movie_id", "rating", "timestamp"), ("id", "id", "number", "integer")
        ),
        RATING_DTYPES,
    )
    ratings = _check_ratings(ratings_table, movie_ids, "u.item")
    tags, skipped = _check_tags(None, movie_ids, "u.item")
    demographics = None
    if source.has("u.user"):
        users_table = _read_small(
            source,
            layout(
                "u.user",
                "|",
                ("movielens_id", "age", "gender", "occupation", "zip_code"),
                ("id", "integer", "text", "text", "text"),
            ),
        )
        demographics = _check_demographics(users_table)
    users = _build_users(ratings, tags, demographics)
    return Release(source, movies, movie_genres, users, ratings, tags, skipped)


def release_parse(*, source: ReleaseSource) -> Release:
    """Read and validate every file of the release; raises MovieLensImportError on the first problem."""
    parse = {"csv": _parse_csv, "dat": _parse_dat, "100k": _parse_100k}[source.format]
    return parse(source)
