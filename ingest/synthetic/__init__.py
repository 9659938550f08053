"""Synthetic markets for the replay server: a seeded market (market.py) and a venue session of it (feed.py)."""
