"""The contract: one exact schema for every venue (records.py), pure functions from raw frames to records
(venues/), and the wire codec."""
