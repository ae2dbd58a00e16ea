"""Charts as inline SVG, drawn on the server by pygal.

The pages' Content-Security-Policy allows no inline style or script, so each chart is
rendered without pygal's script and its <style> element is taken out; the same CSS, built
once from the same chart configurations, is served as a stylesheet (charts_css()). Every
chart id is fixed (#chart-share, #chart-mix, ...), so that CSS matches what the pages show.

Charts are readable without colour: each line has its own dash pattern and width, the
legend draws that pattern (not just a colour swatch), breach points carry markers, bars
carry hatch patterns, and every chart is followed on its page by a table of the same
figures. Floats appear only here, as drawing coordinates; the tables show exact figures.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from functools import cache, lru_cache
from xml.etree import ElementTree  # nosec B405  # builds and edits pygal's own tree; parses no outside XML

import pygal
from markupsafe import Markup
from pygal.style import Style

from models.money import currency_exponent

# pygal appends a legacy import hook (find_module only, for its map plugins, unused here) to
# sys.meta_path; Python 3.11 raises an ImportWarning at every failed import that reaches it.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

INK, RED, AMBER, BLUE, GREEN, GREY = "#1c2330", "#b3261e", "#9a6200", "#1f5fbf", "#1d7a3e", "#6b7280"


@dataclass(frozen=True)
class Line:
    """How one series is drawn: the stroke, and whether each point gets a marker."""

    color: str
    width: float
    dash: str | None = None
    dots: bool = False


@dataclass(frozen=True)
class Fill:
    """How one stacked-bar series is filled: a colour and, for all but one, a hatch."""

    color: str
    #: "diagonal", "dots", "horizontal" or None for a solid fill.
    hatch: str | None = None


SHARE_LINES = (
    Line(INK, 2.5),                              # the share
    Line(RED, 2, "10,5"),                        # the cap
    Line(AMBER, 2, "2,5"),                       # the warning level
    Line(RED, 6, dots=True),                     # days (months) in breach
)
WHATIF_LINES = (
    Line(INK, 2.5),                              # share, current policy
    Line(BLUE, 2.5, "12,4,2,4"),                 # share, what-if policy
    Line(RED, 2, "10,5"),                        # current cap
    Line(BLUE, 2, "2,5"),                        # what-if cap
)
MIX_FILLS = (
    Fill(RED, "diagonal"),                       # lab employees
    Fill(BLUE),                                  # individuals
    Fill(GREEN, "dots"),                         # foundations
    Fill(GREY, "horizontal"),                    # other
)


def _style(colors: tuple[str, ...]) -> Style:
    return Style(
        background="#ffffff", plot_background="#ffffff", foreground=INK,
        foreground_strong=INK, foreground_subtle="#8a93a3", colors=colors,
        font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        label_font_size=12, major_label_font_size=12, legend_font_size=13,
        title_font_size=15, value_font_size=11, opacity=".85", opacity_hover=".95",
        transition="0ms",
    )


def _common(colors: tuple[str, ...]) -> dict:
    return dict(
        style=_style(colors), js=[], disable_xml_declaration=True, explicit_size=False,
        width=960, height=380, legend_at_bottom=True, legend_at_bottom_columns=2,
        truncate_legend=-1, truncate_label=-1, show_x_guides=False, pretty_print=False,
        margin=16,
    )


# --- post-processing: no inline style or script; legends that show the line style ----------

def _local(tag) -> str:
    return tag.split("}")[-1] if isinstance(tag, str) else ""


def _classes(element) -> list[str]:
    return element.get("class", "").split()


class _Cleaner:
    """An xml_filter: takes pygal's <style> out (kept in .css) and makes the SVG safe
    under the CSP and accessible as one image with a text alternative."""

    def __init__(self, uuid: str, label: str, lines: tuple[Line, ...] = (),
                 fills: tuple[Fill, ...] = ()):
        self.uuid = uuid
        self.label = label
        self.lines = lines
        self.fills = fills
        self.css = ""

    def __call__(self, root):
        parents = {child: parent for parent in root.iter() for child in parent}
        for element in list(root.iter()):
            tag = _local(element.tag)
            parent = parents.get(element)
            if tag == "style":
                self.css = element.text or ""
                parent.remove(element)
            elif tag == "script" or (tag == "desc" and parent is not None):
                parent.remove(element)
            elif tag == "g" and "tooltip-overlay" in _classes(element):
                parent.remove(element)  # needs pygal's script, and carries a style attribute
        for element in root.iter():
            element.attrib.pop("style", None)
            if element.get("id", "").startswith("activate-serie"):
                del element.attrib["id"]  # the same ids in every chart: not unique on a page
        if self.fills:
            self._patterns(root)
        self._legend(root)
        root.set("role", "img")
        root.set("aria-label", self.label)
        root.set("focusable", "false")
        return root

    def _pattern_id(self, index: int) -> str:
        return f"chart-{self.uuid}-hatch-{index}"

    def _patterns(self, root) -> None:
        defs = next((e for e in root if _local(e.tag) == "defs"), None)
        if defs is None:
            defs = ElementTree.SubElement(root, "defs")
        for i, fill in enumerate(self.fills):
            if fill.hatch is None:
                continue
            pattern = ElementTree.SubElement(defs, "pattern", {
                "id": self._pattern_id(i), "patternUnits": "userSpaceOnUse",
                "width": "8", "height": "8",
                **({"patternTransform": "rotate(45)"} if fill.hatch == "diagonal" else {}),
            })
            ElementTree.SubElement(pattern, "rect", {"width": "8", "height": "8",
                                                     "fill": fill.color, "fill-opacity": "0.35"})
            if fill.hatch == "dots":
                ElementTree.SubElement(pattern, "circle", {"cx": "4", "cy": "4", "r": "2",
                                                           "fill": fill.color})
            else:  # stripes: vertical before the 45° turn, or horizontal
                ElementTree.SubElement(pattern, "rect", {
                    "width": "3" if fill.hatch == "diagonal" else "8",
                    "height": "8" if fill.hatch == "diagonal" else "3", "fill": fill.color})
        for group in root.iter("g"):
            classes = _classes(group)
            if "series" not in classes:
                continue
            index = next((int(c[6:]) for c in classes if c.startswith("serie-")), None)
            if index is None or index >= len(self.fills):
                continue
            for rect in group.iter("rect"):
                # A presentation attribute: the CSS colours the group, not the bar itself.
                rect.set("fill", self._fill(index))
                rect.set("stroke", self.fills[index].color)

    def _fill(self, index: int) -> str:
        fill = self.fills[index]
        return f"url(#{self._pattern_id(index)})" if fill.hatch else fill.color

    def _legend(self, root) -> None:
        for group in root.iter("g"):
            if "legend" not in _classes(group):
                continue
            swatch = next((e for e in group if _local(e.tag) == "rect"), None)
            if swatch is None:
                continue
            index = next((int(c[6:]) for c in _classes(swatch) if c.startswith("color-")), None)
            if index is None:
                continue
            x, y = float(swatch.get("x", 0)), float(swatch.get("y", 0))
            size = float(swatch.get("width", 12))
            if index < len(self.fills):
                swatch.set("class", "legend-swatch")
                swatch.set("fill", self._fill(index))
                swatch.set("stroke", self.fills[index].color)
            elif index < len(self.lines):
                line = self.lines[index]
                group.remove(swatch)
                middle = y + size / 2
                sample = ElementTree.Element("line", {
                    "x1": str(x - 8), "y1": str(middle), "x2": str(x + size), "y2": str(middle),
                    "stroke": line.color, "stroke-width": str(min(line.width, 4)),
                    "class": "legend-sample",
                })
                if line.dash:
                    sample.set("stroke-dasharray", line.dash)
                group.insert(0, sample)
                if line.dots:
                    group.insert(1, ElementTree.Element("circle", {
                        "cx": str(x + size / 2 - 4), "cy": str(middle), "r": "4",
                        "fill": line.color, "class": "legend-sample"}))


def _line_css(uuid: str, lines: tuple[Line, ...]) -> str:
    rules = []
    for i, line in enumerate(lines):
        rules.append(
            f"#chart-{uuid} .serie-{i} .line.reactive, #chart-{uuid} .serie-{i} .line.reactive.active"
            f" {{ stroke: {line.color}; stroke-width: {line.width}px;"
            f" stroke-dasharray: {line.dash or 'none'}; stroke-linecap: butt; stroke-opacity: 1; }}"
        )
        rules.append(f"#chart-{uuid} .serie-{i} .dot {{ fill: {line.color}; stroke: {INK};"
                     " fill-opacity: 1; }")
    return "\n".join(rules)


def _render(chart, cleaner: _Cleaner) -> tuple[Markup, str]:
    chart.uuid = cleaner.uuid
    chart.xml_filters = [cleaner]
    svg = chart.render(is_unicode=True)
    css = cleaner.css
    if cleaner.lines:
        css += "\n" + _line_css(cleaner.uuid, cleaner.lines)
    return Markup(svg), css  # noqa: S704 - pygal's own escaped output, no user markup in it  # nosec B704


# --- the charts ---------------------------------------------------------------------------------

def _percent_axis(top: Fraction) -> list[float]:
    steps = max(1, int(float(top) * 10 + 0.999))
    return [i / 10 for i in range(steps + 1)]


def _month_ticks(start: date, end: date) -> list[date]:
    ticks = []
    current = start.replace(day=1)
    if current < start:
        current = (current + timedelta(days=32)).replace(day=1)
    while current <= end:
        ticks.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return ticks or [start]


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _level(points: list, value) -> list[tuple[date, float]]:
    """A horizontal line across the chart (the cap, the warning level)."""
    if not points:
        return []
    return [(points[0].day, float(value)), (points[-1].day, float(value))]


@dataclass(frozen=True)
class SharePoint:
    day: date
    share: Fraction
    in_breach: bool


def share_chart(uuid: str, label: str, points: list[SharePoint], cap, warning,
                breach_label: str, share_label: str = "Lab-employee share",
                dots: bool = False) -> tuple[Markup, str]:
    """The share over time with the cap and warning lines; breach points marked.

    With `dots` (a few points, e.g. month ends) every point gets a marker and its own
    axis label; otherwise the axis shows the first of each month. The same figures draw
    the same chart, so recent drawings are kept (the dashboard is read far more often
    than the ledger changes)."""
    return _share_chart(uuid, label, tuple(points), cap, warning, breach_label, share_label, dots)


@lru_cache(maxsize=16)
def _share_chart(uuid: str, label: str, points: tuple[SharePoint, ...], cap, warning,
                 breach_label: str, share_label: str, dots: bool) -> tuple[Markup, str]:
    lines = SHARE_LINES if not dots else (Line(INK, 2.5, dots=True), *SHARE_LINES[1:])
    peak = max((p.share for p in points), default=Fraction(0))
    top = max(Fraction(cap) + Fraction(1, 10), peak + Fraction(1, 20))
    top = min(top, Fraction(1))
    chart = pygal.DateLine(
        **_common(tuple(line.color for line in lines)), allow_interruptions=True,
        show_dots=False, range=(0, float(top)), y_labels=_percent_axis(top),
        value_formatter=_percent, x_value_formatter=lambda d: d.strftime("%b %Y"),
        x_labels=([p.day for p in points] if dots else _month_ticks(points[0].day, points[-1].day))
        if points else [],
        title=label,
    )
    chart.add(share_label, [(p.day, float(p.share)) for p in points],
              show_dots=dots, dots_size=3)
    chart.add(f"Cap {_percent(float(cap))} (must stay below)", _level(points, cap))
    chart.add(f"Warning {_percent(float(warning))}", _level(points, warning))
    chart.add(breach_label, [(p.day, float(p.share) if p.in_breach else None) for p in points],
              show_dots=True, dots_size=4)
    return _render(chart, _Cleaner(uuid, label, lines))


@dataclass(frozen=True)
class MixBar:
    label: str
    lab_minor: int
    individuals_minor: int
    foundations_minor: int
    other_minor: int


def _money_formatter(currency: str) -> Callable[[float], str]:
    def money(value: float) -> str:
        if abs(value) >= 1_000_000:
            return f"{value / 1_000_000:.1f}M {currency}"
        if abs(value) >= 1_000:
            return f"{value / 1_000:.0f}k {currency}"
        return f"{value:.0f} {currency}"
    return money


def mix_chart(uuid: str, label: str, bars: list[MixBar], currency: str) -> tuple[Markup, str]:
    """Monthly funding stacked by attribution, each part with its own hatch."""
    return _mix_chart(uuid, label, tuple(bars), currency)


@lru_cache(maxsize=16)
def _mix_chart(uuid: str, label: str, bars: tuple[MixBar, ...], currency: str
               ) -> tuple[Markup, str]:
    unit = 10 ** currency_exponent(currency)
    chart = pygal.StackedBar(
        **_common(tuple(f.color for f in MIX_FILLS)), value_formatter=_money_formatter(currency),
        x_label_rotation=0, title=label, print_values=False, min_scale=4, max_scale=8,
    )
    chart.x_labels = [b.label for b in bars]
    for name, attribute in (("Lab employees", "lab_minor"), ("Individuals", "individuals_minor"),
                            ("Foundations", "foundations_minor"), ("Other", "other_minor")):
        chart.add(name, [max(getattr(b, attribute), 0) / unit for b in bars])
    return _render(chart, _Cleaner(uuid, label, fills=MIX_FILLS))


#: Donors of a year by how they came: retained from the year before, recaptured, new.
DONOR_FILLS = (
    Fill(BLUE),                                  # retained
    Fill(GREEN, "dots"),                         # recaptured
    Fill(AMBER, "diagonal"),                     # new
)
MONTH_FILLS = (Fill(BLUE),)


def donors_chart(uuid: str, label: str, years: list[tuple[str, int, int, int]]
                 ) -> tuple[Markup, str]:
    """Donors per year, stacked: (year label, retained, recaptured, new)."""
    top = max((sum(y[1:]) for y in years), default=0)
    step = max(1, -(-top // 5))  # whole donors on the axis, about five steps
    chart = pygal.StackedBar(
        **_common(tuple(f.color for f in DONOR_FILLS)), x_label_rotation=0, title=label,
        print_values=False, value_formatter=lambda v: f"{v:.0f}",
        y_labels=list(range(0, top + step + 1, step)),
    )
    chart.x_labels = [y[0] for y in years]
    for i, name in enumerate(("Retained", "Recaptured", "New")):
        chart.add(name, [y[i + 1] for y in years])
    return _render(chart, _Cleaner(uuid, label, fills=DONOR_FILLS))


def months_chart(uuid: str, label: str, months: list[tuple[str, int]], currency: str
                 ) -> tuple[Markup, str]:
    """Giving per month: (month label, total in minor units)."""
    unit = 10 ** currency_exponent(currency)
    chart = pygal.Bar(
        **_common(tuple(f.color for f in MONTH_FILLS)), x_label_rotation=0, title=label,
        print_values=False, min_scale=4, max_scale=8, show_legend=False,
        value_formatter=_money_formatter(currency),
    )
    chart.x_labels = [m[0] for m in months]
    chart.add("Giving", [max(m[1], 0) / unit for m in months])
    return _render(chart, _Cleaner(uuid, label, fills=MONTH_FILLS))


#: Giving by campaign, appeal or fund: restricted (hatched) and unrestricted money.
DESIGNATION_FILLS = (Fill(BLUE), Fill(AMBER, "diagonal"))


def designation_chart(uuid: str, label: str, bars: list[tuple[str, int, bool]], currency: str
                      ) -> tuple[Markup, str]:
    """Giving per campaign (appeal, fund), one horizontal bar each: (label, total in minor
    units, restricted). Restricted money is its own hatched series, so it reads apart."""
    unit = 10 ** currency_exponent(currency)
    chart = pygal.HorizontalStackedBar(
        **{**_common(tuple(f.color for f in DESIGNATION_FILLS)),
           "height": max(200, 60 + 34 * len(bars))},
        title=label, print_values=False, min_scale=4, max_scale=8,
        value_formatter=_money_formatter(currency),
    )
    chart.x_labels = [b[0] for b in bars]
    chart.add("Unrestricted", [None if b[2] else max(b[1], 0) / unit for b in bars])
    chart.add("Restricted", [max(b[1], 0) / unit if b[2] else None for b in bars])
    return _render(chart, _Cleaner(uuid, label, fills=DESIGNATION_FILLS))


@dataclass(frozen=True)
class ComparePoint:
    day: date
    current: Fraction
    whatif: Fraction


def whatif_chart(uuid: str, label: str, points: list[ComparePoint], cap, whatif_cap
                 ) -> tuple[Markup, str]:
    peak = max((max(p.current, p.whatif) for p in points), default=Fraction(0))
    top = min(max(Fraction(max(cap, whatif_cap)) + Fraction(1, 10), peak + Fraction(1, 20)),
              Fraction(1))
    chart = pygal.DateLine(
        **_common(tuple(line.color for line in WHATIF_LINES)), show_dots=False,
        range=(0, float(top)), y_labels=_percent_axis(top), value_formatter=_percent,
        x_value_formatter=lambda d: d.strftime("%b %Y"),
        x_labels=_month_ticks(points[0].day, points[-1].day) if points else [], title=label,
    )
    chart.add("Share, current policy", [(p.day, float(p.current)) for p in points])
    chart.add("Share, what-if policy", [(p.day, float(p.whatif)) for p in points])
    chart.add(f"Current cap {_percent(float(cap))}", _level(points, cap))
    chart.add(f"What-if cap {_percent(float(whatif_cap))}", _level(points, whatif_cap))
    return _render(chart, _Cleaner(uuid, label, WHATIF_LINES))


#: The public funding page's categories, in app.ledger.funding_report.CATEGORIES order.
FUNDING_FILLS = (
    Fill(BLUE),                                  # individuals
    Fill(GREEN, "dots"),                         # foundations
    Fill(INK, "horizontal"),                     # government
    Fill(RED, "diagonal"),                       # lab employees
    Fill(AMBER, "dots"),                         # other companies
    Fill(RED, "horizontal"),                     # labs (corporate)
    Fill(GREY, "diagonal"),                      # other
)


def funding_chart(uuid: str, label: str, names: tuple[str, ...],
                  years: list[tuple[str, tuple[int, ...]]], currency: str) -> tuple[Markup, str]:
    """Funding per year stacked by category: (year label, minor units per category in
    `names` order). The page follows it with the same figures as a table."""
    return _funding_chart(uuid, label, names, tuple(years), currency)


@lru_cache(maxsize=16)
def _funding_chart(uuid: str, label: str, names: tuple[str, ...],
                   years: tuple[tuple[str, tuple[int, ...]], ...], currency: str
                   ) -> tuple[Markup, str]:
    unit = 10 ** currency_exponent(currency)
    fills = FUNDING_FILLS[:len(names)]
    chart = pygal.StackedBar(
        **_common(tuple(f.color for f in fills)), value_formatter=_money_formatter(currency),
        x_label_rotation=0, title=label, print_values=False, min_scale=4, max_scale=8,
    )
    chart.x_labels = [y[0] for y in years]
    for i, name in enumerate(names):
        chart.add(name, [max(y[1][i], 0) / unit for y in years])
    return _render(chart, _Cleaner(uuid, label, fills=fills))


# --- the stylesheet ------------------------------------------------------------------------------

def _sample_points(days: int = 40) -> list[SharePoint]:
    start = date(2026, 1, 1)
    return [SharePoint(start + timedelta(days=i), Fraction(40 + i, 100), 40 + i >= 50)
            for i in range(days)]


@cache
def charts_css() -> str:
    """The CSS of every chart the pages draw, rendered from sample data with the same
    configuration (the CSS depends on the configuration only, not on the figures)."""
    sample = _sample_points()
    parts = [
        share_chart("share", "sample", sample, "0.5", "0.4", "In breach")[1],
        share_chart("forecast", "sample", sample, "0.5", "0.4", "Breach", dots=True)[1],
        mix_chart("mix", "sample", [MixBar("2026-01", 1, 2, 3, 4)], "USD")[1],
        donors_chart("donors", "sample", [("2026", 1, 2, 3)])[1],
        months_chart("months", "sample", [("Jan", 100)], "USD")[1],
        funding_chart("funding", "sample", tuple(f"c{i}" for i in range(len(FUNDING_FILLS))),
                      [("2026", tuple(range(1, len(FUNDING_FILLS) + 1)))], "USD")[1],
        *[designation_chart(f"by-{kind}", "sample", [("a", 100, False), ("b", 50, True)],
                            "USD")[1] for kind in ("campaign", "appeal", "fund")],
        whatif_chart("whatif", "sample",
                     [ComparePoint(p.day, p.share, p.share / 2) for p in sample], "0.5", "0.3")[1],
    ]
    return "\n".join(parts) + "\n"
