# Grades of one sample shard, row for row (problem_id, sample_idx, pred, correct, grade): one
# job per shard, like sampling, so grades map onto samples file for file, a failed or
# corrupt shard regrades alone, and each job builds one grading pool (on a cluster the
# profile's "score" group runs a model's grade jobs with its passk and diversity).
# params.grader is the grader's identity (version, source hash, math-verify), not read by the
# command: when it changes, Snakemake regrades and recounts, and no sample or train job reruns.
rule grade:
    input:
        samples="results/samples/{model}/{bench}/shard{shard}.parquet",
        data=test_data,
    output:
        "results/grades/{model}/{bench}/shard{shard}.parquet",
    log:
        "logs/grade/{model}/{bench}/shard{shard}.log",
    group:
        "score"
    conda:
        "../../envs/sps.yaml"
    threads: grade_threads
    resources:
        mem_mb=grade_mem,
        runtime=grow(30),
    params:
        cfg=grade_cfg(),
        grader=GRADER,
    shell:
        "sps grade --cfg {params.cfg} --data {input.data} --samples {input.samples} --out {output} > {log} 2>&1"
