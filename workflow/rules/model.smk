rule pretrain_base:
    input:
        data=f"results/data/{PRETRAIN_BENCH}/sft.parquet",
    output:
        directory("results/models/base"),
    log:
        "logs/pretrain_base.log",
    conda:
        "../../envs/sps.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=gpus(),
    params:
        cfg=pretrain_cfg(),
    shell:
        "sps pretrain --cfg {params.cfg} --data {input.data} --out {output} --threads {threads} > {log} 2>&1"
