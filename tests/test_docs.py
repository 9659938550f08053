"""The documentation holds: every link in README.md and docs/*.md resolves (files, and headings for
`#anchors`, as GitHub slugs them), and docs/contract.md says what normalize/records.py says (every
record type, column, Arrow type, nullability, key and flag), with the venue ids of the registry.

External links (http, https, mailto) are not fetched: there is no network here."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.venues.registry import VENUES
from normalize.arrow_schema import schema_for
from normalize.flags import Flag
from normalize.records import FEED_EVENTS, RECORD_CLASSES, RECORD_TYPES, TRADE_TYPES, Record
from ticklake.demo import SESSIONS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONTRACT = ROOT / "docs" / "contract.md"

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCED.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    text = INLINE_CODE.sub("", FENCED.sub("", page.read_text()))
    return LINK.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    for target in links(page):
        if re.match(r"^(https?|mailto):", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert resolved.suffix == ".md", f"{page.name}: {target}: an anchor into a file that is not markdown"
            assert anchor in anchors(resolved), f"{page.name}: {target}: no such heading"


def test_slugs_as_github_makes_them() -> None:
    assert slug("Binance USD-M (`binance-usdm`)") == "binance-usd-m-binance-usdm"
    assert slug("The guarantee") == "the-guarantee"
    assert slug("Capacity (`bench_capacity`)") == "capacity-bench_capacity"


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    following = re.search(r"^#{2,3} ", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + following.start()] if following else text[start:]


def _table(section: str) -> list[list[str]]:
    """The first table of a section: its body rows' cells, without the header."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _documented_type(field: pa.Field) -> str:
    return str(field.type).replace("tz=UTC", "UTC") + ("?" if field.nullable else "")


def test_contract_common_columns_and_flags() -> None:
    text = CONTRACT.read_text()
    common = [f for f in schema_for("trade") if f.name in Record.__struct_fields__]
    rows = _table(_section(text, "## Columns every record carries"))
    assert [(r[0].strip("`"), r[1]) for r in rows] == [(f.name, _documented_type(f)) for f in common]
    flags = [r for r in _table(text[text.index("**Flags**"):]) if r[0].startswith("`")]
    assert [(r[0].strip("`"), int(r[1])) for r in flags] == [(f.name, f.value) for f in Flag]


def test_contract_every_record_type_and_column() -> None:
    text = CONTRACT.read_text()
    documented = re.findall(r"^### `(\w+)`$", text, re.M)
    assert documented == list(RECORD_TYPES)
    listed = re.search(r"Record types, in the order the wire codec numbers them[^:]*:\s*(.+?)\.\n", text, re.S)
    assert listed and re.findall(r"`(\w+)`", listed.group(1)) == list(RECORD_TYPES)
    for record_type, cls in RECORD_CLASSES.items():
        section = _section(text, f"### `{record_type}`")
        own = [f for f in schema_for(record_type) if f.name not in Record.__struct_fields__]
        rows = _table(section)
        assert [(r[0].strip("`"), r[1]) for r in rows] == [(f.name, _documented_type(f)) for f in own], record_type
        key = re.search(r"Key: `([^`]+)`(?: and the `(\w+)` bit)?", " ".join(section.split()))
        assert key, f"{record_type}: no Key line"
        assert [c.strip() for c in key.group(1).split(",")] == list(cls.key_columns), record_type
        flag_names = [f.name for f in Flag if f.value & cls.key_flags]
        assert ([key.group(2)] if key.group(2) else []) == flag_names, record_type


def test_contract_events_trade_types_and_venues() -> None:
    text = " ".join(CONTRACT.read_text().split())
    events = re.search(r"Events: (.+?)\. What each", text)
    assert events and re.findall(r"`(\w+)`", events.group(1)) == list(FEED_EVENTS)
    trade_types = re.search(r"not an ordinary market trade: (.+?) \(`TRADE_TYPES`\)", text)
    assert trade_types and re.findall(r"`(\w+)`", trade_types.group(1)) == list(TRADE_TYPES)
    venues = re.search(r"Venue ids \(`ingest/venues/registry.py`\): (.+?)\. Which", text)
    assert venues and re.findall(r"`([\w-]+)`", venues.group(1)) == list(VENUES)
    readme = (ROOT / "README.md").read_text()
    ten = re.search(r"^Ten venues \(`ingest/venues/registry.py`\).*?\n\n((?:\|.*\n)+)", readme, re.M | re.S)
    assert ten and sorted(re.findall(r"^\| `([\w-]+)` \|", ten.group(1), re.M)) == sorted(VENUES)


def test_venues_summary_covers_every_venue_and_demo_session() -> None:
    """docs/venues.md's summary: one row per venue of the registry, and each venue's demo
    session named (ticklake/demo.py replays at least one per venue)."""
    rows = _table(_section((ROOT / "docs" / "venues.md").read_text(), "## Summary"))
    assert sorted(row[0].strip("`") for row in rows) == sorted(VENUES)
    assert {row[0].strip("`") for row in rows} == {session.venue for session in SESSIONS}
    assert all(len(row) == 6 and all(row) for row in rows)
