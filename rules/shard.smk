rule shard:
    input:
        manifest=config["manifest"],
    output:
        shards=expand(str(RUN.shard("{shard}")), shard=SHARDS),
        info=str(RUN.shard_info_path),
    log:
        str(RUN.log("shard")),
    benchmark:
        str(RUN.benchmark("shard"))
    conda:
        "../envs/vidcap.yaml"
    threads: 1  # --set-threads shard=N: row ids hashed in N processes (1 M rows and more; bench/scale)
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        outdir=lambda wildcards, output: os.path.dirname(output.info),
        shard_size=PLAN.shard_size,
        rows=PLAN.rows,
        bad_lines=config["prompt_file_bad_lines"],
        media_root=(
            f"--media-root {shlex.quote(config['media_root'])}" if config["media_root"] else ""
        ),
    shell:
        "vidcap shard --manifest {input.manifest:q} --outdir {params.outdir:q}"
        " --shard-size {params.shard_size} --expect-rows {params.rows} --workers {threads} --bad-lines {params.bad_lines} {params.media_root} > {log:q} 2>&1 || vidcap_failed {log:q}"
