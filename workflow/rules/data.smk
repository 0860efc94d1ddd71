rule prepare_data:
    output:
        sft="results/data/{bench}/sft.parquet",
        train="results/data/{bench}/train.parquet",
        test="results/data/{bench}/test.parquet",
    log:
        "logs/prepare_data/{bench}.log",
    conda:
        "../../envs/sps.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        cfg=data_cfg(),
        out_dir=out_dir,
    shell:
        "sps prepare-data --cfg {params.cfg} --bench {wildcards.bench} --out-dir {params.out_dir} > {log} 2>&1"
