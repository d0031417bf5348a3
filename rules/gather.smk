rule gather:
    input:
        info=run_path("shards", "manifest.json"),
        shards=expand(run_path("shards", "{shard}.parquet"), shard=SHARDS),
        stages=[stage_outputs(s) for s in enabled_stages()],
    output:
        csv=final_outputs()[0],
        parquet=final_outputs()[1],
        summary_json=summary_outputs()[0],
        summary_csv=summary_outputs()[1],
    log:
        run_path("logs", "gather.log"),
    benchmark:
        run_path("benchmarks", "gather.tsv")
    params:
        shards=lambda wildcards, input: os.path.dirname(input.info),
        stages=" ".join(
            f"--stage {s}={shlex.quote(run_path('stages', s))}" for s in enabled_stages()
        ),
        options=gather_options(),
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/vidcap.yaml"
    shell:
        "vidcap gather --shards {params.shards:q} {params.stages} {params.options}"
        " -o {output.csv:q} -o {output.parquet:q}"
        " --summary-json {output.summary_json:q} --summary-csv {output.summary_csv:q} > {log:q} 2>&1"
