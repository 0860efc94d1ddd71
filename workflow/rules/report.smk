# Figures and the summary read only the small cached tables (results/analysis, metrics), so
# `snakemake figures` redraws them without loading a model or a sample file.


rule plot_passk:
    input:
        passk=analysis_table("passk"),
        coverage=analysis_table("coverage"),
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
        kind="passk",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,
    shell:
        "sps plot {params.kind} --analysis-dir {params.analysis_dir} --style {params.style} --out-prefix {params.prefix} > {log} 2>&1"


use rule plot_passk as plot_diff with:
    input:
        analysis_table("diff"),
    output:
        figure_files("diff"),
    log:
        "logs/plot_diff/{bench}.log",
    params:
        kind="diff",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


use rule plot_passk as plot_ceiling with:
    input:
        analysis_table("coverage"),
        analysis_table("asymptote"),
        analysis_table("crossover"),
        analysis_table("passk"),
    output:
        figure_files("ceiling"),
    log:
        "logs/plot_ceiling/{bench}.log",
    params:
        kind="ceiling",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


use rule plot_passk as plot_sweep with:
    input:
        analysis_table("passk"),
    output:
        figure_files("sweep"),
    log:
        "logs/plot_sweep/{bench}.log",
    params:
        kind="sweep",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


use rule plot_passk as plot_diversity with:
    input:
        analysis_table("diversity"),
    output:
        figure_files("diversity"),
    log:
        "logs/plot_diversity/{bench}.log",
    params:
        kind="diversity",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


use rule plot_passk as plot_checkpoints with:
    input:
        analysis_table("checkpoints"),
    output:
        figure_files("checkpoints"),
    log:
        "logs/plot_checkpoints/{bench}.log",
    params:
        kind="checkpoints",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


use rule plot_passk as plot_entropy with:
    input:
        analysis_table("checkpoints"),
        analysis_table("entropy_fit"),
    output:
        figure_files("entropy"),
    log:
        "logs/plot_entropy/{bench}.log",
    params:
        kind="entropy",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


use rule plot_passk as plot_training with:
    input:
        analysis_table("checkpoints"),
    output:
        method_figure_files(),
    log:
        "logs/plot_training/{bench}/{method}.log",
    params:
        kind=lambda wildcards: f"training --method {wildcards.method}",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


# The sensitivity grid's heatmap (config `sensitivity`; drawn only when the grid is set).
use rule plot_passk as plot_sensitivity with:
    input:
        analysis_table("sensitivity"),
    output:
        figure_files("sensitivity"),
    log:
        "logs/plot_sensitivity/{bench}.log",
    params:
        kind="sensitivity",
        analysis_dir=lambda wildcards, input: os.path.dirname(input[0]),
        style=plot_style(),
        prefix=out_prefix,


rule plot_dynamics:
    input:
        metrics=metrics_tables,
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


rule summary:
    input:
        analysis=all_analysis_tables(),
        metrics=all_metrics_tables(),
    output:
        md=report(
            "results/summary.md", caption="../report/summary.rst", category="Summary"
        ),
        csv=summary_csvs(),
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
        cfg=analysis_cfg("summary_ks"),
    shell:
        "sps summary --analysis-dir {params.analysis_dirs} --metrics {params.metrics} --cfg {params.cfg} --out {output.md} > {log} 2>&1"


# The figures derived with `use rule` do not inherit `localrule`; on a cluster they, too, run
# on the submit host (seconds each) instead of waiting in the queue.
localrules:
    plot_diff,
    plot_ceiling,
    plot_sweep,
    plot_diversity,
    plot_checkpoints,
    plot_entropy,
    plot_training,
    plot_sensitivity,
