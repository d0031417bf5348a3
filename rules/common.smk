# Shared helpers: the plan (vidcap.workflow.Plan: run paths, shards, enabled stages, settings),
# input and params functions, and the `vidcap` command used by every rule.
import json
import os
import shlex

from snakemake.settings.types import DeploymentMethod

from vidcap.redact import public_config
from vidcap.stages import REGISTRY
from vidcap.workflow import Plan

PLAN = Plan(config)
RUN = PLAN.run
SHARDS = PLAN.shards

# Rules call `vidcap ...`: a shell function running this checkout's package with the python of the
# rule's conda/apptainer env when there is one, else with the interpreter running Snakemake.
_IN_ENV = bool(
    set(workflow.deployment_settings.deployment_method)
    & {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER}
)
_PYTHON = "python" if _IN_ENV else shlex.quote(sys.executable)
_VIDCAP_FUNCTION = (
    f"vidcap() {{ PYTHONPATH={shlex.quote(workflow.basedir)}${{PYTHONPATH:+:$PYTHONPATH}}"
    f' {_PYTHON} -m vidcap "$@"; }}; '
)
shell.prefix(_VIDCAP_FUNCTION.replace("{", "{{").replace("}", "}}"))


def stage_outputs(stage):
    return expand(str(RUN.output(stage, "{shard}")), shard=SHARDS)


def stage_inputs(stage):
    """Input function: the shard and this shard's outputs of the enabled stages ``stage`` reads."""

    def inputs(wildcards):
        out = {"shard": str(RUN.shard(wildcards.shard))}
        out.update({s: str(RUN.output(s, wildcards.shard)) for s in PLAN.upstream(stage)})
        return out

    return inputs


def stage_flags(stage):
    """Params function: the job's settings, upstream outputs and retry flag as shell words."""
    words = ["--params", shlex.quote(PLAN.settings_json(stage))]
    if config["retry_failed"]:
        words.append("--retry-failed")

    def flags(wildcards, input):
        upstream = [f"--upstream {s}={shlex.quote(input[s])}" for s in PLAN.upstream(stage)]
        return " ".join(words + upstream)

    return flags


def gpu_env(spec):
    """Params function: shell prefix exporting the job's GPU count to vidcap.gpu (GPU stages only)."""
    if not spec.gpu:
        return ""
    return lambda wildcards, resources: f"VIDCAP_GPUS_PER_JOB={resources.gpu} "


def report_config():
    """The validated config as shell-quoted JSON for `vidcap report --config-json` (secrets scrubbed)."""
    return shlex.quote(json.dumps(public_config(config), sort_keys=True))
