"""Scores a data team filters on: motion (optical flow, codec motion vectors), blur, exposure, stills,
and optional model scores (aesthetic, caption match, text area). Columns: ``docs/scores.md``."""
