"""``vidcap filter``: keep the rows of a finished run that satisfy a condition (``vidcap.filter.expr``),
batch by batch, into a table that is the next run's manifest (``vidcap.filter.run``)."""
