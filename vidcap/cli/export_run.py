"""Handler of ``vidcap export`` (imported when the command runs; the parser: ``vidcap.cli.export``)."""
from __future__ import annotations

import json
import logging

from vidcap.errors import ConfigError
from vidcap.export.webdataset import export_webdataset, parse_size


def cmd_webdataset(args) -> int:
    try:
        parse_size(args.shard_size)
    except ValueError as exc:
        raise ConfigError(f"--shard-size: {exc}") from None
    stats = export_webdataset(args.run, args.to, args.shard_size, text_column=args.text_column,
                              media_root=args.media_root)
    logging.info("%s", json.dumps(stats))
    print(json.dumps(stats, indent=1))
    return 0
