rule probe:
    input:
        shard=run_path("shards", "{shard}.parquet"),
    output:
        run_path("stages", "probe", "{shard}.parquet"),
    log:
        run_path("logs", "probe", "{shard}.log"),
    benchmark:
        run_path("benchmarks", "probe", "{shard}.tsv")
    params:
        journal=journal_path("probe"),
        settings=stage_settings("probe"),
        retry=retry_flag(),
    threads: stage_resource("probe", "threads")
    resources:
        mem_mb=stage_resource("probe", "mem_mb"),
        runtime=stage_resource("probe", "runtime"),
    conda:
        "../envs/vidcap.yaml"
    shell:
        "vidcap probe --shard {input.shard:q} --out {output:q} --journal {params.journal:q}"
        " --params {params.settings} {params.retry} > {log:q} 2>&1"
