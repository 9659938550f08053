"""PostgreSQL logins: passwords from settings into connection strings, and scram-sha-256 role passwords.

ticklake connects as two roles that migration 0002 creates: `ticklake_writer` (the sinks, backfill, the
pipelines: rows in, never DDL) and `ticklake_reader` (the query API and dashboards: SELECT only, and
read-only transactions by default). Migrations and retention (DDL, `drop_chunks`) need the tables' owner.

A password reaches libpq in one of three ways, all of which psycopg and ADBC honour alike: in the DSN
itself (masked wherever a DSN is shown), from a libpq password file the DSN names (`passfile=`, what the
secure embedded stack uses, so its DSNs hold no secret at all), or from TICKLAKE_PG_PASSWORD(_FILE),
which `with_password` adds when a connection string is resolved.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from urllib.parse import quote, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ticklake.settings import SettingsError

WRITER = "ticklake_writer"
READER = "ticklake_reader"
SCRAM_ITERATIONS = 4096
"""PostgreSQL's own default (scram_iterations)."""


def with_password(dsn: str, password: str | None, dsn_setting: str = "TICKLAKE_PG_DSN",
                  password_setting: str = "TICKLAKE_PG_PASSWORD") -> str:
    """`dsn` with `password` added (a URL keeps its form, so it still reads as one when masked). A DSN that
    holds a password already, given a password setting as well, is refused: which one counts would be a
    guess."""
    if password is None:
        return dsn
    if "password" in conninfo_to_dict(dsn):
        raise SettingsError(f"{dsn_setting} holds a password and {password_setting}(_FILE) is set too: give one")
    if "://" in dsn:
        parts = urlsplit(dsn)
        userinfo, at, hosts = parts.netloc.rpartition("@")
        if at and userinfo and ":" not in userinfo:
            netloc = f"{userinfo}:{quote(password, safe='')}@{hosts}"
            return urlunsplit(parts._replace(netloc=netloc))
    return make_conninfo(dsn, password=password)


def with_passfile(dsn: str, passfile: str) -> str:
    """`dsn` naming a libpq password file (which libpq reads only when it is 0600)."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}passfile={quote(passfile, safe='/')}"


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The scram-sha-256 verifier PostgreSQL stores for `password` (RFC 5803's format).

    Computed here, so a role's password can be set without the password itself ever reaching the server,
    its logs (a failing ALTER ROLE is logged with its text) or a single-user session's output. PostgreSQL
    SASLprep-normalizes passwords; NFKC is that normalization for every password without the rare
    characters SASLprep maps away or prohibits, and ASCII passwords (all generated ones) are unchanged."""
    salt = salt if salt is not None else os.urandom(16)
    normalized = unicodedata.normalize("NFKC", password).encode()
    salted = hashlib.pbkdf2_hmac("sha256", normalized, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def login_statements(role: str, password: str) -> list[str]:
    """Create `role` as a login when missing and set its password (as a verifier). Plain SQL with the
    names inlined (no bound parameters), because it also runs in single-user mode, which has none."""
    verifier = _literal(scram_verifier(password))
    ident = '"' + role.replace('"', '""') + '"'
    return [f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_literal(role)}) THEN "
            f"CREATE ROLE {ident} LOGIN; END IF; END $$",
            f"ALTER ROLE {ident} LOGIN PASSWORD {verifier}"]
