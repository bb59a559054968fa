"""The digest chart: a PNG a coordinator reads on a phone, Arabic joined and right to left."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from monitoring.chart import (
    NATIVE_SHAPING,
    Series,
    display_text,
    drawn_text,
    format_number,
    trend_chart,
    trend_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PRESENTATION_FORMS = [(0xFB50, 0xFDFF), (0xFE70, 0xFEFF)]

RECYCLING = {
    "ar": (
        "إنتاج إعادة التدوير · \u2068جمعية نهضة فتاة الريف\u2069",
        ["١ مارس", "8 مارس", "15 مارس", "22 مارس", "29 مارس"],
        ["الورق", "الألمنيوم", "البلاستيك (kg)"],
        "كغ",
    ),
    "en": (
        "Recycling output · Rural Girls Renaissance Association",
        ["1 Mar", "8 Mar", "15 Mar", "22 Mar", "29 Mar"],
        ["Paper", "Aluminium", "Plastic (kg)"],
        "kg",
    ),
    "fr": (
        "Production de recyclage · Association Renaissance des filles rurales",
        ["1 mars", "8 mars", "15 mars", "22 mars", "29 mars"],
        ["Papier", "Aluminium", "Plastique (kg)"],
        "kg",
    ),
}
VALUES = [[120, 95.5, None, 140, 160], [30, 42, 38, None, 51], [60, 58, 70, 66, 80]]


def recycling_series(language: str) -> list[Series]:
    labels = RECYCLING[language][2]
    return [Series(label, list(values)) for label, values in zip(labels, VALUES, strict=True)]


def in_presentation_forms(char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in PRESENTATION_FORMS)


@contextmanager
def no_missing_glyphs() -> Iterator[None]:
    """Fail if matplotlib says a glyph is missing (a warning now, a log record in old days)."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("matplotlib")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        logger.removeHandler(handler)
    messages = records + [str(w.message) for w in caught]
    missing = [m for m in messages if "missing from" in m.lower()]
    assert not missing, missing


# display_text: shaping and reordering for renderers that do neither


def test_arabic_is_shaped_into_presentation_forms_in_visual_order() -> None:
    shown = display_text("ورق", "ar")
    assert all(in_presentation_forms(c) for c in shown), [hex(ord(c)) for c in shown]
    # visual order: the last letter (qaf, isolated form U+FED5) comes first, waw last
    assert shown == "\ufed5\ufead\ufeed"


def test_joined_letters_take_their_initial_medial_and_final_forms() -> None:
    shown = display_text("سلم", "ar")  # seen initial, lam medial, meem final; reversed
    assert shown == "\ufee2\ufee0\ufeb3"


def test_latin_text_is_left_alone() -> None:
    assert display_text("Paper", "en") == "Paper"
    assert display_text("Paper", "ar") == "Paper"
    assert display_text("Aluminium (kg)", "fr") == "Aluminium (kg)"


def test_mixed_text_keeps_latin_readable_and_brackets_the_right_way() -> None:
    shown = display_text("ورق (kg)", "ar")
    assert "(kg)" in shown  # not "gk", not ")kg("
    assert shown.endswith("\ufed5\ufead\ufeed")  # the Arabic word reads from the right
    assert all(in_presentation_forms(c) for c in shown.replace("(kg) ", ""))


def test_translator_isolate_marks_are_removed() -> None:
    assert display_text("\u2068Paper\u2069", "en") == "Paper"
    shown = display_text("جمعية \u2068سترة\u2069", "ar")
    assert "\u2068" not in shown and "\u2069" not in shown
    assert shown == display_text("جمعية سترة", "ar")


def test_drawn_text_suits_the_matplotlib_in_use() -> None:
    if NATIVE_SHAPING:  # matplotlib shapes and reorders itself: hand it logical text
        assert drawn_text("\u2068ورق\u2069", "ar").lstrip("\u200f") == "ورق"
    else:
        assert drawn_text("ورق", "ar") == display_text("ورق", "ar")
    assert drawn_text("Paper", "ar") == "Paper"


# What actually lands on the pixels


def ink(text: str) -> np.ndarray:
    """Draw *text* large, alone, and return the mask of its dark pixels."""
    fig = Figure(figsize=(3, 1.6), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.35, text, fontsize=72, fontfamily="DejaVu Sans", ha="center")
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return rgba[..., :3].mean(axis=2) < 128


def reads_joined_right_to_left(mask: np.ndarray) -> bool:
    """Whether "سل" came out as one joined shape with the lam (the tall stroke) on the left."""
    columns = np.flatnonzero(mask.any(axis=0))
    joined = len(columns) > 0 and np.all(np.diff(columns) == 1)  # no gap between letters
    top_row = np.flatnonzero(mask.any(axis=1))[0]
    lam_x = np.flatnonzero(mask[top_row]).mean()
    lam_on_the_left = lam_x < (columns[0] + columns[-1]) / 2
    return bool(joined and lam_on_the_left)


def test_arabic_lands_on_the_image_joined_and_right_to_left() -> None:
    with no_missing_glyphs():
        assert reads_joined_right_to_left(ink(drawn_text("سل", "ar")))


def test_shaping_twice_or_never_would_be_a_defect() -> None:
    """Guards NATIVE_SHAPING: the other choice would draw reversed or broken letters."""
    wrong = display_text("سل", "ar") if NATIVE_SHAPING else "سل"
    assert not reads_joined_right_to_left(ink(wrong))


# The chart


@pytest.mark.parametrize("language", ["ar", "en", "fr"])
def test_chart_is_a_phone_sized_png(language: str, tmp_path: Path) -> None:
    title, periods, _, unit = RECYCLING[language]
    path = tmp_path / "digest" / f"chart-{language}.png"
    with no_missing_glyphs():
        out = trend_chart(
            title, periods, recycling_series(language), language=language, path=path, y_label=unit
        )
    assert out == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.size == (1000, 600)


@pytest.mark.parametrize("language", ["ar", "en"])
def test_many_periods_are_lines_with_gaps(language: str, tmp_path: Path) -> None:
    periods = [f"W{i}" for i in range(1, 13)]
    values = [float(i) if i % 4 else None for i in range(1, 13)]
    with no_missing_glyphs():
        fig = trend_figure("12", periods, [Series("الورق", values)], language=language)
        fig.canvas.draw()
    (line,) = fig.axes[0].get_lines()
    ydata = list(line.get_ydata())
    assert [math.isnan(y) for y in ydata] == [v is None for v in values]
    path = trend_chart(
        "12", periods, [Series("الورق", values)], language=language, path=tmp_path / "l.png"
    )
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_arabic_chart_runs_right_to_left() -> None:
    title, periods, labels, unit = RECYCLING["ar"]
    fig = trend_figure(title, periods, recycling_series("ar"), language="ar", y_label=unit)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.xaxis_inverted()  # oldest period on the right, newest on the left
    ticks = {t.get_text(): t.get_window_extent().x0 for t in ax.get_xticklabels()}
    shown = [drawn_text(p, "ar") for p in periods]
    assert [ticks[p] for p in shown] == sorted((ticks[p] for p in shown), reverse=True)
    assert ax.yaxis.get_label_position() == "right"
    assert ax.get_ylabel() == drawn_text(unit, "ar")
    assert fig.get_suptitle() == drawn_text(title, "ar")
    assert fig._suptitle.get_horizontalalignment() == "right"
    assert legend_reading_order(fig, rtl=True) == [drawn_text(s, "ar") for s in labels]


def test_latin_chart_runs_left_to_right() -> None:
    title, periods, labels, unit = RECYCLING["fr"]
    fig = trend_figure(title, periods, recycling_series("fr"), language="fr", y_label=unit)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert not ax.xaxis_inverted()
    assert [t.get_text() for t in ax.get_xticklabels()] == periods
    assert ax.yaxis.get_label_position() == "left"
    assert fig.get_suptitle() == title
    assert legend_reading_order(fig, rtl=False) == labels


@pytest.mark.parametrize(("language", "rtl"), [("ar", True), ("en", False)])
def test_legend_of_many_series_reads_row_by_row(language: str, rtl: bool) -> None:
    labels = [f"سلسلة {i}" if rtl else f"Series {i}" for i in range(1, 7)]
    series = [Series(label, [1.0, 2.0]) for label in labels]
    fig = trend_figure("", ["a", "b"], series, language=language)
    fig.canvas.draw()
    assert legend_reading_order(fig, rtl=rtl) == [drawn_text(s, language) for s in labels]


def legend_reading_order(fig: Figure, *, rtl: bool) -> list[str]:
    """The legend's labels as a reader meets them: top row first, from the reading side."""
    texts = [t for t in fig.legends[0].get_texts() if t.get_text()]

    def place(text: Text) -> tuple[float, float]:
        baseline = text.get_transform().transform(text.get_position())[1]  # same in a row
        box = text.get_window_extent()
        return -round(baseline), -box.x1 if rtl else box.x0

    return [t.get_text() for t in sorted(texts, key=place)]


def test_a_period_without_a_report_is_a_gap_not_a_zero_bar() -> None:
    fig = trend_figure("t", ["a", "b", "c"], [Series("Paper", [3, None, 5])], language="en")
    bars = fig.axes[0].patches
    assert [bar.get_visible() for bar in bars] == [True, False, True]


def test_no_data_at_all_still_draws(tmp_path: Path) -> None:
    path = trend_chart(
        "ورق", ["أ", "ب"], [Series("ورق", [None, None])], language="ar", path=tmp_path / "e.png"
    )
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_values_must_match_the_periods(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 periods"):
        trend_chart(
            "t", ["a", "b", "c"], [Series("Paper", [1, 2])], language="en", path=tmp_path / "x.png"
        )


def test_all_zero_values_give_an_axis_from_zero_not_a_band_around_it() -> None:
    fig = trend_figure("t", ["a", "b"], [Series("Paper", [0.0, 0.0])], language="en")
    fig.canvas.draw()
    assert fig.axes[0].get_ylim() == (0.0, 1.0)


@pytest.mark.parametrize("values", [[3.0, 250.0, 40.0], [0.5, 0.25, None]])
def test_the_value_axis_starts_at_zero(values: list[float | None]) -> None:
    fig = trend_figure("t", ["a", "b", "c"], [Series("Paper", values)], language="en")
    fig.canvas.draw()
    assert fig.axes[0].get_ylim()[0] == 0.0


def test_whole_numbers_get_whole_ticks() -> None:
    fig = trend_figure("t", ["a", "b"], [Series("Women", [1.0, 2.0])], language="en")
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert ticks and all("." not in t for t in ticks)


def test_arabic_indic_digits_on_the_axis_and_the_bars() -> None:
    fig = trend_figure(
        "ورق",
        ["أ", "ب"],
        [Series("ورق", [1200.0, 12.5])],
        language="ar",
        y_label="كغ",
        digits="arab",
    )
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "٠" in ticks and not any(c in "0123456789" for t in ticks for c in t)
    bar_labels = [t.get_text() for t in ax.texts]
    assert "١٬٢٠٠" in bar_labels and "١٢٫٥" in bar_labels


def test_format_number_in_both_digit_shapes() -> None:
    assert format_number(1234.5) == "1,234.5"
    assert format_number(40.0) == "40"
    assert format_number(1234.5, "arab") == "١٬٢٣٤٫٥"
