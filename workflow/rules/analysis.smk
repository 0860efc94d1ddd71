rule passk:
    input:
        shard_files,
    output:
        "results/passk/{model}/{bench}.parquet",
    log:
        "logs/passk/{model}/{bench}.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "sps passk --samples {input} --out {output} > {log} 2>&1"


rule analyze:
    input:
        passk_tables,
    output:
        passk="results/analysis/{bench}/passk.parquet",
        coverage="results/analysis/{bench}/coverage.parquet",
        unsolved="results/analysis/{bench}/unsolved.parquet",
    log:
        "logs/analyze/{bench}.log",
    localrule: True
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        passk=passk_pairs,
        out_dir=out_dir,
    shell:
        "sps analyze --bench {wildcards.bench} --passk {params.passk} --out-dir {params.out_dir} > {log} 2>&1"
