rule caption:
    input:
        shard=run_path("shards", "{shard}.parquet"),
    output:
        run_path("stages", "caption", "{shard}.parquet"),
    log:
        run_path("logs", "caption", "{shard}.log"),
    benchmark:
        run_path("benchmarks", "caption", "{shard}.tsv")
    params:
        journal=journal_path("caption"),
        settings=stage_settings("caption"),
        retry=retry_flag(),
    threads: stage_resource("caption", "threads")
    resources:
        mem_mb=stage_resource("caption", "mem_mb"),
        runtime=stage_resource("caption", "runtime"),
        gpu=stage_resource("caption", "gpu"),
    conda:
        "../envs/vidcap.yaml"
    shell:
        "VIDCAP_GPUS_PER_JOB={resources.gpu} vidcap caption --shard {input.shard:q} --out {output:q} --journal {params.journal:q}"
        " --params {params.settings} {params.retry} > {log:q} 2>&1"
