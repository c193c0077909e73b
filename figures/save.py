"""Figures saved byte for byte reproducibly: a PDF without its wall-clock creation date."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path, dpi: int = 120) -> None:
    """`fig.savefig(path, dpi=dpi)`, leaving out the PDF backend's CreationDate, so that a
    regenerated figure equals the committed one."""
    pdf = Path(path).suffix.lower() == ".pdf"
    fig.savefig(path, dpi=dpi, metadata={"CreationDate": None} if pdf else None)
