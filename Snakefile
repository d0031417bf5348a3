# vidcap: manifest -> shards -> stages (probe, caption, ...) -> one merged table -> report.
# Helpers and input functions live in rules/common.smk; rules/stages.smk makes one rule per
# registered stage (vidcap/stages/__init__.py).
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)
from vidcap.workflow import validated  # noqa: E402


configfile: "config/config.yaml"


# checked against the schema shipped in the package (vidcap/schema/); a bad value stops here with
# one line naming the key and what is allowed
config = validated(config)


include: "rules/common.smk"
include: "rules/shard.smk"
include: "rules/stages.smk"
include: "rules/gather.smk"
include: "rules/report.smk"


localrules:
    all,


rule all:
    input:
        PLAN.final_outputs(),
