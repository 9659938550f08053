"""Sinks and readers: the Timescale schema and writers, the Parquet lake, and the query API (`storage.query`)."""
