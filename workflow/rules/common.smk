# Config loading and validation: the schema fills every default and names a bad key; the
# checks across keys (sps.config.check_config) run before the DAG is built, so no job starts
# on a config that would fail inside it.
import json
import os
import shlex
from pathlib import Path

import yaml

from snakemake.utils import validate

from sps.config import check_config

SCHEMA = "../schemas/config.schema.yaml"


def coerce_cli_strings(value, schema):
    """Snakemake reads the leaves of a nested `--config` value (rl='{steps: 5}') as strings;
    give them back the type the schema asks for. Strings that do not parse stay strings, so
    validation still names the key."""
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        props, other = schema.get("properties", {}), schema.get("additionalProperties")
        other = (
            other if isinstance(other, dict) else {}
        )  # per_bench: any benchmark's name
        return {k: coerce_cli_strings(v, props.get(k, other)) for k, v in value.items()}
    if kind == "array" and isinstance(value, list):
        return [coerce_cli_strings(v, schema.get("items", {})) for v in value]
    if kind in ("integer", "number", "boolean") and isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        wanted = {"integer": (int,), "number": (int, float), "boolean": (bool,)}[kind]
        if isinstance(parsed, wanted) and (
            kind == "boolean" or not isinstance(parsed, bool)
        ):
            return parsed
    return value


with open(workflow.source_path(SCHEMA)) as schema_file:
    config.update(coerce_cli_strings(dict(config), yaml.safe_load(schema_file)))
# The schema fills every default and rejects unknown keys and wrong types, naming the key.
validate(config, SCHEMA)
# Keys that disagree (heads and hidden size, passk_k and group size, two thresholds that
# spell one run id, shards and n, ...): one error listing every problem, naming the keys.
check_config(config)


SEED = config["seed"]
BENCHMARKS = list(config["benchmarks"])
REAL_BENCHMARKS = [bench for bench in BENCHMARKS if bench != "countdown"]
SHARDS = list(range(config["sampling"]["shards"]))
FIGURES = [
    "passk",
    "diff",
    "ceiling",
    "dynamics",
    "sweep",
    "diversity",
    "checkpoints",
    "entropy",
]
FORMATS = list(config["plots"]["formats"])
