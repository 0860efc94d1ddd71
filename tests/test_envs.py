"""envs/*.yaml cannot be built here (no conda channels): check they parse and match pyproject."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def _spec(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_env_files_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): _spec(r) for r in project["dependencies"]}
    env_files = sorted((ROOT / "envs").glob("*.yaml"))
    assert env_files
    for path in env_files:
        env = yaml.safe_load(path.read_text())
        assert "conda-forge" in env["channels"]
        deps = [d for d in env["dependencies"] if isinstance(d, str)]
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        listed = {_name(d): _spec(d) for d in deps + pip if not d.startswith("-")}
        for name, spec in wanted.items():
            assert listed.get(name) == spec, (
                f"{path.name}: {name} is {listed.get(name)}, pyproject says {spec}"
            )
        assert any(d.startswith("-e ..") or d == ".." for d in pip), "installs the package"


def test_every_rule_names_an_existing_env():
    for rules in (ROOT / "workflow/rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().is_file(), (rules.name, env)
