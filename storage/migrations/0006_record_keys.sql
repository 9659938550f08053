-- One row per venue event: each table's key (normalize.records key_columns and key_flags) becomes a
-- unique index, replacing the (instrument, ts_event DESC) index it also serves. Rows already stored
-- twice (a redundant handler's copy, before this migration) keep their earliest received copy.
-- Generated from storage.ddl.key_index_ddl.

DELETE FROM trade WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, trade_id ORDER BY ts_recv) AS copy
        FROM trade) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS trade_instrument_ts;
CREATE UNIQUE INDEX trade_key ON trade (instrument, ts_event, venue, trade_id) NULLS NOT DISTINCT;

DELETE FROM book_delta WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, exch_seq, side, price, (flags & 1) ORDER BY ts_recv) AS copy
        FROM book_delta) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS book_delta_instrument_ts;
CREATE UNIQUE INDEX book_delta_key ON book_delta (instrument, ts_event, venue, exch_seq, side, price, (flags & 1)) NULLS NOT DISTINCT;

DELETE FROM bbo WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, exch_seq, (flags & 64) ORDER BY ts_recv) AS copy
        FROM bbo) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS bbo_instrument_ts;
CREATE UNIQUE INDEX bbo_key ON bbo (instrument, ts_event, venue, exch_seq, (flags & 64)) NULLS NOT DISTINCT;

DELETE FROM funding WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, (flags & 32) ORDER BY ts_recv) AS copy
        FROM funding) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS funding_instrument_ts;
CREATE UNIQUE INDEX funding_key ON funding (instrument, ts_event, venue, (flags & 32)) NULLS NOT DISTINCT;

DELETE FROM mark_index WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue ORDER BY ts_recv) AS copy
        FROM mark_index) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS mark_index_instrument_ts;
CREATE UNIQUE INDEX mark_index_key ON mark_index (instrument, ts_event, venue) NULLS NOT DISTINCT;

DELETE FROM open_interest WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, (flags & 32) ORDER BY ts_recv) AS copy
        FROM open_interest) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS open_interest_instrument_ts;
CREATE UNIQUE INDEX open_interest_key ON open_interest (instrument, ts_event, venue, (flags & 32)) NULLS NOT DISTINCT;

DELETE FROM liquidation WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, side, price, size, exch_seq ORDER BY ts_recv) AS copy
        FROM liquidation) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS liquidation_instrument_ts;
CREATE UNIQUE INDEX liquidation_key ON liquidation (instrument, ts_event, venue, side, price, size, exch_seq) NULLS NOT DISTINCT;

DELETE FROM instrument WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue ORDER BY ts_recv) AS copy
        FROM instrument) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS instrument_instrument_ts;
CREATE UNIQUE INDEX instrument_key ON instrument (instrument, ts_event, venue) NULLS NOT DISTINCT;

DELETE FROM feed_status WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, connection_id, ts_recv, event ORDER BY ts_recv) AS copy
        FROM feed_status) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS feed_status_instrument_ts;
CREATE UNIQUE INDEX feed_status_key ON feed_status (instrument, ts_event, venue, connection_id, ts_recv, event) NULLS NOT DISTINCT;

DELETE FROM book_top WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid, row_number() OVER (PARTITION BY instrument, ts_event, venue, ts_recv, side, level ORDER BY ts_recv) AS copy
        FROM book_top) copies
    WHERE copy > 1);
DROP INDEX IF EXISTS book_top_instrument_ts;
CREATE UNIQUE INDEX book_top_key ON book_top (instrument, ts_event, venue, ts_recv, side, level) NULLS NOT DISTINCT;
