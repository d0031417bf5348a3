# The run's HTML report (docs/report.md): gallery, distributions, throughput/cost, failures, provenance.
# Registered with report() so `snakemake --report report.zip` carries it too.


rule report:
    input:
        table=str(RUN.table("parquet")),
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
    params:
        run=str(RUN.root),
        config=report_config(),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/vidcap.yaml"
    shell:
        "vidcap report {params.run:q} --table {input.table:q} --config-json {params.config}"
        " --threads {threads} -o {output.html:q} > {log:q} 2>&1"
