# The run's HTML report (docs/report.md): gallery, distributions, throughput/cost, failures, provenance.
# Registered with report() so `snakemake --report report.zip` carries it too.


rule report:
    input:
        table=str(RUN.table("parquet")),
        info=str(RUN.shard_info_path),
    output:
        html=report(
            str(RUN.report),
            category="vidcap",
            labels={"run": config["name"], "file": "report.html"},
        ),
    log:
        str(RUN.log("report")),
    benchmark:
        str(RUN.benchmark("report"))
    conda:
        "../envs/vidcap.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        run=lambda wildcards, input: os.path.dirname(os.path.dirname(input.info)),
        config=report_config(),
    shell:
        "vidcap report {params.run:q} --table {input.table:q} --config-json {params.config}"
        " --threads {threads} -o {output.html:q} > {log:q} 2>&1"
