"""The journal of a fix: every planned move, written before the first one, so any state can be undone.

The first line (written atomically) holds the whole plan: each move's source, destination, size
and content digest, and the folders the fix creates. Later lines record the state, "applied" or
"undone". Undo reads only the plan and what is on disk, so it works after a kill at any point:
a move not yet made is left alone, a move made is reversed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from imagefit.data.atomic import write_text
from imagefit.data.digests import file_digest
from imagefit.errors import DataError

FORMAT = "imagefit-fix-journal"
APPLIED, UNDONE = "applied", "undone"


@dataclass
class Move:
    """One file moved by a fix, and why (the FIXES row that asked for it)."""

    source: str
    target: str
    row: int
    action: str
    size: int = 0
    digest: str = ""


@dataclass
class Journal:
    """A fix's plan and its state (None: started, perhaps interrupted)."""

    path: Path
    data: str
    moves: list[Move]
    created: list[str] = field(default_factory=list)  # folders the fix makes, parents first
    state: str | None = None


def write_plan(journal: Journal) -> None:
    """Write the journal's first line (atomically, synced) before anything moves."""
    head = {
        "format": FORMAT,
        "data": journal.data,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "created": journal.created,
        "moves": [asdict(m) for m in journal.moves],
    }
    write_text(journal.path, json.dumps(head, ensure_ascii=False) + "\n")


def mark(journal: Journal, state: str) -> None:
    """Append a state line and sync it to disk."""
    with open(journal.path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"state": state, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    journal.state = state


def read_journal(path: str | os.PathLike) -> Journal:
    """A journal written by `imagefit fix`; DataError when the file is not one."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        head = json.loads(lines[0])
        if head.get("format") != FORMAT:
            raise ValueError("not written by imagefit fix")
        states = [json.loads(line)["state"] for line in lines[1:] if line.strip()]
        moves = [Move(**m) for m in head["moves"]]
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such journal: give the file imagefit fix wrote") from exc
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path} is not an imagefit fix journal ({exc})") from exc
    return Journal(path, head["data"], moves, head.get("created", []), states[-1] if states else None)


def move_file(source: Path, target: Path) -> None:
    """Rename `source` to `target`; across file systems, copy (synced), then remove the source."""
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV
            raise
        shutil.copy2(source, target)
        with open(target, "rb") as fh:
            os.fsync(fh.fileno())
        os.unlink(source)


def reverse(journal: Journal) -> list[Move]:
    """Put every moved file back where it was, newest move first; the moves reversed."""
    restored = []
    for move in reversed(journal.moves):
        source, target = Path(move.source), Path(move.target)
        here, there = os.path.lexists(source), os.path.lexists(target)
        if there and not here:
            source.parent.mkdir(parents=True, exist_ok=True)
            move_file(target, source)
            restored.append(move)
        elif there and here:
            if file_digest(target) != file_digest(source):
                raise DataError(
                    f"{source} and {target} both exist and differ: move one away, then undo again"
                )
            target.unlink()  # a copy left by a move across file systems, killed before removing its source
        elif not here:
            raise DataError(f"{source} is gone and {target} too: it cannot be put back")
    for folder in reversed(journal.created):
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
    return restored
