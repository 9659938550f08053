"""The secure embedded stack's secrets (`ticklake up --secure`): generated once, kept under the home.

`<home>/secrets/` (0700) holds, each file 0600:

* `pg-admin.pgpass`, `pg-writer.pgpass`, `pg-reader.pgpass`: one libpq password file per role
  (`*:*:*:<role>:<password>`), so a DSN names its file (`passfile=`) instead of holding the password,
  and a host that only reads (a dashboard) can be given the reader's file alone;
* `nats.password`: the password of the embedded nats-server's user;
* `tls/ca.pem`, `tls/server.pem`, `tls/server-key.pem`: a CA made for this home and the nats-server's
  certificate for 127.0.0.1 and localhost. The CA's key is not kept: nothing else can be signed with it.

A file that exists is used as it is: to choose a password yourself, write the file before `ticklake up
--secure` (or change it and restart the stack with `ticklake down` and `ticklake up`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ticklake.bus_auth import SECRETS_DIR
from ticklake.settings import SettingsError, read_secret_file

NATS_PASSWORD = "nats.password"
TLS_DIR = "tls"
CERT_DAYS = 3650
"""The embedded CA and server certificate's lifetime: they serve one machine's loopback address."""


def secrets_path(home: Path) -> Path:
    return (home / SECRETS_DIR).absolute()


def secrets_dir(home: Path) -> Path:
    """The secrets folder, made (0700) when missing."""
    path = secrets_path(home)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, never readable by others even for an instant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def new_password() -> str:
    """32 URL-safe characters (192 bits): no character a pgpass file or a NATS config would have to escape."""
    return secrets.token_urlsafe(24)


def pgpass_file(home: Path, role: str) -> Path:
    name = {"postgres": "admin", "ticklake_writer": "writer", "ticklake_reader": "reader"}.get(role, role)
    return secrets_path(home) / f"pg-{name}.pgpass"


def _pgpass_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def read_pgpass(path: Path) -> str:
    """The password of a one-line pgpass file (its fifth field, unescaped)."""
    line = read_secret_file(path, "the embedded stack's PostgreSQL password file")
    fields: list[str] = []
    current, escaped = "", False
    for char in line:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ":" and len(fields) < 4:
            fields.append(current)
            current = ""
        else:
            current += char
    if len(fields) != 4 or not current:
        raise SettingsError(f"{path} is not a pgpass line like *:*:*:ROLE:PASSWORD")
    return current


def ensure_pgpass(home: Path, role: str) -> tuple[Path, str]:
    """The role's pgpass file (made with a new password when missing) and its password."""
    secrets_dir(home)
    path = pgpass_file(home, role)
    if not path.exists():
        write_private(path, f"*:*:*:{_pgpass_escape(role)}:{new_password()}\n")
    return path, read_pgpass(path)


def ensure_nats_password(home: Path) -> tuple[Path, str]:
    path = secrets_dir(home) / NATS_PASSWORD
    if not path.exists():
        write_private(path, new_password() + "\n")
    password = read_secret_file(path, "the embedded stack's NATS password file")
    if any(char in password for char in '"\\') or not password.isprintable():
        raise SettingsError(f"{path}: the embedded nats-server's password may not hold quotes, backslashes or "
                            "control characters")
    return path, password


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def ensure_tls(home: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """The home's CA and the nats-server's certificate for `hosts`, made when any file is missing."""
    folder = secrets_dir(home) / TLS_DIR
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if not all(path.exists() for path in (files.ca, files.cert, files.key)):
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o700)
        ca_pem, cert_pem, key_pem = make_certificates(hosts)
        write_private(files.key, key_pem)
        write_private(files.cert, cert_pem)
        write_private(files.ca, ca_pem)
    return files


def make_certificates(hosts: tuple[str, ...]) -> tuple[str, str, str]:
    """(CA certificate, server certificate, server key), PEM; the CA's key is dropped after signing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(days=CERT_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ticklake embedded stack CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem).decode(), cert.public_bytes(pem).decode(), key_pem.decode()
