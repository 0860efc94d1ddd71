rule train:
    input:
        base="results/models/base",
        data="results/data/{bench}/train.parquet",
    output:
        metrics="results/runs/{method}/{bench}/seed{seed}/metrics.parquet",
        final=directory("results/runs/{method}/{bench}/seed{seed}/final"),
        # evaluation snapshots after each of rl.eval_steps (sampled as {method}-step{k})
        evals=[
            directory(
                f"results/runs/{{method}}/{{bench}}/seed{{seed}}/evals/step{step}"
            )
            for step in EVAL_STEPS
        ],
    log:
        "logs/train/{method}/{bench}/seed{seed}.log",
    conda:
        "../../envs/sps.yaml"
    threads: 1
    resources:
        mem_mb=grow(8000),
        runtime=grow(240),
        gpu=model_gpus("train"),
    params:
        cfg=train_cfg,
        out_dir=out_dir,
        nproc=job_gpus("train"),
        logging=logging_file(),
    shell:
        "sps train --cfg {params.cfg} --base {input.base} --data {input.data} --out-dir {params.out_dir} --nproc {params.nproc} --threads {threads} --logging @{params.logging} > {log} 2>&1"
