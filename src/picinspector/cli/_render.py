"""Rich rendering of a report row: the panel `analyze` prints."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .._text import printable

_SEVERITY_STYLE = {"info": "cyan", "minor": "yellow", "moderate": "dark_orange", "severe": "bold red"}
_BAR_WIDTH = 12


def _score_style(value: float | None) -> str:
    if value is None:
        return "dim"
    return "green" if value >= 65 else "yellow" if value >= 40 else "red"


def _score_line(name: str, value: float | None) -> Text:
    text = Text(f"{name:<13}")
    if value is None:
        return text.append("   n/a", style="dim")
    style = _score_style(value)
    filled = int(round(max(0.0, min(100.0, value)) / 100 * _BAR_WIDTH))
    text.append(f"{value:5.1f} ", style=f"bold {style}")
    text.append("█" * filled, style=style)
    text.append("░" * (_BAR_WIDTH - filled), style="dim")
    return text


def _key_measures(m: dict[str, Any]) -> Text:
    parts = []
    if isinstance(m.get("exposure_ev"), (int, float)):
        parts.append(f"exposure {m['exposure_ev']:+.1f} EV")
    if isinstance(m.get("noise_sigma"), (int, float)):
        parts.append(f"noise sigma {m['noise_sigma']:.1f}")
    if isinstance(m.get("jpeg_quality"), (int, float)):
        parts.append(f"JPEG quality {m['jpeg_quality']:.0f}")
    if m.get("blur_kind"):
        parts.append(f"blur {m['blur_kind']}")
    return Text(" · ".join(parts), style="dim")


def render_report(row: dict[str, Any], width: int | None = None) -> Panel:
    """A Rich panel for one report row (``Report.to_dict()``), ``width`` columns wide (None: fit)."""
    from ..report import SCORE_NAMES

    body: list[Any] = [Text(f"{row.get('width')}×{row.get('height')} {row.get('format')}", style="dim")]

    scores = row.get("scores") or {}
    grid = Table.grid(padding=(0, 3))
    grid.add_column()
    grid.add_column()
    lines = [_score_line(n, scores.get(n)) for n in SCORE_NAMES]
    for left, right in zip(lines[0::2], lines[1::2]):
        grid.add_row(left, right)
    body += [Text(""), grid]

    scene = row.get("scene") or {}
    conf = scene.get("confidence")
    scene_text = Text("scene  ", style="bold").append(str(scene.get("label")), style="bold magenta")
    if conf is not None:
        scene_text.append(f"  {conf:.2f}")
        if conf < 0.4:
            scene_text.append(" (weak guess)", style="italic dim")
    if scene.get("method"):
        scene_text.append(f"  via {scene['method']}", style="dim")
    body += [Text(""), scene_text]

    findings = row.get("findings") or []
    if findings:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column()
        for f in findings:
            style = _SEVERITY_STYLE.get(f.get("severity"), "white")
            text = Text(str(f.get("message", "")))
            if f.get("suggestion"):
                text.append("\n→ " + str(f["suggestion"]), style="dim")
            table.add_row(Text(f"● {f.get('severity', '')}", style=style), text)
        body += [Text(""), table]

    if row.get("feedback"):
        body += [Text(""), Text(str(row["feedback"]))]
    measures = _key_measures(row.get("measures") or {})
    if measures.plain:
        body += [Text(""), measures]
    return Panel(Group(*body), title=Text(printable(row.get("path")), style="bold"), title_align="left",
                 expand=False, width=width)

