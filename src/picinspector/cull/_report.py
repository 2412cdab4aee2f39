"""The cull in the HTML report: the page script that draws groups as strips and the rating badges."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["CULL_SCRIPT", "has_cull", "report_scripts"]

#: The report asset (``picinspector/report/assets``) that draws the groups section and the badges.
CULL_SCRIPT = "cull.js"


def has_cull(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether result rows carry a cull (``picinspector cull`` output)."""
    return any(isinstance(r.get("cull"), dict) for r in rows)


def report_scripts() -> tuple[str, ...]:
    """The page's scripts with the cull's added (for `~picinspector.report.html.build_report`)."""
    from ..report.html import PAGE_SCRIPTS

    return (*PAGE_SCRIPTS, CULL_SCRIPT)
