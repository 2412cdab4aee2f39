"""``picinspector measures`` and ``picinspector samples``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._app import EXIT_USAGE, app


@app.command()
def measures() -> None:
    """List every measure: name, unit and description."""
    from ..measures import measure_units

    table = Table(title="PicInspector measures", show_lines=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("unit", style="cyan", max_width=24)
    table.add_column("description")
    for name, (unit, description) in measure_units().items():
        table.add_row(name, unit, description)
    Console().print(table)


@app.command()
def samples(
    folder: Annotated[str, typer.Argument(help="Folder to write the photos into (created if needed).")],
    degraded: Annotated[bool, typer.Option("--degraded/--no-degraded",
                                           help="Also write copies with one clear problem each.")] = True,
) -> None:
    """Write the real sample photos that scikit-image, scikit-learn and matplotlib ship (no download)."""
    from ..samples import write_samples

    try:
        written = write_samples(folder, degraded=degraded)
    except ImportError as exc:
        Console(stderr=True).print(Text(str(exc), style="red"))  # Text: "[samples]" is not markup
        raise typer.Exit(EXIT_USAGE) from exc
    typer.echo(f"wrote {len(written)} photos to {folder}")
