rule plot_passk:
    input:
        passk="results/analysis/{bench}/passk.parquet",
        coverage="results/analysis/{bench}/coverage.parquet",
    output:
        figure_files("passk"),
    log:
        "logs/plot_passk/{bench}.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        analysis_dir=lambda wildcards, input: os.path.dirname(input.passk),
        style=plot_style(),
        prefix=out_prefix,
    shell:
        "sps plot passk --analysis-dir {params.analysis_dir} --style {params.style} --out-prefix {params.prefix} > {log} 2>&1"


rule plot_dynamics:
    input:
        metrics_tables,
    output:
        figure_files("dynamics"),
    log:
        "logs/plot_dynamics/{bench}.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        metrics=metrics_pairs,
        style=plot_style(),
        prefix=out_prefix,
    shell:
        "sps plot dynamics --metrics {params.metrics} --style {params.style} --out-prefix {params.prefix} > {log} 2>&1"


rule plot_sweep:
    input:
        passk="results/analysis/{bench}/passk.parquet",
        coverage="results/analysis/{bench}/coverage.parquet",
    output:
        figure_files("sweep"),
    log:
        "logs/plot_sweep/{bench}.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        analysis_dir=lambda wildcards, input: os.path.dirname(input.passk),
        style=plot_style(),
        prefix=out_prefix,
    shell:
        "sps plot sweep --analysis-dir {params.analysis_dir} --style {params.style} --out-prefix {params.prefix} > {log} 2>&1"


rule summary:
    input:
        analysis=all_analysis_tables(),
        metrics=all_metrics_tables(),
    output:
        report(
            "results/summary.md", caption="../report/summary.rst", category="Summary"
        ),
    log:
        "logs/summary.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        analysis_dirs=analysis_dirs,
        metrics=summary_metrics_pairs,
    shell:
        "sps summary --analysis-dir {params.analysis_dirs} --metrics {params.metrics} --out {output} > {log} 2>&1"
