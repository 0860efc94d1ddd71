# Completions, token counts, log-probs and finish reasons only: grades come from the grade
# rule, so a grader change never resamples.
rule sample:
    input:
        model=model_dir,
        data=test_data,
    output:
        "results/samples/{model}/{bench}/shard{shard}.parquet",
    log:
        "logs/sample/{model}/{bench}/shard{shard}.log",
    conda:
        "../../envs/sps.yaml"
    threads: 1
    resources:
        mem_mb=grow(8000),
        runtime=grow(120),
        gpu=model_gpus("sample"),
    params:
        cfg=sample_cfg,
        gpus=job_gpus("sample"),
    shell:
        "sps sample --cfg {params.cfg} --model {input.model} --data {input.data} --shard {wildcards.shard} --gpus {params.gpus} --out {output} --threads {threads} > {log} 2>&1"
