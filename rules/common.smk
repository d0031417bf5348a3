# Shared helpers: run layout, shard list, stage switches and the vidcap command line.
import json
import os
import shlex

from snakemake.settings.types import DeploymentMethod

from vidcap.shards import shard_names
from vidcap.tables import TableError, count_rows

# Stages in the order their columns appear in the merged table.
STAGE_ORDER = ["probe", "caption", "motion"]

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
    """Finishing steps of the merge that depend on stage settings."""
    motion = config["stages"]["motion"]
    if motion["enabled"] and motion["append_to_text"]:
        return "--append-motion-to text"
    return ""


def final_outputs():
    return [
        os.path.join(RESULTS, f"{config['name']}.csv"),
        os.path.join(RESULTS, f"{config['name']}.parquet"),
    ]
