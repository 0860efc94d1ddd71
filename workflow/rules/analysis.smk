rule passk:
    input:
        shard_files,
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
    shell:
        "sps passk --samples {input} --out {output} > {log} 2>&1"


# Per-problem diversity of one model's samples; the only other rule that reads sample files.
rule diversity:
    input:
        shard_files,
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
    shell:
        "sps diversity --samples {input} --cfg {params.cfg} --out {output} > {log} 2>&1"


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
        cfg=analysis_cfg("bootstrap", "seed", "level", "entropy_window"),
        final_step=config["rl"]["steps"],
        out_dir=out_dir,
    shell:
        "sps analyze --bench {wildcards.bench} --passk {params.passk} --metrics {params.metrics}"
        " --diversity {params.diversity} --final-step {params.final_step} --cfg {params.cfg}"
        " --out-dir {params.out_dir} > {log} 2>&1"


# Problems loaded and skipped, and the grader's unparsed and timeout rates per model.
rule grading:
    input:
        data="results/data/{bench}/test.parquet",
        samples=lambda wildcards: sum(final_shards(wildcards).values(), []),
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
        samples=grading_pairs,
    shell:
        "sps grading --bench {wildcards.bench} --data-dir {params.data_dir} --samples {params.samples} --out {output} > {log} 2>&1"
