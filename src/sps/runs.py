"""Run and model ids: how a trained run's settings are spelled in paths, defined once.

The workflow names its jobs with these ids and the analysis reads settings back from them, so
both import this module. A method id carries every setting that differs between trained runs
(two runs never share a path):

    grpo | sps-p{N} | sps-a{T} | entropy-bonus | w-reinforce | unlikeliness | passk-training

and an SPS id may carry IRL overrides (the sensitivity grid), always in this order:

    -lr{irl.lr_scale}  -m{irl.steps}  -tau{irl.tau}  -buf (irl.demos: buffer)

e.g. `sps-p4-lr0.3-m2`. A model id adds the training seed and an evaluation snapshot,
`{method}[-s{seed}][-step{k}]`; `base` is the base model. Numbers are written with `:g`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BASELINES = ("entropy-bonus", "w-reinforce", "unlikeliness", "passk-training")
_NUM = r"[0-9][0-9.e+-]*"
SPS_PATTERN = (
    rf"sps-(?:p(?P<period>\d+)|a(?P<threshold>{_NUM}))"
    rf"(?:-lr(?P<lr_scale>{_NUM}))?(?:-m(?P<steps>\d+))?(?:-tau(?P<tau>{_NUM}))?(?P<buf>-buf)?"
)
METHOD_PATTERN = "|".join(["grpo", SPS_PATTERN, *map(re.escape, BASELINES)])
# the same without named groups, for Snakemake wildcard constraints
METHOD_WILDCARD = re.sub(r"\(\?P<\w+>", "(?:", METHOD_PATTERN)
MODEL_RE = re.compile(rf"(?P<method>{METHOD_WILDCARD})(?:-s(?P<seed>\d+))?(?:-step(?P<step>\d+))?")
SPS_RE = re.compile(SPS_PATTERN)


@dataclass(frozen=True)
class Method:
    """A trained method: its kind and the settings its id spells."""

    kind: str  # grpo | fixed | adaptive | a baseline's name
    period: int | None = None  # fixed SPS: N
    threshold: float | None = None  # adaptive SPS: T
    irl: dict = field(default_factory=dict)  # IRL overrides: lr_scale, steps, tau, demos

    @property
    def id(self) -> str:
        if self.kind in ("grpo", *BASELINES):
            return self.kind
        head = f"sps-p{self.period}" if self.kind == "fixed" else f"sps-a{self.threshold:g}"
        irl = self.irl
        tail = f"-lr{irl['lr_scale']:g}" if "lr_scale" in irl else ""
        tail += f"-m{irl['steps']}" if "steps" in irl else ""
        tail += f"-tau{irl['tau']:g}" if "tau" in irl else ""
        tail += "-buf" if irl.get("demos") == "buffer" else ""
        return head + tail


def parse_method(method: str) -> Method:
    """The Method a method id spells; ValueError names the id when it is not one."""
    if method == "grpo" or method in BASELINES:
        return Method(method)
    m = SPS_RE.fullmatch(method)
    if m is None:
        raise ValueError(f"{method!r} is not a method id (grpo, sps-p{{N}}, sps-a{{T}}, ...)")
    irl: dict = {}
    if m["lr_scale"]:
        irl["lr_scale"] = float(m["lr_scale"])
    if m["steps"]:
        irl["steps"] = int(m["steps"])
    if m["tau"]:
        irl["tau"] = float(m["tau"])
    if m["buf"]:
        irl["demos"] = "buffer"
    if m["period"]:
        return Method("fixed", period=int(m["period"]), irl=irl)
    return Method("adaptive", threshold=float(m["threshold"]), irl=irl)


@dataclass(frozen=True)
class Model:
    """A sampled model: `base`, or a method's final policy or snapshot for one seed."""

    method: str  # "base" for the base model
    seed: int | None = None  # None: the first (default) seed
    step: int | None = None  # None: the final policy

    @property
    def id(self) -> str:
        seed = "" if self.seed is None else f"-s{self.seed}"
        step = "" if self.step is None else f"-step{self.step}"
        return f"{self.method}{seed}{step}"


def parse_model(model: str) -> Model:
    """The Model a model id spells; ValueError names the id when it is not one."""
    if model == "base":
        return Model("base")
    m = MODEL_RE.fullmatch(model)
    if m is None:
        raise ValueError(
            f"{model!r} is not a model id (base or {{method}}[-s{{seed}}][-step{{k}}])"
        )
    seed = int(m["seed"]) if m["seed"] else None
    return Model(m["method"], seed, int(m["step"]) if m["step"] else None)
