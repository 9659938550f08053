-- The audit of `ticklake backfill`: which window, venues and mode, which normalizer (version and a
-- digest of its source) produced the rows, and how many were added or replaced per table.
CREATE TABLE ticklake_backfills (
    id text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    start_ns bigint NOT NULL,
    end_ns bigint NOT NULL,
    venues text[] NOT NULL,
    mode text NOT NULL CHECK (mode IN ('add', 'replace')),
    normalizers jsonb NOT NULL,
    rows jsonb NOT NULL,
    captures jsonb NOT NULL
);
GRANT SELECT, INSERT ON ticklake_backfills TO ticklake_writer;
GRANT SELECT ON ticklake_backfills TO ticklake_reader;
