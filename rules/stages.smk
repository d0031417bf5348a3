# One rule per registered stage (vidcap/stages/__init__.py: REGISTRY), one job per shard.
# Every job reads its shard (and the outputs of the stages it reads), journals finished rows,
# writes its output table and a stats file, and logs; resources are portable (profiles map them).
# A stage's settings live in settings/<stage>.json, rewritten only when they change (params
# trigger), which reruns the stage's jobs; the journal fingerprint then decides what is recomputed.


rule settings:
    output:
        str(RUN.settings("{stage}")),
    log:
        str(RUN.log("settings", "{stage}")),
    wildcard_constraints:
        stage="|".join(s.name for s in REGISTRY),
    localrule: True
    params:
        settings=lambda wildcards: PLAN.settings_json(wildcards.stage),
    run:
        write_text(output[0], f"{params.settings}\n")


for spec in REGISTRY:

    rule:
        name:
            spec.name
        input:
            unpack(stage_inputs(spec.name)),
        output:
            str(RUN.output(spec.name, "{shard}")),
        log:
            str(RUN.log(spec.name, "{shard}")),
        benchmark:
            str(RUN.benchmark(spec.name, "{shard}"))
        conda:
            "../envs/vidcap.yaml"
        threads: PLAN.threads(spec.name)
        resources:
            **PLAN.resources(spec.name),
        params:
            stage=spec.name,
            journal=str(RUN.journal(spec.name, "{shard}")),
            stats=str(RUN.stats(spec.name, "{shard}")),
            flags=stage_flags(spec.name),
            env=gpu_env(spec),
        # the shell string is evaluated when a job runs, after the loop: it must not use `spec`
        shell:
            "{params.env}VIDCAP_JOB_LOG={log:q} vidcap {params.stage} --shard {input.shard:q} --out {output:q}"
            " --journal {params.journal:q} --stats {params.stats:q} --params-file {input.settings:q}"
            " {params.flags} > {log:q} 2>&1 || vidcap_failed {log:q}"
