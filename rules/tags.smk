rule tags:
    input:
        unpack(upstream_outputs("caption")),
        shard=run_path("shards", "{shard}.parquet"),
    output:
        run_path("stages", "tags", "{shard}.parquet"),
    log:
        run_path("logs", "tags", "{shard}.log"),
    benchmark:
        run_path("benchmarks", "tags", "{shard}.tsv")
    params:
        journal=journal_path("tags"),
        settings=stage_settings("tags"),
        upstream=upstream_flags("caption"),
        retry=retry_flag(),
    threads: stage_resource("tags", "threads")
    resources:
        mem_mb=stage_resource("tags", "mem_mb"),
        runtime=stage_resource("tags", "runtime"),
        gpu=stage_resource("tags", "gpu"),
    conda:
        "../envs/vidcap.yaml"
    shell:
        "VIDCAP_GPUS_PER_JOB={resources.gpu} vidcap tags --shard {input.shard:q} --out {output:q} --journal {params.journal:q}"
        " --params {params.settings} {params.upstream} {params.retry} > {log:q} 2>&1"
