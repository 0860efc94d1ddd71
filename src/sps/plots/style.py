"""One look for every figure: Okabe-Ito colours, a fixed colour per model id, atomic saving.

Colour depends only on the model id, so a model looks the same in every figure whichever
other models are present: base black, grpo vermillion, sps-p{N} a blue sequence that darkens
with log2 N (N = 1 light ... N >= 64 darkest), any other id a remaining Okabe-Ito colour.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap, to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sps.io import atomic_path  # noqa: E402
from sps.runs import parse_method, parse_model  # noqa: E402

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
GREY = "#7F7F7F"
_SPS_CMAP = LinearSegmentedColormap.from_list("sps", ["#56B4E9", "#0072B2", "#002D4D"])
_OTHER = [OKABE_ITO[c] for c in ("green", "purple", "orange")]  # yellow is too pale on white
_SPS_RE = re.compile(r"^sps-p(\d+)$")
DEFAULT_STYLE: dict[str, Any] = {"formats": ["png", "pdf"], "dpi": 150, "width": 6.0, "height": 4.0}
RC = {
    "font.size": 10,
    "axes.titlesize": 10,
    "figure.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
    "svg.hashsalt": "sps",  # stable ids, so an unchanged figure is byte-identical
}


def sps_period(model: str) -> int | None:
    """N for an id "sps-p{N}", else None."""
    match = _SPS_RE.match(model)
    return int(match.group(1)) if match else None


def color_for(model: str) -> str:
    """The fixed colour of a model id."""
    if model == "base":
        return OKABE_ITO["black"]
    if model == "grpo":
        return OKABE_ITO["vermillion"]
    period = sps_period(model)
    if period is not None:
        t = min(max(period, 1).bit_length() - 1, 6) / 6  # log2 N, clipped to [0, 6]
        return to_hex(_SPS_CMAP(t))
    return _OTHER[zlib.crc32(model.encode()) % len(_OTHER)]


def marker_for(model: str) -> str:
    return {"base": "s", "grpo": "o"}.get(model, "D" if sps_period(model) else "v")


def label_for(model: str) -> str:
    """Legend text: base, GRPO, SPS (N=4), or the id itself."""
    period = sps_period(model)
    if period is not None:
        return f"SPS (N={period})"
    return {"grpo": "GRPO"}.get(model, model)


def model_order(models: list[str]) -> list[str]:
    """base, grpo, sps-p{N} by N, then any other id alphabetically."""

    def key(model: str) -> tuple[int, int, str]:
        period = sps_period(model)
        rank = {"base": 0, "grpo": 1}.get(model, 2 if period is not None else 3)
        return rank, period or 0, model

    return sorted(dict.fromkeys(models), key=key)


def is_grid_cell(model: str) -> bool:
    """A model id whose method carries IRL overrides (a sensitivity-grid cell, sps.runs)."""
    try:
        return bool(parse_method(parse_model(model).method).irl)
    except ValueError:
        return False


def figure_models(models: list[str]) -> list[str]:
    """model_order without the sensitivity-grid cells: they have a heatmap of their own
    (`sps plot sensitivity`), and twenty curves in one panel cannot be read. When every
    model is a grid cell, all are kept."""
    ordered = model_order(models)
    return [m for m in ordered if not is_grid_cell(m)] or ordered


def load_style(spec: str | None) -> dict[str, Any]:
    """Style from a JSON string or @file (.json/.yaml); missing keys take the config defaults."""
    raw: dict[str, Any] = {}
    if spec:
        if spec.startswith("@"):
            raw = yaml.safe_load(Path(spec[1:]).read_text()) or {}  # YAML is a superset of JSON
        else:
            raw = json.loads(spec)
    unknown = set(raw) - set(DEFAULT_STYLE)
    if unknown:
        raise ValueError(f"unknown style keys {sorted(unknown)}; allowed {sorted(DEFAULT_STYLE)}")
    style = {**DEFAULT_STYLE, **raw}
    bad = [f for f in style["formats"] if f not in ("png", "pdf", "svg")]
    if bad or not style["formats"]:
        raise ValueError(
            f"formats must be a non-empty subset of png, pdf, svg; got {style['formats']}"
        )
    if style["dpi"] < 50 or style["width"] <= 0 or style["height"] <= 0:
        raise ValueError(f"need dpi >= 50 and positive width/height; got {style}")
    return style


def styled() -> Any:
    """Context manager applying the shared rc settings; wrap all drawing and saving in it."""
    return plt.rc_context(RC)


def new_figure(
    style: dict[str, Any], nrows: int = 1, ncols: int = 1, height_scale: float = 1.0, **kwargs: Any
) -> tuple[Figure, Any]:
    """Figure and axes sized from the style (height scaled for stacked panels)."""
    size = (style["width"], style["height"] * height_scale)
    return plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kwargs)


def figure_legend(fig: Figure, handles: list[Any], loc: str = "outside upper center") -> None:
    """One legend for the whole figure, in as few rows as fit (at most 5 entries a row)."""
    rows = -(-len(handles) // 5)
    fig.legend(handles=handles, loc=loc, ncol=-(-len(handles) // rows))


def band_line(
    ax: Axes, x: Any, y: Any, low: Any, high: Any, color: Any, alpha: float, **line: Any
) -> Line2D:
    """A line over its interval band (same colour, no edge); line keywords go to ax.plot."""
    ax.fill_between(x, low, high, color=color, alpha=alpha, lw=0)
    (handle,) = ax.plot(x, y, color=color, **line)
    return handle


_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}


def save_figure(fig: Figure, out_prefix: str | Path, style: dict[str, Any]) -> list[Path]:
    """Write {out_prefix}.{fmt} for every format atomically, close the figure, return the paths."""
    paths = []
    for fmt in style["formats"]:
        path = Path(f"{out_prefix}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=style["dpi"], metadata=_METADATA[fmt])
        paths.append(path)
    plt.close(fig)
    return paths
