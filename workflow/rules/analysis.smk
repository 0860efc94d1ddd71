# Per-problem (n, c) of one model from its grades; every problem of the data must have
# exactly n samples, sample_idx 0..n-1, across the shards.
rule passk:
    input:
        grades=grade_files,
        data=test_data,
    output:
        "results/passk/{model}/{bench}.parquet",
    log:
        "logs/passk/{model}/{bench}.log",
    group:
        "score"
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=grow(2000),
        runtime=grow(10),
    params:
        n=samples_per_problem,
    shell:
        "sps passk --grades {input.grades} --data {input.data} --n {params.n} --out {output} > {log} 2>&1"


# Per-problem diversity of one model's samples with their grades (row for row); with the
# grade rule, the only reader of sample files.
rule diversity:
    input:
        samples=shard_files,
        grades=grade_files,
        data=test_data,
    output:
        "results/diversity/{model}/{bench}.parquet",
    log:
        "logs/diversity/{model}/{bench}.log",
    group:
        "score"
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=grow(2000),
        runtime=grow(10),
    params:
        cfg=analysis_cfg("ngram_unit"),
        n=samples_per_problem,
    shell:
        "sps diversity --samples {input.samples} --grades {input.grades} --data {input.data} --n {params.n} --cfg {params.cfg} --out {output} > {log} 2>&1"


# Every cached table of one benchmark: curves with intervals, paired differences, the ceiling
# (coverage, asymptote, crossover, entropy fit), checkpoint curves and diversity.
rule analyze:
    input:
        passk=passk_tables,
        metrics=metrics_tables,
        diversity=diversity_tables,
    output:
        [f"results/analysis/{{bench}}/{name}.parquet" for name in ANALYSIS_TABLES],
    log:
        "logs/analyze/{bench}.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=grow(2000),
        runtime=grow(10),
    params:
        passk=passk_pairs,
        metrics=metrics_pairs,
        diversity=diversity_pairs,
        cfg=analyze_cfg(),
        final_step=lambda wildcards: bench_settings(config, wildcards.bench, "rl")[
            "steps"
        ],
        out_dir=out_dir,
    shell:
        "sps analyze --bench {wildcards.bench} --passk {params.passk} --metrics {params.metrics}"
        " --diversity {params.diversity} --final-step {params.final_step} --cfg {params.cfg}"
        " --out-dir {params.out_dir} > {log} 2>&1"


# Problems loaded and skipped, the grader's unparsed, timeout and too-long rates per model, and
# how often the sampler stopped at the token limit.
rule grading:
    input:
        data=test_data,
        grades=lambda wildcards: sum(final_grades(wildcards).values(), []),
        samples=lambda wildcards: sum(final_samples(wildcards).values(), []),
    output:
        "results/analysis/{bench}/grading.parquet",
    log:
        "logs/grading/{bench}.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.data),
        grades=grading_pairs,
        samples=sample_pairs,
        n=config["sampling"]["n"],
    shell:
        "sps grading --bench {wildcards.bench} --data-dir {params.data_dir} --grades {params.grades} --samples {params.samples} --n {params.n} --out {output} > {log} 2>&1"
