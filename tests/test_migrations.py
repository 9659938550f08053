"""Migrations: idempotent, transactional, and the tables equal the contract schema."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from normalize.records import RECORD_TYPES
from storage.ddl import key_index_columns, table_columns
from storage.migrate import MIGRATIONS_DIR, MigrationError, applied_versions, discover, migrate
from storage.pg import timescale_info
from ticklake.stack.postgres import EmbeddedPostgres


def test_second_migrate_is_a_no_op(pg_conn: psycopg.Connection, postgres: EmbeddedPostgres) -> None:
    assert applied_versions(pg_conn) == [m.version for m in discover()]
    assert migrate(postgres.dsn) == []


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_tables_match_the_contract(pg_conn: psycopg.Connection, record_type: str) -> None:
    rows = pg_conn.execute(
        """SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position""",
        (record_type,),
    ).fetchall()
    assert [tuple(row) for row in rows] == table_columns(record_type)
    dimension = pg_conn.execute(
        "SELECT column_name FROM timescaledb_information.dimensions WHERE hypertable_name = %s", (record_type,)
    ).fetchall()
    assert dimension == [("time",)]
    indexes = pg_conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
                              (record_type,)).fetchall()
    # one index: the record's key, unique, led by (instrument, ts_event) for every query by time
    [(name, definition)] = indexes
    assert name == f"{record_type}_key"
    assert definition.startswith(f"CREATE UNIQUE INDEX {record_type}_key ON public.{record_type} USING btree "
                                 f"(instrument, ts_event, ")
    assert definition.endswith(", \"time\") NULLS NOT DISTINCT")
    assert definition.count(",") + 1 == len(key_index_columns(record_type))


def test_edition_is_detected(pg_conn: psycopg.Connection) -> None:
    info = timescale_info(pg_conn)
    assert info is not None
    assert info.edition in {"apache", "timescale"}
    assert info.version.startswith("2.")


def test_reader_role_is_read_only(postgres: EmbeddedPostgres) -> None:
    reader_dsn = postgres.dsn.replace("postgres@", "ticklake_reader@")
    with psycopg.connect(reader_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM trade").fetchone() is not None
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO feed_status (venue, symbol, instrument, ts_event, ts_recv, flags, event,"
                         " connection_id, detail) VALUES ('x', '', '', 1, 1, 0, 'connect', 'c', '')")


def test_failed_migration_leaves_schema_unchanged(
    pg_conn: psycopg.Connection, postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "9001_half_done.sql").write_text(
        "CREATE TABLE must_not_survive (x int);\nSELECT no_such_function();\n"
    )
    with pytest.raises(MigrationError, match="9001_half_done failed and was rolled back"):
        migrate(postgres.dsn, tmp_path)
    exists = pg_conn.execute("SELECT to_regclass('must_not_survive')").fetchone()
    assert exists == (None,)
    assert 9001 not in applied_versions(pg_conn)


def test_changed_migration_is_refused(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(postgres.dsn, tmp_path)
