"""The digest chart: a PNG of the last periods, readable on a phone, Arabic right-to-left.

Arabic needs two things a plain glyph renderer does not do: *shaping* (each letter takes
its initial, medial, final or isolated form so that the word is joined) and *bidi
reordering* (right-to-left runs are laid out from the right). Matplotlib 3.11 and later
do both themselves (libraqm: HarfBuzz + SheenBidi, bundled in the wheel); older versions
draw code points left to right as they come, so the text must be shaped with
arabic_reshaper and reordered with python-bidi first. Doing it twice is as wrong as not
doing it: pre-shaped text handed to 3.11 comes out reversed. ``drawn_text`` picks the
right one for the matplotlib in use; ``display_text`` is the explicit shape-and-reorder
step for renderers that do neither.

The chart uses Figure + FigureCanvasAgg directly: no pyplot, no global state, safe to call
from several threads. DejaVu Sans, which ships inside matplotlib, covers the Arabic block
and the Arabic presentation forms, so nothing outside PyPI is needed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import arabic_reshaper
from bidi.algorithm import get_display  # not bidi.get_display: see display_text
from matplotlib import ft2font
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from monitoring.drawing import Series

# Matplotlib lays text out with libraqm (shaping + bidi) from 3.11 on.
NATIVE_SHAPING: bool = hasattr(ft2font, "__libraqm_version__")

FONT_FAMILY = "DejaVu Sans"
WIDTH_IN, HEIGHT_IN, DPI = 10.0, 6.0, 100  # 1000 x 600 px
MAX_BAR_PERIODS = 6  # more periods than this are drawn as lines
TITLE_SIZE, LABEL_SIZE, TICK_SIZE, LEGEND_SIZE, VALUE_SIZE = 22, 16, 15, 15, 12
LEGEND_COLUMNS = 2  # long labels (Arabic field names) need the width
MAX_VALUE_LABELS = 24  # bar value labels are drawn only when there are at most this many bars

_RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
# Explicit bidi controls (ALM, LRM, RLM, embeddings, overrides, isolates): the translator
# isolates interpolated values with FSI...PDI; on a chart they only risk tofu boxes.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_RLM = "\u200f"


def is_rtl(language: str) -> bool:
    """Whether *language* ("ar", "ar_MA", "ar-EG", "en"...) is written right to left."""
    return language.replace("-", "_").split("_")[0].lower() in _RTL_LANGUAGES


def has_arabic(text: str) -> bool:
    return _ARABIC.search(text) is not None


def display_text(text: str, language: str) -> str:
    """Shape and reorder *text* for a renderer that does neither (visual order).

    Latin-only text comes back unchanged. Text containing Arabic is shaped into
    presentation forms (U+FB50-U+FDFF, U+FE70-U+FEFF) with arabic_reshaper and put in
    visual left-to-right order with python-bidi, the paragraph taken as right-to-left for
    a right-to-left *language*. Bidi control characters (the translator's U+2068/U+2069
    isolates among them) are removed in both cases.

    python-bidi's pure-Python ``bidi.algorithm.get_display`` is used on purpose: the Rust
    ``bidi.get_display`` of python-bidi 0.5/0.6 reorders but does not mirror, so
    "ورق (kg)" would come out as ")kg( ورق" on the chart.
    """
    clean = _BIDI_CONTROLS.sub("", text)
    if not has_arabic(clean):
        return clean
    return get_display(arabic_reshaper.reshape(clean), base_dir="R" if is_rtl(language) else None)


def drawn_text(text: str, language: str) -> str:
    """The string to hand to matplotlib so that it shows *text* joined and in reading order.

    With a matplotlib that shapes (3.11+) that is the logical text itself, without bidi
    controls and, for a right-to-left *language*, with a leading RLM so that a label
    starting with Latin letters or digits still reads from the right. With an older one it
    is :func:`display_text`.
    """
    if not NATIVE_SHAPING:
        return display_text(text, language)
    clean = _BIDI_CONTROLS.sub("", text)
    if is_rtl(language) and has_arabic(clean):
        return _RLM + clean
    return clean


def trend_chart(
    title: str,
    period_labels: list[str],
    series: list[Series],
    *,
    language: str,
    path: Path,
    y_label: str = "",
    digits: str = "latn",
) -> Path:
    """Draw the chart of the last periods to *path* (PNG, 1000 x 600 px) and return *path*.

    *period_labels* go oldest first, each series has one value per period, None leaves a
    gap. Up to six periods are grouped bars, more are lines. For a right-to-left
    *language* the periods run from the right (the newest on the left), the value axis,
    the title and the legend sit on the right. All strings are given in logical order.
    """
    fig = trend_figure(
        title, period_labels, series, language=language, y_label=y_label, digits=digits
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def trend_figure(
    title: str,
    period_labels: Sequence[str],
    series: Sequence[Series],
    *,
    language: str,
    y_label: str = "",
    digits: str = "latn",
) -> Figure:
    """The figure :func:`trend_chart` saves (one Axes), for callers that want bytes or tests.

    *digits* ("latn" or "arab") shapes the numbers of the value axis and the bar labels.
    """
    for one in series:
        if len(one.values) != len(period_labels):
            raise ValueError(
                f"series {one.label!r} has {len(one.values)} values "
                f"for {len(period_labels)} periods"
            )
    rtl = is_rtl(language)

    def text(s: str) -> str:
        return drawn_text(s, language)

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    if len(period_labels) <= MAX_BAR_PERIODS:
        _draw_bars(ax, len(period_labels), series, text, digits)
    else:
        _draw_lines(ax, len(period_labels), series, text)

    _style_x_axis(ax, [text(p) for p in period_labels], rtl)
    _style_y_axis(ax, text(y_label) if y_label else "", rtl, series, digits)
    if series:
        _legend(fig, ax, rtl)
    if title:
        fig.suptitle(
            text(title),
            x=0.98 if rtl else 0.02,
            ha="right" if rtl else "left",
            fontsize=TITLE_SIZE,
            fontweight="bold",
            fontfamily=FONT_FAMILY,
        )
    return fig


def _values(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _draw_bars(
    ax: Axes,
    periods: int,
    series: Sequence[Series],
    text: Callable[[str], str],
    digits: str = "latn",
) -> None:
    width = 0.8 / max(len(series), 1)
    show_values = len(series) * periods <= MAX_VALUE_LABELS
    for i, one in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        heights = _values(one.values)
        bars = ax.bar(
            [x + offset for x in range(periods)],
            [0.0 if math.isnan(h) else h for h in heights],
            width=width * 0.95,
            label=text(one.label),
            zorder=2,
        )
        for bar, h in zip(bars, heights, strict=True):
            if math.isnan(h):  # no report: no bar at all, not a zero bar
                bar.set_visible(False)
        if show_values:
            ax.bar_label(
                bars,
                labels=["" if math.isnan(h) else format_number(h, digits) for h in heights],
                padding=3,
                fontsize=VALUE_SIZE,
                fontfamily=FONT_FAMILY,
            )


def _draw_lines(
    ax: Axes, periods: int, series: Sequence[Series], text: Callable[[str], str]
) -> None:
    for one in series:
        # NaN breaks the line: a period without a report is a gap, not a zero.
        ax.plot(
            range(periods),
            _values(one.values),
            marker="o",
            markersize=7,
            linewidth=2.5,
            label=text(one.label),
            zorder=2,
        )


def _legend(fig: Figure, ax: Axes, rtl: bool) -> None:
    """Below the plot, outside it (long labels never squeeze the axes), row by row from the
    reading start side (rightmost first in RTL)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    ncols = min(len(handles), LEGEND_COLUMNS)
    handles, labels = _row_by_row(handles, labels, ncols, rtl)
    fig.legend(
        handles,
        labels,
        loc="outside lower right" if rtl else "outside lower left",
        ncols=ncols,
        frameon=False,
        markerfirst=not rtl,  # the colour key on the reading start side of its label
        prop={"family": FONT_FAMILY, "size": LEGEND_SIZE},
    )


def _row_by_row(
    handles: list[Artist], labels: list[str], ncols: int, rtl: bool
) -> tuple[list[Artist], list[str]]:
    """Order legend entries so that they read row by row, in the reading direction.

    Matplotlib fills a legend column by column from the left. Pad the entries to full
    rows with invisible blanks (at the end of the last row), mirror each row for
    right-to-left, and hand the grid over column by column.
    """
    blanks = (-len(handles)) % ncols
    cells = list(zip(handles, labels, strict=True)) + [
        (Rectangle((0, 0), 0, 0, visible=False), "") for _ in range(blanks)
    ]
    rows = [cells[i : i + ncols] for i in range(0, len(cells), ncols)]
    if rtl:
        rows = [row[::-1] for row in rows]
    ordered = [row[col] for col in range(ncols) for row in rows]
    return [h for h, _ in ordered], [label for _, label in ordered]


def _style_x_axis(ax: Axes, labels: list[str], rtl: bool) -> None:
    crowded = len(labels) > MAX_BAR_PERIODS or max((len(s) for s in labels), default=0) > 12
    slant: dict[str, Any] = (  # slanted, the end of each label (its left end in RTL) at its tick
        {"rotation": -30 if rtl else 30, "ha": "left" if rtl else "right"} if crowded else {}
    )
    ax.set_xticks(
        range(len(labels)),
        labels=labels,
        fontsize=TICK_SIZE,
        fontfamily=FONT_FAMILY,
        rotation_mode="anchor",
        **slant,
    )
    ax.set_xlim(-0.6, len(labels) - 0.4)
    if rtl:
        ax.invert_xaxis()  # oldest period on the right, where reading starts
    ax.tick_params(axis="x", length=0)


def _style_y_axis(
    ax: Axes, y_label: str, rtl: bool, series: Sequence[Series], digits: str = "latn"
) -> None:
    """The value axis starts at 0; with nothing above 0 it runs to 1 (not a band around 0);
    whole-number series get whole-number ticks."""
    values = [v for one in series for v in one.values if v is not None]
    if max(values, default=0.0) <= 0:
        ax.set_ylim(0, 1)
    else:
        ax.set_ylim(bottom=0.0)
    if all(float(v).is_integer() for v in values):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_number(v, digits)))
    ax.tick_params(axis="y", labelsize=TICK_SIZE, labelfontfamily=FONT_FAMILY)
    if rtl:
        ax.yaxis.tick_right()
        ax.yaxis.set_label_position("right")
    if y_label:
        ax.set_ylabel(y_label, fontsize=LABEL_SIZE, fontfamily=FONT_FAMILY)
    ax.grid(axis="y", alpha=0.35, zorder=0)
    ax.set_axisbelow(True)
    ax.spines["top"].set_visible(False)
    ax.spines["left" if rtl else "right"].set_visible(False)


_ARABIC_INDIC = str.maketrans("0123456789,.", "٠١٢٣٤٥٦٧٨٩٬٫")


def format_number(value: float, digits: str = "latn") -> str:
    """Thousands separators, decimals only where the value has them; Latin digits, or
    Arabic-Indic ones with the Arabic separators (٬ ٫) for *digits* "arab"."""
    whole = float(value).is_integer()
    text = f"{value:,.0f}" if whole else f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.translate(_ARABIC_INDIC) if digits == "arab" else text
