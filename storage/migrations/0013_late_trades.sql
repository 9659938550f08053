-- Trades a Timescale sink writes long after their event time (a backfill's, a spool sent after a bus
-- outage) are outside the live bars' trailing window: the sink marks the span of their event times
-- with its offset, in the batch's transaction, and `ticklake sink live-bars` rebuilds that span and
-- clears the mark unless another was made meanwhile (late_marks counts them). storage/late_trades.py.
ALTER TABLE ticklake_sink_offsets ADD COLUMN late_from_ns bigint;
ALTER TABLE ticklake_sink_offsets ADD COLUMN late_to_ns bigint;
ALTER TABLE ticklake_sink_offsets ADD COLUMN late_marks bigint NOT NULL DEFAULT 0;
