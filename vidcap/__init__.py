"""vidcap: annotate video datasets (probe, captions, camera motion, tags) into one merged table."""

__version__ = "0.1.0"
