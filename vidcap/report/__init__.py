"""The run's HTML report: ``vidcap report RUN_DIR`` and the workflow's last rule (docs/report.md).

One self-contained page (no network: thumbnails are base64 JPEG, plots are base64 SVG data URIs,
CSS and the small filter script are inline) with

* a gallery: ``worst`` rows with problems (a stage error, a caption cut at ``max_new_tokens``
  (``finish_reason == length``), ``unclassified`` motion) and ``sample`` random rows, each with
  thumbnails of the frames the caption model saw (``caption_frame_indices``; uniform frames when the
  row has none), its caption, motion label and tags; filters by motion label, tag and kind;
* distributions of the dataset summary (``vidcap.summary.summarize``): camera motion, top tags per
  key, caption length, clip duration, resolution;
* throughput and cost per stage and per shard from the ``benchmark:`` files, the stage logs and
  ``vidcap.caption.cost.run_cost``;
* failures per stage with the commonest messages;
* provenance: models, revisions, prompts (key, hash, wording), software versions, the config used.

Size does not grow with the table: the gallery is a sample, plots are drawn from aggregates, the
per-shard table lists the slowest shards only. Everything taken from the data (captions are model
output, paths and errors come from users' files) is HTML-escaped by the template (autoescape).
"""
from vidcap.report.build import build_report, report_options

__all__ = ["build_report", "report_options"]
