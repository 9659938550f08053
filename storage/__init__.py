"""Sinks and readers: the Timescale schema and writers, the Parquet lake, and (later) the query API."""
