"""The GRU-vs-LSTM verdict: which retrained cell to ship, and why."""

from __future__ import annotations

from forecaster.report.comparison import CellResult


def choose_winner(results: list[CellResult], prefer_smaller_within: float) -> tuple[str, str]:
    """The cell to ship and why, from validation loss only (never the test part).

    The lower validation loss wins, unless the other model is within `prefer_smaller_within`
    (relative to the better loss) and has fewer parameters: then the smaller model wins.
    """
    if len(results) == 1:
        only = results[0]
        return only.cell, (
            f"{only.cell.upper()} is the only cell searched (validation loss {only.val_loss:.5g})"
        )
    best, other = sorted(results, key=lambda r: (r.val_loss, r.params))[:2]
    gap = (other.val_loss - best.val_loss) / best.val_loss if best.val_loss > 0 else 0.0
    if gap <= prefer_smaller_within and other.params < best.params:
        return other.cell, (
            f"{other.cell.upper()} wins: its validation loss {other.val_loss:.5g} is within "
            f"{prefer_smaller_within:.0%} of {best.cell.upper()}'s {best.val_loss:.5g} "
            f"({gap:.1%} apart) and it has fewer parameters ({other.params:,} vs "
            f"{best.params:,})"
        )
    tie_note = (
        f"; within {prefer_smaller_within:.0%} but {other.cell.upper()} is not smaller"
        if gap <= prefer_smaller_within
        else ""
    )
    return best.cell, (
        f"{best.cell.upper()} wins: lower validation loss {best.val_loss:.5g} vs "
        f"{other.cell.upper()}'s {other.val_loss:.5g} ({gap:.1%} higher){tie_note}"
    )
