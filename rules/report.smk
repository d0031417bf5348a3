# The run's HTML report (docs/report.md): gallery, distributions, throughput/cost, failures, provenance.
# Registered with report() so `snakemake --report report.zip` carries it too.


rule run_config:
    output:
        str(RUN.config_json),
    log:
        str(RUN.log("run_config")),
    localrule: True
    params:
        config=json.dumps(public_config(config), indent=1, sort_keys=True),
    run:
        write_text(output[0], f"{params.config}\n")


rule report:
    input:
        table=str(RUN.root / "table"),
        info=str(RUN.shard_info_path),
        config=str(RUN.config_json),
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
    shell:
        "vidcap report {params.run:q} --table {input.table:q}"
        " --threads {threads} -o {output.html:q} > {log:q} 2>&1 || vidcap_failed {log:q}"
