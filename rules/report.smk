# The run's HTML report (docs/report.md): gallery, distributions, throughput/cost, failures, provenance.
# Registered with report() so `snakemake --report report.zip` carries it too.


rule report:
    input:
        table=os.path.join(RESULTS, f"{config['name']}.parquet"),
    output:
        html=report(
            report_output(),
            category="vidcap",
            labels={"run": config["name"], "file": "report.html"},
        ),
    log:
        run_path("logs", "report.log"),
    benchmark:
        run_path("benchmarks", "report.tsv")
    params:
        run=lambda wildcards, output: os.path.join(os.path.dirname(output.html), config["name"]),
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
