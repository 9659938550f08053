-- Exactly-once effect for sinks: each consumer's last committed stream sequence, written in the
-- same transaction as its rows; anything at or below it is skipped on redelivery.
CREATE TABLE ticklake_sink_offsets (
    consumer text PRIMARY KEY,
    stream text NOT NULL,
    last_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON ticklake_sink_offsets TO ticklake_writer;
GRANT SELECT ON ticklake_sink_offsets TO ticklake_reader;
