"""Server-drawn SVG plots of the agreement dashboard: pure functions from figures to SVG text.

The Content-Security-Policy forbids style attributes and inline styles, so everything is drawn with
presentation attributes (fill, stroke, font-size) plus class names. Every label is escaped: usernames,
question titles and model names are untrusted text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from markupsafe import escape

from app.i18n import gettext as _

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK SC', sans-serif"
INK, MUTED, GRID, PAPER = "#1f2937", "#6b7280", "#e5e7eb", "#ffffff"
BLUE, GREEN, ORANGE, RED = "#2563eb", "#059669", "#d97706", "#dc2626"
SERIES = (BLUE, ORANGE, GREEN, "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#9333ea")
# Krippendorff's rule of thumb: alpha >= 0.8 reliable, >= 0.667 for tentative conclusions only.
THRESHOLDS = ((0.667, "0.667"), (0.8, "0.8"))


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value - round(value, 1)) < 1e-9 else f"{value:.2f}"


def _text(
    x: float,
    y: float,
    label: Any,
    *,
    size: int = 12,
    anchor: str = "start",
    fill: str = INK,
    cls: str = "",
    weight: str = "normal",
    extra: str = "",
) -> str:
    klass = f' class="{cls}"' if cls else ""
    bold = f' font-weight="{weight}"' if weight != "normal" else ""
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
        f"{bold}{klass}{extra}>{escape(label)}</text>"
    )


def _line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    *,
    stroke: str = GRID,
    width: float = 1,
    dash: str = "",
    cls: str = "",
) -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" stroke="{stroke}" '
        f'stroke-width="{width}"{dashed}{klass}/>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, *, cls: str = "", tip: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    inner = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0))}" height="{_num(max(h, 0))}" '
        f'fill="{fill}"{klass}>{inner}</rect>'
    )


def _svg(width: int, height: int, title: str, body: Iterable[str], cls: str) -> str:
    """A standalone SVG document that also works inline; it scales to its container's width."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}" class="plot {cls}" '
        f'font-family="{FONT}"><title>{escape(title)}</title>'
        f'<rect width="{width}" height="{height}" fill="{PAPER}"/>' + "".join(body) + "</svg>"
    )


def _empty(title: str, message: str, cls: str, width: int = 640) -> str:
    return _svg(width, 60, title, [_text(12, 36, message, fill=MUTED, size=13)], cls)


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _wrap(label: str, width: int, max_lines: int) -> list[str]:
    """Words onto at most max_lines lines of about width characters; the last line is shortened."""
    lines: list[str] = []
    for word in label.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
    return [_shorten(line, width) for line in lines] or [""]


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _axis(x: Any, lo: float, hi: float, step: float, top: float, bottom: float) -> list[str]:
    parts = []
    for tick in _ticks(lo, hi, step):
        parts.append(_line(x(tick), top, x(tick), bottom, stroke=INK if tick == 0 else GRID))
        parts.append(_text(x(tick), bottom + 14, _num(tick), size=11, anchor="middle", fill=MUTED))
    return parts


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _whisker(x1: float, x2: float, y: float, colour: str) -> list[str]:
    return [
        _line(x1, y, x2, y, stroke=colour, width=1.5, cls="ci"),
        _line(x1, y - 5, x1, y + 5, stroke=colour, width=1.5, cls="ci"),
        _line(x2, y - 5, x2, y + 5, stroke=colour, width=1.5, cls="ci"),
    ]


# ------------------------------------------------------------------------------ agreement per question


def headline(question: dict[str, Any]) -> tuple[str, float | None, dict[str, Any] | None, str | None]:
    """The figure a question is judged by: (name, value, interval, reason when missing)."""
    reasons = question.get("reasons", {})
    if question["kind"] == "ranking":
        return (
            "Kendall's W",
            question.get("kendall_w"),
            question["ci"].get("kendall_w"),
            reasons.get("kendall_w"),
        )
    level = question.get("primary_level") or "nominal"
    value = question["krippendorff_alpha"].get(level)
    reason = reasons.get(f"krippendorff_alpha.{level}") or reasons.get("percent_agreement")
    return f"α {level}", value, question["ci"].get("alpha"), reason


def agreement_chart(questions: Sequence[dict[str, Any]]) -> str:
    """Per question: the headline statistic and percent agreement as bars with 95% interval whiskers."""
    title = _("Agreement per question, with 95% bootstrap intervals")
    rows = [q for q in questions if not q.get("skipped")]
    if not rows:
        return _empty(title, _("No gradable questions."), "agreement-plot")
    bounds = [0.0]
    for q in rows:
        value, ci = headline(q)[1:3]
        bounds += [v for v in (value, (ci or {}).get("low")) if v is not None]
    lo = max(-1.0, math.floor(min(bounds) * 5) / 5)
    width, left, right, row_h, top = 1000, 260, 880, 62, 52
    x = _scale(lo, 1.0, left, right)
    height = top + row_h * len(rows) + 30
    body = _axis(x, lo, 1.0, 0.2, top - 8, height - 30)
    for value, label in THRESHOLDS:
        body.append(
            _line(x(value), top - 8, x(value), height - 30, stroke=GREEN, dash="4 3", cls="threshold")
        )
        body.append(_text(x(value), top - 14, label, size=10, anchor="middle", fill=GREEN))
    body.append(_rect(left, 8, 12, 10, BLUE))
    body.append(
        _text(left + 18, 17, _("Krippendorff's alpha (Kendall's W for rankings)"), size=11, fill=MUTED)
    )
    body.append(_rect(left + 320, 8, 12, 10, "#93c5fd"))
    body.append(_text(left + 338, 17, _("percent agreement"), size=11, fill=MUTED))
    for i, q in enumerate(rows):
        body += _question_row(q, x, top + i * row_h, lo)
    return _svg(width, height, title, body, "agreement-plot")


def _question_row(q: dict[str, Any], x: Any, y: float, lo: float) -> list[str]:
    name, value, ci, reason = headline(q)
    lines = _wrap(q["title"], 34, 2)
    parts = [_text(12, y + 16 + 15 * k, line, size=13, weight="600") for k, line in enumerate(lines)]
    parts.append(
        _text(12, y + 18 + 15 * len(lines), f"{q['kind']} · {name} · n={q['n_units']}", size=11, fill=MUTED)
    )
    base = x(max(lo, 0.0))
    bars = (
        (value, ci, BLUE, y + 8, name),
        (
            q.get("percent_agreement"),
            q["ci"].get("percent_agreement"),
            "#93c5fd",
            y + 28,
            _("percent agreement"),
        ),
    )
    for stat, interval, colour, bar_y, label in bars:
        if stat is None:
            parts.append(_text(base + 6, bar_y + 11, _("n/a: ") + (reason or ""), size=11, fill=MUTED))
            continue
        tip = f"{label}: {stat:.3f}"
        parts.append(_rect(min(base, x(stat)), bar_y, abs(x(stat) - base), 14, colour, cls="bar", tip=tip))
        end = x(stat)
        if interval and interval.get("low") is not None and interval.get("high") is not None:
            parts += _whisker(x(interval["low"]), x(interval["high"]), bar_y + 7, INK)
            end = max(end, x(interval["high"]))
        parts.append(_text(end + 8, bar_y + 11, f"{stat:.3f}", size=11))
    return parts


# ---------------------------------------------------------------------------------------- by week


def weekly_chart(rows: Sequence[dict[str, Any]], titles: dict[str, str] | None = None) -> str:
    """Alpha (each question's primary level) per ISO week on a time axis, one line per question."""
    title = _("Agreement by week (Krippendorff's alpha of the items completed that week)")
    points = [r for r in rows if r.get("alpha") is not None]
    if not points:
        return _empty(title, _("Not enough answers yet to show agreement by week."), "weekly-plot")
    mondays = sorted({date.fromisoformat(r["week_start"]) for r in rows})
    span = max((mondays[-1] - mondays[0]).days // 7, 1)
    labels = {
        (d - mondays[0]).days // 7: r["week"] for r in rows for d in [date.fromisoformat(r["week_start"])]
    }
    questions = list(dict.fromkeys(r["question"] for r in rows))
    lo = max(-1.0, min(0.0, math.floor(min(r["alpha"] for r in points) * 5) / 5))
    width, left, right, top, bottom = 1000, 70, 980, 44, 254
    x = _scale(0, span, left + 30, right - 30)
    y = _scale(lo, 1.0, bottom, top)
    body = [_text(16, (top + bottom) / 2, "α", size=14, anchor="middle", fill=MUTED)]
    for tick in _ticks(lo, 1.0, 0.2):
        body.append(_line(left, y(tick), right, y(tick), stroke=INK if tick == 0 else GRID))
        body.append(_text(left - 8, y(tick) + 4, _num(tick), size=11, anchor="end", fill=MUTED))
    every = max(1, math.ceil(span / 10))
    for index, week in sorted(labels.items()):
        if index % every == 0:
            body.append(_text(x(index), bottom + 18, week, size=11, anchor="middle", fill=MUTED))
    for k, question in enumerate(questions):
        body += _week_series(question, [r for r in points if r["question"] == question], mondays[0], x, y, k)
        name = (titles or {}).get(question, question)
        body.append(_rect(left + 200 * k, 12, 12, 12, SERIES[k % len(SERIES)]))
        body.append(_text(left + 200 * k + 18, 22, _shorten(name, 26), size=12))
    return _svg(width, bottom + 30, title, body, "weekly-plot")


def _week_series(question: str, rows: list[dict[str, Any]], first: date, x: Any, y: Any, k: int) -> list[str]:
    colour = SERIES[k % len(SERIES)]
    coords = sorted(
        (x((date.fromisoformat(r["week_start"]) - first).days // 7), y(r["alpha"]), r) for r in rows
    )
    parts = []
    if len(coords) > 1:
        path = " ".join(f"{_num(cx)},{_num(cy)}" for cx, cy, _r in coords)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" class="series"/>'
        )
    for cx, cy, r in coords:
        tip = f"{question} {r['week']}: α {r['alpha']:.3f} (n={r['n_units']})"
        parts.append(
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="4" fill="{colour}" class="point">'
            f"<title>{escape(tip)}</title></circle>"
        )
    return parts


# ------------------------------------------------------------------------------------- kappa heat map


def kappa_colour(kappa: float | None) -> str:
    """Diverging scale: red for kappa -1, white for 0, blue for 1; grey where undefined."""
    if kappa is None:
        return GRID
    t = max(-1.0, min(1.0, kappa))
    end = (29, 78, 216) if t >= 0 else (185, 28, 28)
    mix = [round(255 + (c - 255) * abs(t)) for c in end]
    return "#{:02x}{:02x}{:02x}".format(*mix)


def kappa_heatmap(pairs: Sequence[dict[str, Any]], question: str | None) -> str:
    """Cohen's kappa between every two raters who share items; the legend maps colour to kappa."""
    title = _("Cohen's kappa between raters") + (f" ({question})" if question else "")
    if not pairs:
        return _empty(title, _("No two raters share an item yet."), "kappa-plot")
    raters = sorted({p["rater_a"] for p in pairs} | {p["rater_b"] for p in pairs})
    cells = {(p["rater_a"], p["rater_b"]): p for p in pairs} | {
        (p["rater_b"], p["rater_a"]): p for p in pairs
    }
    n = len(raters)
    cell = max(10, min(48, 560 // n))
    font = 11 if cell >= 14 else 9
    longest = max(len(_shorten(name, 18)) for name in raters)
    # Column labels are turned 45 degrees, so they need about 0.5 x font x length of room above the grid.
    left, top = 24 + int(longest * font * 0.6), 16 + int(longest * font * 0.45)
    size = cell * n
    body = []
    for i, name in enumerate(raters):
        cy, cx = top + i * cell + cell / 2, left + i * cell + cell / 2
        body.append(_text(left - 6, cy + font / 3, _shorten(name, 18), size=font, anchor="end"))
        turn = f' transform="rotate(-45 {_num(cx)} {_num(top - 6)})"'
        body.append(_text(cx, top - 6, _shorten(name, 18), size=font, extra=turn))
        for j, other in enumerate(raters):
            body += _kappa_cell(cells.get((name, other)), left + j * cell, top + i * cell, cell, i == j)
    body += _kappa_legend(left + size + 40, top)
    return _svg(1000, max(top + size + 16, top + 250), title, body, "kappa-plot")


def _kappa_cell(pair: dict[str, Any] | None, x: float, y: float, cell: int, diagonal: bool) -> list[str]:
    if diagonal:
        return [_rect(x, y, cell - 1, cell - 1, "#f3f4f6")]
    if pair is None:
        return [_rect(x, y, cell - 1, cell - 1, "#fafafa", tip=_("no shared items"))]
    kappa = pair["kappa"]
    tip = f"{pair['rater_a']} × {pair['rater_b']}: κ {'n/a' if kappa is None else f'{kappa:.2f}'}, " + _(
        "%(n)s shared items", n=pair["n_shared"]
    )
    parts = [_rect(x, y, cell - 1, cell - 1, kappa_colour(kappa), cls="cell", tip=tip)]
    if cell >= 30:
        label = "–" if kappa is None else f"{kappa:.2f}"
        ink = PAPER if kappa is not None and abs(kappa) > 0.55 else INK
        parts.append(_text(x + cell / 2, y + cell / 2 + 4, label, size=10, anchor="middle", fill=ink))
    return parts


def _kappa_legend(x: float, y: float) -> list[str]:
    parts = [_text(x, y - 8, "κ", size=12, weight="600")]
    steps = [1.0 - 0.25 * i for i in range(9)]
    for i, value in enumerate(steps):
        parts.append(_rect(x, y + i * 20, 18, 20, kappa_colour(value)))
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(y + i * 20)}" width="18" height="20" fill="none" stroke="{GRID}"/>'
        )
        parts.append(_text(x + 24, y + i * 20 + 14, f"{value:+.2f}", size=10, fill=MUTED))
    parts.append(_rect(x, y + 9 * 20 + 8, 18, 14, GRID))
    parts.append(_text(x + 24, y + 9 * 20 + 19, "n/a", size=10, fill=MUTED))
    return parts


# ------------------------------------------------------------------------------------ distributions


def distribution_chart(title: str, counts: Sequence[dict[str, Any]]) -> str:
    """How often each answer was given, as vertical bars with counts and shares."""
    full_title = _("Answers to %(question)s", question=title)
    if not counts or not any(c["count"] for c in counts):
        return _empty(full_title, _("No answers yet."), "distribution-plot", width=480)
    width, left, top, bottom = 480, 40, 44, 184
    slot = (width - left - 10) / len(counts)
    y = _scale(0, max(c["count"] for c in counts), bottom, top)
    body = [
        _text(left, 16, _shorten(title, 60), size=12, weight="600"),
        _line(left, bottom, width - 10, bottom, stroke=INK),
    ]
    for i, c in enumerate(counts):
        x = left + i * slot
        tip = f"{c['label']}: {c['count']} ({c['share']:.0%})"
        body.append(
            _rect(
                x + slot * 0.15, y(c["count"]), slot * 0.7, bottom - y(c["count"]), BLUE, cls="bar", tip=tip
            )
        )
        body.append(
            _text(x + slot / 2, y(c["count"]) - 4, f"{c['share']:.0%}", size=10, anchor="middle", fill=MUTED)
        )
        body.append(
            _text(
                x + slot / 2,
                bottom + 14,
                _shorten(str(c["label"]), max(4, int(slot / 7))),
                size=10,
                anchor="middle",
            )
        )
    return _svg(width, bottom + 24, full_title, body, "distribution-plot")


# -------------------------------------------------------------------------------------- leaderboard


def leaderboard_chart(models: Sequence[dict[str, Any]]) -> str:
    """Bradley-Terry scores (Elo-like, mean 1000) with their 95% intervals, best first."""
    title = _("Model leaderboard: Bradley-Terry score with 95% interval")
    if not models:
        return _empty(title, _("No battles between named models yet."), "leaderboard-plot")
    values = [m[k] for m in models for k in ("score", "lower", "upper") if m.get(k) is not None]
    lo, hi = math.floor(min(values) / 50) * 50, math.ceil(max(values) / 50) * 50
    width, left, right, row_h, top = 1000, 250, 900, 30, 20
    x = _scale(lo, hi if hi > lo else lo + 50, left, right)
    height = top + row_h * len(models) + 44
    step = max(50, math.ceil((hi - lo) / 8 / 50) * 50)
    body = _axis(x, lo, hi, step, top - 6, height - 44)
    body.append(_line(x(1000), top - 6, x(1000), height - 44, stroke=MUTED, dash="3 3"))
    body.append(
        _text(
            right,
            height - 2,
            _("score on the Elo scale; 1000 is the average model"),
            size=11,
            anchor="end",
            fill=MUTED,
        )
    )
    for i, m in enumerate(models):
        cy = top + i * row_h + row_h / 2
        body.append(_text(12, cy + 4, f"{m['rank']}. {_shorten(m['model'], 30)}", size=12))
        if m.get("lower") is not None and m.get("upper") is not None:
            body += _whisker(x(m["lower"]), x(m["upper"]), cy, BLUE)
        tip = f"{m['model']}: {m['score']:.0f} ({m['wins']}-{m['ties']}-{m['losses']})"
        body.append(
            f'<circle cx="{_num(x(m["score"]))}" cy="{_num(cy)}" r="5" fill="{BLUE}" class="point">'
            f"<title>{escape(tip)}</title></circle>"
        )
        body.append(_text(right + 10, cy + 4, f"{m['score']:.0f}", size=12))
    return _svg(width, height, title, body, "leaderboard-plot")


# ------------------------------------------------------------------------------------ position bias


def position_bias_chart(rows: Sequence[dict[str, Any]]) -> str:
    """Each rater's share of choices of the first-shown response, as a bar from 0.5; p < 0.05 in red."""
    title = _("Position bias: share of choices of the response shown first")
    if not rows:
        return _empty(title, _("No rater has chosen a response yet."), "bias-chart")
    width, left, right, row_h, top = 1000, 180, 700, 24, 30
    x = _scale(0.0, 1.0, left, right)
    height = top + row_h * len(rows) + 44
    body = _axis(x, 0.0, 1.0, 0.25, top - 6, height - 44)
    body.append(_line(x(0.5), top - 6, x(0.5), height - 44, stroke=INK, width=1.5))
    body.append(
        _text(
            right,
            height - 2,
            _("share of choices of the response shown first"),
            size=11,
            anchor="end",
            fill=MUTED,
        )
    )
    body.append(_rect(left, 6, 12, 10, RED))
    body.append(_text(left + 18, 15, _("differs from 0.5 (p < 0.05)"), size=11, fill=MUTED))
    for i, r in enumerate(rows):
        cy = top + i * row_h
        biased = r["p_value"] < 0.05
        colour = RED if biased else "#93c5fd"
        share = r["share_first"]
        body.append(_text(left - 8, cy + 15, _shorten(r["rater"], 22), size=12, anchor="end"))
        tip = f"{r['rater']}: {share:.0%} of {r['n']}, {_p(r['p_value'])}"
        body.append(
            _rect(
                min(x(0.5), x(share)),
                cy + 4,
                abs(x(share) - x(0.5)) or 1.5,
                14,
                colour,
                cls="bar biased" if biased else "bar",
                tip=tip,
            )
        )
        note = f"{share:.0%} · n={r['n']} · {_p(r['p_value'])}"
        body.append(_text(right + 10, cy + 15, note, size=11, fill=RED if biased else MUTED))
    return _svg(width, height, title, body, "bias-chart")


# --------------------------------------------------------------------------------- progress over time


def _nice_step(top: float, ticks: int = 4) -> float:
    raw = max(top, 1) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def daily_chart(days: Sequence[tuple[date, int]], pace: float, pace_days: int) -> str:
    """Judgments per day as bars, oldest first, with the mean of the last pace_days days as a dashed line."""
    title = _("Judgments per day (UTC), last %(n)s days", n=len(days))
    if not days or not any(n for _d, n in days):
        return _empty(title, _("No judgments in the last %(n)s days.", n=len(days)), "daily-plot")
    width, left, right, top, bottom = 640, 48, 630, 20, 150
    step = _nice_step(max(max(n for _d, n in days), pace))
    ceiling = step * math.ceil(max(max(n for _d, n in days), pace) / step)
    y = _scale(0, ceiling, bottom, top)
    slot = (right - left) / len(days)
    body = []
    for tick in _ticks(0, ceiling, step):
        body.append(_line(left, y(tick), right, y(tick), stroke=INK if tick == 0 else GRID))
        body.append(_text(left - 6, y(tick) + 4, f"{tick:,.0f}", size=11, anchor="end", fill=MUTED))
    for i, (day, count) in enumerate(days):
        x = left + i * slot
        tip = _("%(day)s — judgments: %(n)s", day=day.isoformat(), n=f"{count:,}")
        if count:
            body.append(
                _rect(x + slot * 0.12, y(count), slot * 0.76, bottom - y(count), BLUE, cls="bar", tip=tip)
            )
        if (len(days) - 1 - i) % 7 == 0:
            body.append(
                _text(x + slot / 2, bottom + 15, day.strftime("%m-%d"), size=11, anchor="middle", fill=MUTED)
            )
    if pace > 0:
        body.append(_line(left, y(pace), right, y(pace), stroke=ORANGE, width=1.5, dash="5 4", cls="pace"))
        body.append(_line(right - 190, 6, right - 166, 6, stroke=ORANGE, width=1.5, dash="5 4"))
        body.append(
            _text(right - 160, 10, _("mean of the last %(n)s days", n=pace_days), size=11, fill=MUTED)
        )
    return _svg(width, bottom + 22, title, body, "daily-plot")
