-- Trades a Timescale sink writes long after their event time (a backfill's, a spool sent after a bus
-- outage, a market replayed on its own clock) are outside the live bars' trailing window: the sink adds
-- a row with the span of their event times in the batch's transaction, and `ticklake sink live-bars`
-- rebuilds the minutes of the rows it read and deletes exactly those rows (storage/late_trades.py).
CREATE TABLE ticklake_late_trades (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer text NOT NULL,
    from_ns bigint NOT NULL,
    to_ns bigint NOT NULL
);
GRANT SELECT, INSERT, DELETE ON ticklake_late_trades TO ticklake_writer;
GRANT SELECT ON ticklake_late_trades TO ticklake_reader;
