rule sample:
    input:
        model=model_dir,
        data="results/data/{bench}/test.parquet",
    output:
        "results/samples/{model}/{bench}/shard{shard}.parquet",
    log:
        "logs/sample/{model}/{bench}/shard{shard}.log",
    conda:
        "../../envs/sps.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=gpus(),
    params:
        cfg=sample_cfg,
    shell:
        "sps sample --cfg {params.cfg} --model {input.model} --data {input.data} --shard {wildcards.shard} --out {output} --threads {threads} > {log} 2>&1"
