# Shared helpers: run layout, shard list, stage switches and the vidcap command line.
import json
import os
import shlex

from snakemake.settings.types import DeploymentMethod

from vidcap.shards import shard_names
from vidcap.tables import TableError, count_rows

# Stages in the order their columns appear in the merged table.
# clean follows caption (with replace_text its text replaces the caption's); tags come last.
STAGE_ORDER = ["probe", "caption", "clean", "motion", "tags"]

RESULTS = config["results_dir"]
RUN = os.path.join(RESULTS, config["name"])

try:
    N_ROWS = count_rows(config["manifest"])
except TableError as exc:
    raise ValueError(f"manifest: {exc}") from None
SHARDS = shard_names(N_ROWS, config["shard_size"])

# Rules call `vidcap ...`: a shell function running this checkout's package with the python of the
# rule's conda/apptainer env when there is one, else with the interpreter running Snakemake.
_IN_ENV = bool(
    set(workflow.deployment_settings.deployment_method)
    & {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER}
)
_PYTHON = "python" if _IN_ENV else shlex.quote(sys.executable)
_VIDCAP_FUNCTION = (
    f"vidcap() {{ PYTHONPATH={shlex.quote(workflow.basedir)}${{PYTHONPATH:+:$PYTHONPATH}}"
    f" {_PYTHON} -m vidcap \"$@\"; }}; "
)
shell.prefix(_VIDCAP_FUNCTION.replace("{", "{{").replace("}", "}}"))


def run_path(*parts):
    """A path inside this run's folder <results_dir>/<name>/."""
    return os.path.join(RUN, *parts)


def _resolve_text_stages():
    """Text source of clean/tags, the motion.append_to_text alias, and clean skipped when it has nothing.

    The caption is the caption stage's output column when captioning is on, else the manifest's `text`.
    `stages.motion.append_to_text` is an alias of `stages.clean.append_motion` + `replace_text` (the
    clean stage is the one place that appends the camera-motion sentence).
    """
    import sys

    from vidcap.tables import read_table_columns

    stages = config["stages"]
    caption_on = stages["caption"]["enabled"]
    default = stages["caption"]["output_column"] if caption_on else "text"

    def has_text(column):
        if caption_on and column == stages["caption"]["output_column"]:
            return True
        try:
            read_table_columns(config["manifest"], [column])
            return True
        except TableError:
            return False

    clean, motion, tags = stages["clean"], stages["motion"], stages["tags"]
    if motion["enabled"] and motion["append_to_text"]:
        if not clean["enabled"]:
            raise ValueError("config key 'stages.motion.append_to_text': needs stages.clean.enabled: true "
                             "(the clean stage appends the camera-motion sentence)")
        clean["append_motion"] = clean["replace_text"] = True
    if clean["enabled"] and clean["append_motion"] and not motion["enabled"]:
        raise ValueError("config key 'stages.clean.append_motion': needs stages.motion.enabled: true")
    if clean["enabled"] and not clean["append_motion"] and not has_text(clean["text_column"] or default):
        print(f"vidcap: stage clean skipped: no caption to clean (caption stage off and the manifest has "
              f"no {clean['text_column'] or default!r} column)", file=sys.stderr)
        clean["enabled"] = False
    if tags["enabled"] and not has_text(tags["text_column"] or default):
        raise ValueError(f"config key 'stages.tags': no caption to tag: switch stages.caption on or give the "
                         f"manifest a {tags['text_column'] or default!r} column (or set stages.tags.text_column)")
    return default


TEXT_COLUMN = _resolve_text_stages()


def enabled_stages():
    return [s for s in STAGE_ORDER if config["stages"][s]["enabled"]]


def stage_outputs(stage):
    return expand(run_path("stages", stage, "{shard}.parquet"), shard=SHARDS)


def stage_settings(stage):
    """The stage's result-changing settings as a shell-quoted JSON object (a change reruns it)."""
    settings = {
        k: v
        for k, v in config["stages"][stage].items()
        if k not in ("enabled", "resources", "append_to_text")
    }
    if stage in ("clean", "tags") and not settings.get("text_column"):
        settings["text_column"] = TEXT_COLUMN
    if stage == "clean" and settings.get("tokenizer") == "auto":
        caption = config["stages"]["caption"]
        on = caption["enabled"] and caption["runner"] == "transformers"
        settings["tokenizer"] = caption["transformers"]["model"] if on else None
        settings["tokenizer_auto"] = True  # unavailable -> caption_tokens null instead of a failed job
    prompt = settings.get("prompt")
    if prompt in config["prompts"]:
        settings["prompt_spec"] = config["prompts"][prompt]  # a user-defined prompt travels along
    return shlex.quote(json.dumps(settings, sort_keys=True))


def stage_resource(stage, key):
    return config["stages"][stage]["resources"][key]


def journal_path(stage):
    return lambda wildcards: run_path("journal", stage, f"{wildcards.shard}.jsonl")


def upstream_outputs(*stages):
    """Input function: this shard's outputs of the enabled ``stages`` a rule reads (use with unpack)."""

    def inputs(wildcards):
        return {
            s: run_path("stages", s, f"{wildcards.shard}.parquet")
            for s in stages
            if config["stages"][s]["enabled"]
        }

    return inputs


def upstream_flags(*stages):
    """Params function: ``--upstream NAME=PATH`` for each enabled upstream stage of the rule."""

    def flags(wildcards, input):
        return " ".join(
            f"--upstream {s}={shlex.quote(input[s])}"
            for s in stages
            if config["stages"][s]["enabled"]
        )

    return flags


def retry_flag():
    return "--retry-failed" if config["retry_failed"] else ""


def gather_options():
    """Finishing steps of the merge: duplicate captions, tag keys and top-k of the dataset summary."""
    stages = config["stages"]
    opts = []
    if stages["clean"]["enabled"]:
        clean = stages["clean"]
        column = (clean["text_column"] or TEXT_COLUMN) if clean["replace_text"] else "clean_text"
        opts.append(f"--duplicates-of {shlex.quote(column)}")
    elif stages["caption"]["enabled"]:
        opts.append(f"--duplicates-of {shlex.quote(stages['caption']['output_column'])}")
    if stages["tags"]["enabled"]:
        from vidcap.stages.tags import effective_keys

        opts += [f"--tag-key {k}" for k in effective_keys(stages["tags"]["keys"])]
    opts.append(f"--top-k {int(config.get('report', {}).get('top_k', 20))}")
    return " ".join(opts)


def summary_outputs():
    """The dataset summary written by gather (vidcap/summary.py): JSON and long-form CSV."""
    return [
        os.path.join(RESULTS, f"{config['name']}.summary.json"),
        os.path.join(RESULTS, f"{config['name']}.summary.csv"),
    ]


def final_outputs():
    outputs = [
        os.path.join(RESULTS, f"{config['name']}.csv"),
        os.path.join(RESULTS, f"{config['name']}.parquet"),
        *summary_outputs(),
    ]
    if config["report"]["enabled"]:
        outputs.append(report_output())
    return outputs


def report_output():
    """The run's HTML report (rules/report.smk)."""
    return os.path.join(RESULTS, f"{config['name']}.report.html")


def report_config():
    """The validated config as shell-quoted JSON for `vidcap report --config-json` (secrets scrubbed)."""
    from vidcap.redact import public_config

    return shlex.quote(json.dumps(public_config(config), sort_keys=True))
