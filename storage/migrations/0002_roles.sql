-- Two roles: a writer for the sinks and pipelines, and a read-only reader for dashboards and
-- analysts. Both may log in; set passwords with ALTER ROLE when the server is not local-trust.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ticklake_writer') THEN
        CREATE ROLE ticklake_writer LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ticklake_reader') THEN
        CREATE ROLE ticklake_reader LOGIN;
    END IF;
END
$$;
ALTER ROLE ticklake_reader SET default_transaction_read_only = on;

GRANT USAGE ON SCHEMA public TO ticklake_writer, ticklake_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ticklake_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ticklake_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ticklake_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ticklake_reader;
