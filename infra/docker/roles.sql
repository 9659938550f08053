-- Give the roles that migration 0002 creates their passwords, read from the secret files by psql
-- itself (never on a command line or in an environment); the server stores scram-sha-256
-- verifiers (password_encryption). Run as the owner by the compose service `roles` after
-- `ticklake db migrate`; running it again sets the same passwords.
\set writer_password `cat /run/secrets/pg_writer_password`
\set reader_password `cat /run/secrets/pg_reader_password`
SET password_encryption = 'scram-sha-256';
ALTER ROLE ticklake_writer WITH LOGIN PASSWORD :'writer_password';
ALTER ROLE ticklake_reader WITH LOGIN PASSWORD :'reader_password';
