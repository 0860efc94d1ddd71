# The built-in task is generated: sft traces pretrain the tiny base model, train feeds RL and
# test feeds sampling.
rule prepare_countdown:
    output:
        sft="results/data/countdown/sft.parquet",
        train="results/data/countdown/train.parquet",
        test="results/data/countdown/test.parquet",
    log:
        "logs/prepare_data/countdown.log",
    group:
        "prep"
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=grow(2000),
        runtime=grow(15),
    params:
        cfg=data_cfg("countdown"),
        out_dir=out_dir,
    shell:
        "sps prepare-data --cfg {params.cfg} --bench countdown --out-dir {params.out_dir} > {log} 2>&1"


# A real benchmark is read from data.sources (the hub or a local file); load.json counts the
# rows loaded and skipped.
rule prepare_benchmark:
    output:
        train="results/data/{bench}/train.parquet",
        test="results/data/{bench}/test.parquet",
        counts="results/data/{bench}/load.json",
    log:
        "logs/prepare_data/{bench}.log",
    wildcard_constraints:
        bench="|".join(REAL_BENCHMARKS) or "(?!)",
    group:
        "prep"
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=grow(4000),
        runtime=grow(30),
    params:
        cfg=lambda wildcards: data_cfg(wildcards.bench),
        out_dir=out_dir,
    shell:
        "sps prepare-data --cfg {params.cfg} --bench {wildcards.bench} --out-dir {params.out_dir} > {log} 2>&1"
