"""Every venue is two packages of fixed module names behind one interface, registered once; the
template a new venue is copied from satisfies the same interface."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from ingest.venues import _template
from ingest.venues.interface import ReplayProtocol, SyntheticVenue, VenueConnection, VenueSpec
from ingest.venues.registry import CONNECTIONS, NORMALIZERS, PROTOCOLS, VENUES
from normalize.emitted import Emitted
from normalize.venues.interface import VenueNormalizer

ROOT = Path(__file__).parents[1]
SPECS = [*VENUES.values(), _template.SPEC]


def _package(cls: type) -> str:
    return cls.__module__.rsplit(".", 1)[0]


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(protocol).items()
            if callable(member) and not name.startswith("_")}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.venue)
def test_a_venue_is_two_packages_of_fixed_modules(spec: VenueSpec) -> None:
    normalize_package, ingest_package = _package(spec.normalizer), _package(spec.connection)  # type: ignore[arg-type]
    assert normalize_package.startswith("normalize.venues.") and ingest_package.startswith("ingest.venues.")
    assert normalize_package.rsplit(".", 1)[1] == ingest_package.rsplit(".", 1)[1]
    for package, modules in ((normalize_package, ("wire", "book_sync", "normalizer")),
                             (ingest_package, ("connection", "replay"))):
        for module in modules:
            importlib.import_module(f"{package}.{module}")
    assert _package(spec.replay) == ingest_package
    assert importlib.import_module(ingest_package).SPEC is spec


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.venue)
def test_every_venue_implements_the_interfaces(spec: VenueSpec) -> None:
    parts: list[tuple[object, type]] = [(spec.normalizer, VenueNormalizer), (spec.connection, VenueConnection),
                                        (spec.replay, ReplayProtocol)]
    if spec.synthetic is not None:
        assert _package(spec.synthetic) == _package(spec.connection)
        parts.append((spec.synthetic, SyntheticVenue))
    for implementation, protocol in parts:
        for name, signature in _methods(protocol).items():
            method = getattr(implementation, name, None)
            assert method is not None, f"{implementation.__name__} lacks {name}"  # type: ignore[union-attr]
            assert list(inspect.signature(method).parameters) == list(signature.parameters), (implementation, name)


def test_the_registry_is_the_one_place_venues_are_named() -> None:
    assert set(NORMALIZERS) == set(CONNECTIONS) == set(PROTOCOLS) == set(VENUES)
    assert all(spec.venue == venue for venue, spec in VENUES.items())
    registry = (ROOT / "ingest" / "venues" / "registry.py").read_text()
    for venue in VENUES:
        assert registry.count(f"{venue.replace('-', '_')}.SPEC") == 1


def test_the_template_runs() -> None:
    normalizer, out = _template.SPEC.normalizer(), Emitted()
    normalizer.on_ws(b'{"channel":"trades"}', 1, out)
    normalizer.on_ws(b"not json", 2, out)
    reasons = [d.reason for d in out.dead_letters]
    assert reasons[0] == "channel 'trades': not normalized yet" and reasons[1].startswith("undecodable frame: ")
    connection = _template.SPEC.connection(["BTCUSDT"])  # type: ignore[call-arg]
    assert [route.url for route in connection.routes()] == ["wss://example.invalid/ws"]
