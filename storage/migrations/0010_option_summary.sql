-- Options: the instrument master's strike and option type (normalize/records.py Instrument; null for every
-- other kind), and the option_summary table (OptionSummary: mark price, implied volatilities as fractions a
-- year, greeks and the underlying price, as Deribit's ticker publishes them). Generated from storage.ddl
-- (table_ddl and its key index).
ALTER TABLE instrument ADD COLUMN strike double precision;
ALTER TABLE instrument ADD COLUMN option_type text;
CREATE TABLE option_summary (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    mark_price double precision,
    mark_iv double precision,
    bid_iv double precision,
    ask_iv double precision,
    underlying_price double precision,
    underlying text,
    delta double precision,
    gamma double precision,
    vega double precision,
    theta double precision,
    rho double precision,
    interest_rate double precision
);
SELECT create_hypertable('option_summary', by_range('ts_event', 86400000000000::bigint), create_default_indexes => false);
CREATE UNIQUE INDEX option_summary_key ON option_summary (instrument, ts_event, venue) NULLS NOT DISTINCT;
