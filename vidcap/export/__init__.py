"""Exports of a finished run's merged table (app layer): ``webdataset`` writes WebDataset tar shards."""
