rule gather:
    input:
        info=str(RUN.shard_info_path),
        shards=expand(str(RUN.shard("{shard}")), shard=SHARDS),
        stages=[stage_outputs(s) for s in PLAN.stages],
    output:
        **{k: directory(v) if k == "table" else v for k, v in PLAN.gather_outputs().items()},
    log:
        str(RUN.log("gather")),
    benchmark:
        str(RUN.benchmark("gather"))
    conda:
        "../envs/vidcap.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        run=lambda wildcards, input: os.path.dirname(os.path.dirname(input.info)),
        stages=" ".join(f"--stage {s}" for s in PLAN.stages),
        options=shlex.join(PLAN.gather_options()),
        single=shlex.join(
            f"--output={p}" for k, p in PLAN.gather_outputs().items() if k in ("csv", "parquet")
        ),
    shell:
        "vidcap gather --run {params.run:q} {params.stages} {params.options} {params.single}"
        " --summary-json {output.summary_json:q} --summary-csv {output.summary_csv:q} > {log:q} 2>&1 || vidcap_failed {log:q}"


# A step of its own (the shots step, stages.shots on): every clip of every video, the manifest of
# the next step. Its outputs come from the stage's plan hooks (Plan.step_outputs).
rule clips:
    input:
        info=str(RUN.shard_info_path),
        shards=expand(str(RUN.shard("{shard}")), shard=SHARDS),
        stages=[stage_outputs(s) for s in PLAN.stages],
    output:
        **PLAN.step_outputs(),
    log:
        str(RUN.log("clips")),
    benchmark:
        str(RUN.benchmark("clips"))
    conda:
        "../envs/vidcap.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        run=lambda wildcards, input: os.path.dirname(os.path.dirname(input.info)),
    shell:
        "vidcap gather --run {params.run:q} --clips -o {output.parquet:q} -o {output.csv:q}"
        " --clips-failed {output.failed:q} > {log:q} 2>&1 || vidcap_failed {log:q}"
