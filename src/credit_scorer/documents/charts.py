"""Charts of the Annex IV document, as SVG text.

Each function is pure: the same data give byte-identical SVG (fixed ``svg.hashsalt``,
no date in the metadata, glyphs drawn as paths so no font is needed to view them).
Figures are built with :class:`matplotlib.figure.Figure` and never touch ``pyplot``,
so no GUI backend and no global figure state are involved.

Scores are probabilities of default; an applicant is *declined* when
P(default) ≥ the decision threshold and *approved* otherwise.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any, Final

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from matplotlib.typing import LegendLocType, RcKeyType
from sklearn.metrics import roc_auc_score, roc_curve

from credit_scorer.domain.evaluate import CALIBRATION_BINS

FIGURE_SIZE: Final = (6.0, 3.2)
"""Inches; fits the 17 cm text width of an A4 page with 2 cm margins."""

SVG_HASH_SALT: Final = "credit-scorer-annex-iv"
"""Fixed salt for the ids matplotlib writes into SVG, so output does not vary between runs."""

INSUFFICIENT_SAMPLE: Final = "insufficient sample"

# Okabe-Ito colours: distinguishable with colour-blindness and in greyscale print.
BLUE: Final = "#0072B2"
ORANGE: Final = "#D55E00"
GREEN: Final = "#009E73"
GREY: Final = "#7F7F7F"

SQUARE_AXES: Final = (0.8, 0.5, 2.4, 2.4)
"""ROC and calibration: a square plot on the left, legend on the right (inches)."""
BAR_AXES: Final = (0.75, 0.62, 4.15, 2.25)
WIDE_AXES: Final = (0.75, 0.5, 5.1, 2.4)

_STYLE: Final[dict[RcKeyType, Any]] = {
    "svg.hashsalt": SVG_HASH_SALT,
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
}


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _figure(axes: tuple[float, float, float, float]) -> tuple[Figure, Axes]:
    """A figure with one axes at a fixed place (inches: left, bottom, width, height).

    Fixed placement instead of a layout engine: every chart of a kind looks the same, and
    rendering is about twice as fast.
    """
    width, height = FIGURE_SIZE
    left, bottom, ax_width, ax_height = axes
    fig = Figure(figsize=FIGURE_SIZE)
    return fig, fig.add_axes((left / width, bottom / height, ax_width / width, ax_height / height))


def _legend_at(fig: Figure, x_inches: float, loc: LegendLocType = "center left", y: float = 0.5) -> None:
    """Legend of all the figure's axes, outside the plot, starting ``x_inches`` from the left edge."""
    fig.legend(loc=loc, bbox_to_anchor=(x_inches / FIGURE_SIZE[0], y), frameon=False)


def _wrapped(label: str, width: int = 12) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def _arrays(defaulted: Sequence[int], default_probability: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    outcome = np.asarray(defaulted, dtype=np.int8)
    proba = np.asarray(default_probability, dtype=np.float64)
    if outcome.shape != proba.shape:
        raise ValueError(f"{len(outcome)} outcomes but {len(proba)} default probabilities; give one of each per row")
    return outcome, proba


def roc_curve_svg(defaulted: Sequence[int], default_probability: Sequence[float], decision_threshold: float) -> str:
    """ROC curve on the test split (positive class = default), with its AUC and the operating point."""
    outcome, proba = _arrays(defaulted, default_probability)
    fpr, tpr, _ = roc_curve(outcome, proba)
    auc = float(roc_auc_score(outcome, proba))
    declined = proba >= decision_threshold
    point_fpr = float(declined[outcome == 0].mean())
    point_tpr = float(declined[outcome == 1].mean())
    with mpl.rc_context(_STYLE):
        fig, ax = _figure(SQUARE_AXES)
        ax.plot(fpr, tpr, color=BLUE, label=f"model (AUC = {auc:.4f})")
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="chance (AUC = 0.5)")
        ax.plot(
            [point_fpr],
            [point_tpr],
            marker="o",
            color=ORANGE,
            linestyle="none",
            label=f"decision threshold {decision_threshold:.3f}",
        )
        ax.set(xlim=(0, 1), ylim=(0, 1.01))
        ax.set_xlabel("false-positive rate (repayers declined)")
        ax.set_ylabel("true-positive rate\n(defaulters declined)")
        ax.set_title("ROC curve, test split")
        _legend_at(fig, 3.4)
        return _svg(fig)


def calibration_curve_svg(
    defaulted: Sequence[int], default_probability: Sequence[float], bins: int = CALIBRATION_BINS
) -> str:
    """Observed default rate against mean predicted P(default) in equal-width bins (as the ECE uses)."""
    outcome, proba = _arrays(defaulted, default_probability)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(proba, edges[1:-1]), 0, bins - 1)
    predicted: list[float] = []
    observed: list[float] = []
    counts: list[int] = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            predicted.append(float(proba[mask].mean()))
            observed.append(float(outcome[mask].mean()))
            counts.append(int(mask.sum()))
    ece = sum(n * abs(o - p) for n, o, p in zip(counts, observed, predicted, strict=True)) / max(len(proba), 1)
    with mpl.rc_context(_STYLE):
        fig, ax = _figure(SQUARE_AXES)
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="perfect calibration")
        ax.plot(
            predicted,
            observed,
            color=BLUE,
            marker="o",
            markersize=4,
            label=f"model, {bins} equal-width bins\n(ECE = {ece:.4f})",
        )
        rows = ax.twinx()
        rows.bar(
            edges[:-1] + 0.5 / bins,
            np.bincount(which, minlength=bins),
            width=0.8 / bins,
            color=GREY,
            alpha=0.25,
            label="test rows per bin (right axis)",
        )
        rows.set_ylim(0, max(counts, default=1) * 4)
        rows.set_ylabel("test rows per bin", color=GREY)
        rows.tick_params(axis="y", colors=GREY)
        rows.grid(visible=False)
        rows.spines["right"].set_visible(True)
        rows.spines["right"].set_color(GREY)
        ax.set_zorder(rows.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.set_xlabel("mean predicted P(default) in bin")
        ax.set_ylabel("observed default rate")
        ax.set_title("Calibration, test split")
        _legend_at(fig, 4.0)
        return _svg(fig)


def ordered_groups(labels: Sequence[str], order: Sequence[str]) -> list[str]:
    """Groups present in ``labels``: those in ``order`` first, in that order, then the others sorted."""
    present = set(labels)
    rank = {name: i for i, name in enumerate(order)}
    return sorted(present, key=lambda g: (rank.get(g, len(rank)), g))


def approval_rate_svg(
    attribute: str,
    groups: Sequence[str],
    default_probability: Sequence[float],
    decision_threshold: float,
    *,
    order: Sequence[str] = (),
    min_group_size: int,
) -> str:
    """Approval rate (P(default) < threshold) per group of one protected attribute; small groups hatched."""
    labels = np.asarray(groups, dtype=object)
    proba = np.asarray(default_probability, dtype=np.float64)
    if labels.shape != proba.shape:
        raise ValueError(f"{len(labels)} group labels but {len(proba)} default probabilities for {attribute}")
    approved = proba < decision_threshold
    names = ordered_groups([str(g) for g in labels], order)
    sizes = [int((labels == g).sum()) for g in names]
    rates = [float(approved[labels == g].mean()) for g in names]
    with mpl.rc_context(_STYLE):
        fig, ax = _figure(BAR_AXES)
        positions = np.arange(len(names))
        for x, n, rate in zip(positions, sizes, rates, strict=True):
            small = n < min_group_size
            ax.bar(
                x,
                rate,
                width=0.6,
                color="white" if small else BLUE,
                edgecolor=GREY if small else BLUE,
                hatch="///" if small else None,
                linewidth=0.8,
            )
            if small:
                ax.annotate(
                    f"{rate:.1%}\n{INSUFFICIENT_SAMPLE}",
                    (x, rate),
                    textcoords="offset points",
                    xytext=(0, 3),
                    ha="center",
                    va="bottom",
                )
            elif rate >= 0.15:
                ax.annotate(
                    f"{rate:.1%}",
                    (x, rate),
                    textcoords="offset points",
                    xytext=(0, -4),
                    ha="center",
                    va="top",
                    color="white",
                    fontweight="bold",
                )
            else:
                ax.annotate(f"{rate:.1%}", (x, rate), textcoords="offset points", xytext=(0, 3), ha="center")
        overall = float(approved.mean()) if approved.size else 0.0
        ax.axhline(overall, color=ORANGE, linestyle="--", linewidth=1, label=f"all\napplicants\n{overall:.1%}")
        ax.set_xticks(positions, [f"{_wrapped(name)}\nn={n}" for name, n in zip(names, sizes, strict=True)])
        ax.set_ylim(0, 1.18)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("approval rate")
        ax.set_title(f"Approval rate by {attribute}, test split")
        _legend_at(fig, 5.0, loc="upper left", y=0.9)
        return _svg(fig)


def score_distribution_svg(
    defaulted: Sequence[int], default_probability: Sequence[float], decision_threshold: float
) -> str:
    """Histograms of P(default) for applicants who defaulted and who repaid, with the decision threshold."""
    outcome, proba = _arrays(defaulted, default_probability)
    edges = np.linspace(0.0, 1.0, 41)
    with mpl.rc_context(_STYLE):
        fig, ax = _figure(WIDE_AXES)
        for value, name, colour in ((0, "repaid", BLUE), (1, "defaulted", ORANGE)):
            scores = proba[outcome == value]
            weights = np.full(scores.shape, 1.0 / scores.size) if scores.size else None
            ax.hist(
                scores,
                bins=edges.tolist(),
                weights=weights,
                histtype="stepfilled",
                alpha=0.45,
                color=colour,
                edgecolor=colour,
                linewidth=1,
                label=f"{name} (n={scores.size})",
            )
        ax.axvline(
            decision_threshold,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"decision threshold {decision_threshold:.3f}\n(decline at or above)",
        )
        ax.set_xlim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("predicted P(default)")
        ax.set_ylabel("share of outcome group")
        ax.set_title("Score distribution by outcome, test split")
        ax.legend(loc="upper right", frameon=False)
        return _svg(fig)
