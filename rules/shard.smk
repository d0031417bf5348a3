rule shard:
    input:
        manifest=config["manifest"],
    output:
        shards=expand(run_path("shards", "{shard}.parquet"), shard=SHARDS),
        info=run_path("shards", "manifest.json"),
    log:
        run_path("logs", "shard.log"),
    benchmark:
        run_path("benchmarks", "shard.tsv")
    params:
        outdir=lambda wildcards, output: os.path.dirname(output.info),
        shard_size=config["shard_size"],
        media_root=(
            f"--media-root {shlex.quote(config['media_root'])}" if config["media_root"] else ""
        ),
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/vidcap.yaml"
    shell:
        "vidcap shard --manifest {input.manifest:q} --outdir {params.outdir:q}"
        " --shard-size {params.shard_size} {params.media_root} > {log:q} 2>&1"
