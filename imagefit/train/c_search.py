"""The search for a linear head's regularisation C: a grid, extended while the best C is on an edge."""

from __future__ import annotations

from collections.abc import Callable

from tqdm.auto import tqdm

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # searched first
# Steps of about half a decade; the search walks on while the best C sits on an edge of what it
# tried, and stops at either end of this ladder.
C_LADDER = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, *C_GRID, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3)


def search_c(loss: Callable[[float], float], progress: bool = False) -> dict[float, float]:
    """loss(C) over C_GRID, extended one ladder step at a time while the best C is on an edge."""
    losses: dict[float, float] = {}
    todo = list(C_GRID)
    with tqdm(desc="fit head", unit="C", disable=not progress, leave=False) as bar:
        while todo:
            for c in todo:
                losses[c] = loss(c)
                bar.update()
            todo = _beyond_edge(losses)
    return dict(sorted(losses.items()))


def _beyond_edge(losses: dict[float, float]) -> list[float]:
    """The next ladder value past the best C when it is the smallest or largest tried, else none."""
    best = min(losses, key=losses.get)
    i = C_LADDER.index(best)
    if best == min(losses) and i > 0:
        return [C_LADDER[i - 1]]
    if best == max(losses) and i < len(C_LADDER) - 1:
        return [C_LADDER[i + 1]]
    return []
