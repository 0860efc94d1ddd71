if config["model"]["source"] == "tiny":

    # The built-in base model, pretrained from scratch on the countdown task's traces.
    rule pretrain_base:
        input:
            data="results/data/countdown/sft.parquet",
        output:
            directory("results/models/base"),
        log:
            "logs/pretrain_base.log",
        conda:
            "../../envs/sps.yaml"
        threads: 2
        resources:
            mem_mb=grow(8000),
            runtime=grow(120),
            gpu=model_gpus(),
        params:
            cfg=pretrain_cfg(),
        shell:
            "sps pretrain --cfg {params.cfg} --data {input.data} --out {output} --threads {threads} > {log} 2>&1"

else:

    # A pretrained model (hub id, directory or GGUF), converted once into a plain HF directory.
    rule convert_base:
        output:
            directory("results/models/base"),
        log:
            "logs/convert_base.log",
        conda:
            "../../envs/sps.yaml"
        threads: 2
        resources:
            mem_mb=grow(16000),
            runtime=grow(60),
        params:
            cfg=cfg_arg({"model": config["model"]}),
        shell:
            "sps convert-model --cfg {params.cfg} --out {output} > {log} 2>&1"
