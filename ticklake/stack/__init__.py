"""The embedded local stack: a private PostgreSQL+TimescaleDB cluster and a nats-server with
JetStream, each in a directory of its own on a free port. `ticklake up` and the test fixtures
both use these classes, so the tests exercise exactly what a newcomer runs."""
