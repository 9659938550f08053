"""Envelopes that cannot be decoded raise CodecError with a reason (the dead-letter text)."""

from __future__ import annotations

import pytest

from normalize import codec
from ticklake.selfcheck import example_records


def _trade_payload(encoding: codec.Encoding) -> bytes:
    return codec.encode([next(r for r in example_records() if r.record_type == "trade")], encoding)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: bytes([99]) + p[1:], "unsupported wire version 99"),
        (lambda p: p[:1] + bytes([7]) + p[2:], "unknown encoding 7"),
        (lambda p: p[:2] + bytes([200]) + p[3:], "unknown record type code 200"),
        (lambda p: p[:3], "envelope too short"),
        (lambda p: p[:-5], "malformed trade"),
        (lambda p: p[:2] + bytes([codec.TYPE_CODES["bbo"]]) + p[3:], "malformed bbo"),
    ],
)
@pytest.mark.parametrize("encoding", [codec.Encoding.MSGPACK, codec.Encoding.ARROW])
def test_bad_envelopes(encoding: codec.Encoding, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    payload = mutate(_trade_payload(encoding))
    if reason == "malformed bbo" and encoding is codec.Encoding.ARROW:
        reason = "does not match the contract schema"
    for decode in (codec.decode, codec.decode_arrow, codec.decode_rows):
        with pytest.raises(codec.CodecError, match=reason):
            decode(payload)


def test_out_of_range_side_is_rejected_on_decode() -> None:
    import msgspec

    trade = next(r for r in example_records() if r.record_type == "trade")
    payload = codec.encode([msgspec.structs.replace(trade, side=300)])
    for decode in (codec.decode, codec.decode_arrow, codec.decode_rows):
        with pytest.raises(codec.CodecError, match="malformed trade"):
            decode(payload)


def _packed_payload() -> bytes:
    from normalize.records import BookDeltas, pack_levels

    message = BookDeltas("binance-usdm", "BTCUSDT", "BTC-USDT-PERP", 1, 2, None, 7, 0, pack_levels([(1.0, 2.0)]),
                         pack_levels([(3.0, 0.0)]))
    return codec.encode([message])


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p[:-3], "malformed book_delta PACKED body"),
        (lambda p: p[:2] + bytes([codec.TYPE_CODES["trade"]]) + p[3:], "PACKED encoding holds book_delta, not trade"),
        (lambda p: p.replace(b"\xc0\xc0", b"\x92\x01\x01\xc0"), "size_native not aligned with the levels"),
        (lambda p: p.replace(b"\xc4\x10\x00\x00\x00\x00\x00\x00\x08@", b"\xc4\x0f\x00\x00\x00\x00\x00\x00\x08"),
         "15 bytes of levels, not whole levels"),
    ],
)
def test_bad_packed_envelopes(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    payload = _packed_payload()
    assert codec.read_header(payload).encoding is codec.Encoding.PACKED
    bad = mutate(payload)
    assert bad != payload
    for decode in (codec.decode, codec.decode_arrow, codec.decode_rows):
        with pytest.raises(codec.CodecError, match=reason):
            decode(bad)


def test_packed_encoding_refuses_rows() -> None:
    trade = next(r for r in example_records() if r.record_type == "trade")
    with pytest.raises(ValueError, match="only BookDeltas"):
        codec.encode([trade], codec.Encoding.PACKED)
