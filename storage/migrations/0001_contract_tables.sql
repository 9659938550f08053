-- The contract's tables as integer-time hypertables on ts_event (ns). Generated from
-- normalize.records by `python -m storage.ddl`; tests check the migrated tables against it.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE FUNCTION ticklake_ts(ns bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN to_timestamp(ns / 1000000000.0);
COMMENT ON FUNCTION ticklake_ts(bigint) IS 'ns since epoch -> timestamptz (microsecond precision, for display)';

CREATE TABLE trade (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    price double precision NOT NULL,
    size double precision NOT NULL,
    side smallint NOT NULL,
    trade_id text NOT NULL,
    size_native double precision
);
SELECT create_hypertable('trade', by_range('ts_event', 21600000000000::bigint), create_default_indexes => false);
CREATE INDEX trade_instrument_ts ON trade (instrument, ts_event DESC);

CREATE TABLE book_delta (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    side smallint NOT NULL,
    price double precision NOT NULL,
    size double precision NOT NULL,
    size_native double precision
);
SELECT create_hypertable('book_delta', by_range('ts_event', 7200000000000::bigint), create_default_indexes => false);
CREATE INDEX book_delta_instrument_ts ON book_delta (instrument, ts_event DESC);

CREATE TABLE bbo (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    bid_price double precision,
    bid_size double precision,
    ask_price double precision,
    ask_size double precision
);
SELECT create_hypertable('bbo', by_range('ts_event', 21600000000000::bigint), create_default_indexes => false);
CREATE INDEX bbo_instrument_ts ON bbo (instrument, ts_event DESC);

CREATE TABLE funding (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    funding_rate double precision NOT NULL,
    predicted_rate double precision,
    interval_s integer,
    next_funding_ts bigint,
    mark_price double precision,
    index_price double precision
);
SELECT create_hypertable('funding', by_range('ts_event', 86400000000000::bigint), create_default_indexes => false);
CREATE INDEX funding_instrument_ts ON funding (instrument, ts_event DESC);

CREATE TABLE mark_index (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    mark_price double precision,
    index_price double precision,
    estimated_settle_price double precision
);
SELECT create_hypertable('mark_index', by_range('ts_event', 86400000000000::bigint), create_default_indexes => false);
CREATE INDEX mark_index_instrument_ts ON mark_index (instrument, ts_event DESC);

CREATE TABLE open_interest (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    open_interest double precision NOT NULL,
    open_interest_native double precision,
    open_interest_value double precision
);
SELECT create_hypertable('open_interest', by_range('ts_event', 86400000000000::bigint), create_default_indexes => false);
CREATE INDEX open_interest_instrument_ts ON open_interest (instrument, ts_event DESC);

CREATE TABLE liquidation (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    price double precision NOT NULL,
    size double precision NOT NULL,
    side smallint NOT NULL,
    order_side smallint NOT NULL,
    size_native double precision
);
SELECT create_hypertable('liquidation', by_range('ts_event', 86400000000000::bigint), create_default_indexes => false);
CREATE INDEX liquidation_instrument_ts ON liquidation (instrument, ts_event DESC);

CREATE TABLE instrument (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    kind text NOT NULL,
    base text NOT NULL,
    quote text NOT NULL,
    settle text NOT NULL,
    inverse boolean NOT NULL,
    contract_size double precision NOT NULL,
    tick_size double precision NOT NULL,
    lot_size double precision NOT NULL,
    min_size double precision,
    funding_interval_s integer,
    expiry_ts bigint,
    status text
);
SELECT create_hypertable('instrument', by_range('ts_event', 604800000000000::bigint), create_default_indexes => false);
CREATE INDEX instrument_instrument_ts ON instrument (instrument, ts_event DESC);

CREATE TABLE feed_status (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    event text NOT NULL,
    connection_id text NOT NULL,
    detail text NOT NULL,
    seq_from bigint,
    seq_to bigint
);
SELECT create_hypertable('feed_status', by_range('ts_event', 604800000000000::bigint), create_default_indexes => false);
CREATE INDEX feed_status_instrument_ts ON feed_status (instrument, ts_event DESC);

