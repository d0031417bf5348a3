# vidcap: manifest -> shards -> stages (probe, ...) -> one merged table.
# Helpers and input functions live in rules/common.smk; one file per stage under rules/.
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)
from vidcap.config import validate_config  # noqa: E402


configfile: "config/config.yaml"


config = validate_config(config)  # the schema ships in the package: vidcap/schema/


include: "rules/common.smk"
include: "rules/shard.smk"
include: "rules/probe.smk"
include: "rules/caption.smk"
include: "rules/motion.smk"
include: "rules/clean.smk"
include: "rules/tags.smk"
include: "rules/gather.smk"
include: "rules/report.smk"


localrules:
    all,


rule all:
    input:
        final_outputs(),
