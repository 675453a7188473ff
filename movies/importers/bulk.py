"""Fast bulk writes for the importer: binary COPY on PostgreSQL, executemany on SQLite.

Everything here runs inside the importer's ``transaction.atomic()``; nothing commits on its own.
Timestamps arrive as int64 Unix seconds and are turned into ``timestamptz`` (PostgreSQL) or
Django's SQLite text form ``YYYY-MM-DD HH:MM:SS`` (UTC) by the database, never row by row in Python.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from django.db import connection
from django.db.models import Model

logger = logging.getLogger(__name__)

# From this many rows on, dropping a table's secondary indexes and foreign keys and rebuilding
# them afterwards beats maintaining them row by row (on PostgreSQL by about 4x: each deferred
# foreign-key check is a separate lookup at commit).
INDEX_REBUILD_MIN_ROWS = 50_000
_PG_EPOCH_OFFSET_US = 946_684_800 * 1_000_000  # 2000-01-01, PostgreSQL's timestamp zero, in Unix µs
_PG_BINARY_TYPES = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "real": ">f4",
    "double precision": ">f8",
    "timestamp with time zone": ">i8",
}
_SQLITE_CACHE_KIB = 256 * 1024


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _column(model: type[Model], field_name: str) -> str:
    return model._meta.get_field(field_name).column


def import_lock() -> None:
    """Serialise concurrent imports (SQLite's IMMEDIATE transactions already do)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('movies.import_movielens'))")


@contextmanager
def foreign_keys_checked_once() -> Iterator[Callable[[], None]]:
    """On SQLite, turn off the per-row foreign-key checks for the import and hand back a check
    to run once inside the transaction before it commits (as Django's loaddata does).

    SQLite only honours this outside a transaction; inside one (a test's, say) every row stays
    checked and the final check is skipped. On PostgreSQL, foreign keys of large loads are
    re-validated when indexes_suspended re-creates them.
    """
    disabled = connection.vendor == "sqlite" and connection.disable_constraint_checking()

    def check() -> None:
        if disabled:
            connection.check_constraints()  # raises IntegrityError on any dangling reference

    try:
        yield check
    finally:
        if disabled:
            connection.enable_constraint_checking()


@contextmanager
def bulk_load_tuning() -> Iterator[None]:
    """Memory for the load: PostgreSQL's work_mem for this transaction (the per-movie aggregate
    of all ratings stays in memory), a larger SQLite page cache restored afterwards."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
        yield
        return
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")


@contextmanager
def indexes_suspended(*, model: type[Model], rows: int) -> Iterator[None]:
    """Drop the table's secondary indexes (and, on PostgreSQL, its foreign keys and unique
    constraints) for a large load, and recreate exactly what was there afterwards.

    DDL is transactional in both databases, so a failed import restores them with the rest.
    Recreating a unique or foreign-key constraint re-validates every row.
    On PostgreSQL the table is locked (ACCESS EXCLUSIVE) until the import commits.
    """
    if rows < INDEX_REBUILD_MIN_ROWS or connection.vendor not in ("postgresql", "sqlite"):
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("indexes_suspended needs a transaction to restore the indexes if the load fails")
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Pending deferred checks would forbid ALTER TABLE; run them now.
            connection.check_constraints()
            cursor.execute(
                """
                SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
                WHERE c.conrelid = %s::regclass AND c.contype IN ('f', 'u')
                  -- keep unique constraints that other tables' foreign keys point at
                  AND NOT (c.contype = 'u' AND EXISTS (
                      SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid))
                ORDER BY c.conname
                """,
                [table],
            )
            constraints = cursor.fetchall()
            cursor.execute(
                """
                SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
                ORDER BY i.relname
                """,
                [table],
            )
            indexes = cursor.fetchall()
            for name, _ in constraints:
                cursor.execute(f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(name)}")
        else:
            constraints = []
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL "
                "ORDER BY name",
                [table],
            )
            indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {_quote(name)}")
    yield
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            connection.check_constraints()
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for name, definition in constraints:
                cursor.execute(f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(name)} {definition}")
        for _, definition in indexes:
            cursor.execute(definition)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {_quote(table)}")
    logger.info(
        "rebuilt %d constraints and %d indexes of %s in %.1f s",
        len(constraints),
        len(indexes),
        table,
        time.perf_counter() - started,
    )


def rows_insert(
    *,
    model: type[Model],
    columns: Sequence[str],
    arrays: Sequence[np.ndarray],
    epoch_columns: Sequence[str] = (),
) -> None:
    """Insert rows given column-wise; ``epoch_columns`` hold Unix seconds (for text-bearing tables)."""
    if not len(arrays[0]):
        return
    table = model._meta.db_table
    epoch = [column in epoch_columns for column in columns]
    if connection.vendor == "postgresql":
        values = [
            np.datetime_as_string(
                np.asarray(array, dtype=np.int64).astype("datetime64[s]"), timezone="UTC"
            ).tolist()
            if is_epoch
            else _as_list(array)
            for array, is_epoch in zip(arrays, epoch, strict=True)
        ]
        names = ", ".join(_quote(column) for column in columns)
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {_quote(table)} ({names}) FROM STDIN") as copy,
        ):
            for row in zip(*values, strict=True):
                copy.write_row(row)
        return
    _sqlite_insert(table, list(columns), list(arrays), epoch, len(arrays[0]), None)


def rows_upsert(
    *,
    model: type[Model],
    columns: Sequence[str],
    arrays: Sequence[np.ndarray | list],
    conflict_column: str,
    update_columns: Sequence[str],
) -> None:
    """Insert rows given column-wise, or update ``update_columns`` where ``conflict_column`` matches.

    Rows whose values are unchanged are not rewritten, so re-importing a release is cheap.
    """
    if not len(arrays[0]):
        return
    table = _quote(model._meta.db_table)
    names = ", ".join(_quote(column) for column in columns)
    assignments = ", ".join(f"{_quote(column)} = excluded.{_quote(column)}" for column in update_columns)
    if connection.vendor == "postgresql":
        changed = " OR ".join(
            f"{table}.{_quote(c)} IS DISTINCT FROM excluded.{_quote(c)}" for c in update_columns
        )
        stage = _quote(f"import_stage_{model._meta.db_table}")
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
                for row in zip(*(_as_list(array) for array in arrays), strict=True):
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} ORDER BY {_quote(conflict_column)} "
                f"ON CONFLICT ({_quote(conflict_column)}) DO UPDATE SET {assignments} WHERE {changed}"
            )
            cursor.execute(f"DROP TABLE {stage}")
        return
    changed = " OR ".join(f"{table}.{_quote(c)} IS NOT excluded.{_quote(c)}" for c in update_columns)
    sql = (
        f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({_quote(conflict_column)}) DO UPDATE SET {assignments} WHERE {changed}"
    )
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(sql, zip(*(_as_list(array) for array in arrays), strict=True))
    finally:
        cursor.close()


def _as_list(array) -> list:
    return array.tolist() if hasattr(array, "tolist") else list(array)


def ratings_insert(
    *,
    model: type[Model],
    rater_ids: np.ndarray,
    movie_ids: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
    batch_size: int,
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Insert ratings column-wise from numpy arrays, ``batch_size`` rows at a time."""
    columns = [
        _column(model, "rater"),
        _column(model, "movie"),
        _column(model, "rating"),
        _column(model, "rated_at"),
    ]
    arrays = [rater_ids, movie_ids, ratings, timestamps]
    if connection.vendor == "postgresql":
        _pg_copy_binary(model._meta.db_table, columns, arrays, batch_size, on_rows)
    else:
        _sqlite_insert(
            model._meta.db_table, columns, arrays, [False, False, False, True], batch_size, on_rows
        )


def _pg_copy_binary(
    table: str,
    columns: list[str],
    arrays: list[np.ndarray],
    batch_size: int,
    on_rows: Callable[[int], None] | None,
) -> None:
    """COPY ... (FORMAT BINARY) from a numpy record array: no Python object per row.

    Each row is int16 field count, then per field int32 length and the big-endian value. The
    last column holds Unix seconds and becomes timestamptz (µs since 2000-01-01).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = ANY(%s)",
            [table, columns],
        )
        types = dict(cursor.fetchall())
    unsupported = [
        f"{column} ({types.get(column)})" for column in columns if types.get(column) not in _PG_BINARY_TYPES
    ]
    if unsupported or types[columns[-1]] != "timestamp with time zone":
        raise RuntimeError(f"cannot COPY {table} in binary: unexpected column types {unsupported or types}")
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for position, column in enumerate(columns):
        fields += [(f"length{position}", ">i4"), (f"value{position}", _PG_BINARY_TYPES[types[column]])]
    row_type = np.dtype(fields)
    lengths = {
        f"length{position}": np.dtype(_PG_BINARY_TYPES[types[column]]).itemsize
        for position, column in enumerate(columns)
    }
    total = len(arrays[0])
    names = ", ".join(_quote(column) for column in columns)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {_quote(table)} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for start in range(0, total, batch_size):
            stop = min(total, start + batch_size)
            block = np.empty(stop - start, dtype=row_type)
            block["count"] = len(columns)
            for name, size in lengths.items():
                block[name] = size
            for position, array in enumerate(arrays[:-1]):
                block[f"value{position}"] = array[start:stop]
            block[f"value{len(columns) - 1}"] = (
                arrays[-1][start:stop].astype(np.int64) * 1_000_000 - _PG_EPOCH_OFFSET_US
            )
            copy.write(block.tobytes())
            if on_rows:
                on_rows(stop - start)
        copy.write(struct.pack(">h", -1))


def _sqlite_insert(
    table: str,
    columns: list[str],
    arrays: list,
    epoch: list[bool],
    batch_size: int,
    on_rows: Callable[[int], None] | None,
) -> None:
    """executemany on the raw sqlite3 cursor; SQLite formats the timestamp as Django stores it."""
    names = ", ".join(_quote(column) for column in columns)
    placeholders = ", ".join("datetime(?, 'unixepoch')" if is_epoch else "?" for is_epoch in epoch)
    sql = f"INSERT INTO {_quote(table)} ({names}) VALUES ({placeholders})"
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        total = len(arrays[0])
        for start in range(0, total, batch_size):
            stop = min(total, start + batch_size)
            cursor.executemany(sql, zip(*(_as_list(array[start:stop]) for array in arrays), strict=True))
            if on_rows:
                on_rows(stop - start)
    finally:
        cursor.close()
