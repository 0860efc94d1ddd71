"""Run and model ids: every id the workflow writes parses back to the settings it spells."""

import pytest

from sps.runs import BASELINES, Method, Model, parse_method, parse_model


@pytest.mark.parametrize(
    "method",
    [
        Method("grpo"),
        *[Method(b) for b in BASELINES],
        Method("fixed", period=4),
        Method("adaptive", threshold=0.5),
        Method("adaptive", threshold=1e-05),
        Method("fixed", period=1, irl={"lr_scale": 0.3}),
        Method("fixed", period=16, irl={"lr_scale": 1.0, "steps": 2, "tau": 0.5}),
        Method("fixed", period=2, irl={"steps": 3, "demos": "buffer"}),
    ],
)
def test_method_ids_round_trip(method):
    assert parse_method(method.id) == method
    for seed, step in [(None, None), (3, None), (None, 40), (2, 8)]:
        model = Model(method.id, seed, step)
        assert parse_model(model.id) == model


def test_ids_spell_the_settings():
    assert Method("fixed", period=4, irl={"lr_scale": 0.3, "steps": 2}).id == "sps-p4-lr0.3-m2"
    assert parse_method("sps-p1-lr1-buf").irl == {"lr_scale": 1.0, "demos": "buffer"}
    assert parse_model("sps-p4-lr0.3-s2-step10") == Model("sps-p4-lr0.3", 2, 10)
    assert parse_model("base") == Model("base")


@pytest.mark.parametrize("bad", ["sps", "sps-p", "sps-p4-m2-lr0.3", "grpo-x", "sps-q4", ""])
def test_bad_ids_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="is not a"):
        parse_method(bad)
