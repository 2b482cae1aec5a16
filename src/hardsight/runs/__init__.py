"""The run folder (folder.py, the only reader and writer of its files) and `hardsight runs` (listing.py)."""
