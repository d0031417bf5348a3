"""The streaming merge behind ``vidcap gather`` (``vidcap.gather`` drives it), one shard at a time:

* ``join``: one shard's table joined with each stage's table for that shard (types unified over
  every shard first, so every part has the same schema);
* ``dups``: ``caption_duplicate`` over the whole run with memory bounded by a bucket, not the run
  (hashes of the text partitioned on disk);
* ``parts``: the Parquet dataset ``results/<name>/table/part-NNNNN.parquet`` and the single-file
  CSV / Parquet, written as the parts come.
"""
