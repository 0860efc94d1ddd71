"""Config: the schema fills defaults, and bad keys or types are named in the error."""

import re

import pytest
import yaml

from sps import config as C


def test_defaults_fill_every_section():
    cfg = C.validate({})
    assert cfg["rl"]["adv_scale"] == "group"
    assert cfg["irl"]["objective"] == "group_fkl"
    assert cfg["sampling"]["n"] >= 256
    assert len(cfg["sps"]["periods"]) >= 3
    # every typed view builds from the filled sections
    C.section(C.RLConfig, cfg["rl"])
    C.section(C.IRLConfig, cfg["irl"])
    C.section(C.TaskConfig, cfg["task"])
    C.section(C.ModelConfig, cfg["model"])
    C.section(C.PretrainConfig, cfg["pretrain"])
    C.section(C.SamplingConfig, cfg["sampling"])


def test_unknown_key_is_named():
    with pytest.raises(C.ConfigError, match=r"rl\.stepz"):
        C.validate({"rl": {"stepz": 3}})
    with pytest.raises(C.ConfigError, match="bogus"):
        C.validate({"bogus": 1})


def test_wrong_type_is_named():
    with pytest.raises(C.ConfigError, match=r"rl\.steps"):
        C.validate({"rl": {"steps": "many"}})
    with pytest.raises(C.ConfigError, match=r"irl\.support"):
        C.validate({"irl": {"support": "some"}})


def test_load_config_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sampling:\n  n: -1\n")
    with pytest.raises(C.ConfigError, match=r"(?s)bad.yaml.*sampling\.n"):
        C.load_config(bad)


@pytest.mark.parametrize("name", ["config.yaml", "ci.yaml"])
def test_shipped_configs_validate(name, repo_root):
    cfg = C.load_config(repo_root / "config" / name)
    assert cfg["sampling"]["n"] % cfg["sampling"]["shards"] == 0


def test_cfg_arg_passes_extra_keys_through():
    out = C.parse_cfg_arg(
        '{"seed": 3, "rl": {"steps": 2}, "schedule": {"kind": "none"}}', extra=("schedule",)
    )
    assert out["schedule"] == {"kind": "none"} and out["rl"]["steps"] == 2
    assert "sampling" not in out  # only the sections given are filled
    with pytest.raises(C.ConfigError, match="schedule"):
        C.parse_cfg_arg('{"schedule": {}}')


def test_schema_is_shared_with_the_workflow(repo_root):
    linked = repo_root / "workflow" / "schemas" / "config.schema.yaml"
    assert yaml.safe_load(linked.read_text()) == C.schema()


def _flat_defaults(node: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, sub in node.get("properties", {}).items():
        name = f"{prefix}{key}"
        if sub.get("type") == "object" and not sub.get("default"):
            out.update(_flat_defaults(sub, name + "."))
        else:
            out[name] = sub["default"]
    return out


def test_config_readme_documents_every_key_with_its_default(repo_root):
    """config/README.md lists `key` (default) for every schema key; the two must agree."""
    documented = dict(
        re.findall(r"^- `([\w.]+)` \(([^)]*)\)", (repo_root / "config/README.md").read_text(), re.M)
    )
    for key, default in _flat_defaults(C.schema()).items():
        assert key in documented, f"config/README.md does not document {key}"
        value = yaml.safe_load(documented[key])
        if isinstance(value, str) and isinstance(default, float):
            value = float(value)  # YAML 1.1 reads 1e-06 as a string
        assert value == default, (key, documented[key], default)


def test_cli_reports_a_bad_cfg_key_and_exits_2(capsys, tmp_path):
    from sps.cli import main

    with pytest.raises(SystemExit) as stop:
        main(
            [
                "prepare-data",
                "--cfg",
                '{"task": {"cnt": 3}}',
                "--bench",
                "countdown",
                "--out-dir",
                str(tmp_path),
            ]
        )
    assert stop.value.code == 2
    assert "task.cnt" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_every_cli_command_has_working_help(capsys):
    from sps.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([name, "--help"])
        assert stop.value.code == 0, name
        for action in sub._actions:  # nested commands (sps plot KIND)
            for kind in getattr(action, "choices", None) or {}:
                if isinstance(action.choices, dict):
                    with pytest.raises(SystemExit):
                        parser.parse_args([name, kind, "--help"])
    assert "train" in capsys.readouterr().out
