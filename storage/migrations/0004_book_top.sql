-- Top-N book snapshots taken from ticklake's own books (normalize.records.BookTop).
CREATE TABLE book_top (
    venue text NOT NULL,
    symbol text NOT NULL,
    instrument text NOT NULL,
    ts_event bigint NOT NULL,
    ts_recv bigint NOT NULL,
    ts_exch bigint,
    exch_seq bigint,
    flags integer NOT NULL,
    side smallint NOT NULL,
    level integer NOT NULL,
    price double precision NOT NULL,
    size double precision NOT NULL
);
SELECT create_hypertable('book_top', by_range('ts_event', 21600000000000::bigint), create_default_indexes => false);
CREATE INDEX book_top_instrument_ts ON book_top (instrument, ts_event DESC);
