rule clean:
    input:
        unpack(upstream_outputs("caption", "motion")),
        shard=run_path("shards", "{shard}.parquet"),
    output:
        run_path("stages", "clean", "{shard}.parquet"),
    log:
        run_path("logs", "clean", "{shard}.log"),
    benchmark:
        run_path("benchmarks", "clean", "{shard}.tsv")
    params:
        journal=journal_path("clean"),
        settings=stage_settings("clean"),
        upstream=upstream_flags("caption", "motion"),
        retry=retry_flag(),
    threads: stage_resource("clean", "threads")
    resources:
        mem_mb=stage_resource("clean", "mem_mb"),
        runtime=stage_resource("clean", "runtime"),
    conda:
        "../envs/vidcap.yaml"
    shell:
        "vidcap clean --shard {input.shard:q} --out {output:q} --journal {params.journal:q}"
        " --params {params.settings} {params.upstream} {params.retry} > {log:q} 2>&1"
