rule motion:
    input:
        shard=run_path("shards", "{shard}.parquet"),
    output:
        run_path("stages", "motion", "{shard}.parquet"),
    log:
        run_path("logs", "motion", "{shard}.log"),
    benchmark:
        run_path("benchmarks", "motion", "{shard}.tsv")
    params:
        journal=journal_path("motion"),
        settings=stage_settings("motion"),
        retry=retry_flag(),
    threads: stage_resource("motion", "threads")
    resources:
        mem_mb=stage_resource("motion", "mem_mb"),
        runtime=stage_resource("motion", "runtime"),
    conda:
        "../envs/vidcap.yaml"
    shell:
        "vidcap motion --shard {input.shard:q} --out {output:q} --journal {params.journal:q}"
        " --params {params.settings} {params.retry} > {log:q} 2>&1"
