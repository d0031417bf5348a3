# Shared helpers: the plan (vidcap.workflow.Plan: run paths, shards, enabled stages, settings),
# input and params functions, and the `vidcap` command used by every rule.
import json
import os
import shlex

from snakemake.settings.types import DeploymentMethod

from vidcap.redact import public_config
from vidcap.stages import REGISTRY
from vidcap.io.tables import write_text
from vidcap.workflow import plan

PLAN = plan(config)
RUN = PLAN.run
SHARDS = PLAN.shards
PLAN.set_aside_damaged()


onstart:
    PLAN.lock_run()  # one Snakemake run per results folder, whatever its working directory


# Rules call `vidcap ...`: a shell function running this checkout's package with the python of the
# rule's conda/apptainer env when there is one, else with the interpreter running Snakemake.
# fd 9 stays on Snakemake's stderr (the console): a job whose log cannot be written (a full disk)
# prints its last line there instead (vidcap.errors.say_fatal).
_IN_ENV = bool(
    set(workflow.deployment_settings.deployment_method)
    & {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER}
)
_PYTHON = "python" if _IN_ENV else shlex.quote(sys.executable)
_VIDCAP_FUNCTION = (
    "exec 9>&2; "
    f"vidcap() {{ VIDCAP_CONSOLE_FD=9 PYTHONPATH={shlex.quote(workflow.basedir)}${{PYTHONPATH:+:$PYTHONPATH}}"
    f' {_PYTHON} -m vidcap "$@"; }}; '
    # a failed job shows the end of its log (its last line says what went wrong) on the console
    'vidcap_failed() { s=$?; echo "--- vidcap job failed; last lines of $1:" >&2; tail -n 12 "$1" >&2;'
    ' [ -s "$1" ] || echo "(the log is empty: it could not be written; the reason, when known, is above)" >&2;'
    " return $s; }; "
)
shell.prefix(_VIDCAP_FUNCTION.replace("{", "{{").replace("}", "}}"))


def stage_outputs(stage):
    return expand(str(RUN.output(stage, "{shard}")), shard=SHARDS)


def stage_inputs(stage):
    """Input function: the shard, the stage's settings file and this shard's outputs of the enabled
    stages ``stage`` reads."""

    def inputs(wildcards):
        out = {"shard": str(RUN.shard(wildcards.shard)), "settings": str(RUN.settings(stage))}
        out.update({s: str(RUN.output(s, wildcards.shard)) for s in PLAN.upstream(stage)})
        return out

    return inputs


def stage_flags(stage):
    """Params function: upstream outputs and the retry flag as shell words."""
    words = ["--retry-failed"] if config["retry_failed"] else []

    def flags(wildcards, input):
        upstream = [f"--upstream {s}={shlex.quote(input[s])}" for s in PLAN.upstream(stage)]
        return " ".join(words + upstream)

    return flags


def gpu_env(spec):
    """Params function: shell prefix exporting the job's GPU count to vidcap.gpu (GPU stages only)."""
    if not spec.gpu:
        return ""
    return lambda wildcards, resources: f"VIDCAP_GPUS_PER_JOB={resources.gpu} "
