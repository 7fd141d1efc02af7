"""`imagefit compare`: runs side by side on one self-contained HTML page.

The page holds the runs' scores in one table, their learning curves overlaid on shared axes (a run
without epochs, such as a linear one, as a dotted line at its validation value), their confusion
matrices side by side, and the settings in which they differ. Figures are embedded PNGs and the
style is the report's, so the page opens anywhere, offline, as report.html does.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path

from imagefit.data.atomic import write_text
from imagefit.errors import OptionError
from imagefit.evaluate.curves import overlaid_curves
from imagefit.evaluate.report import STYLE, confusion_table, flat_pairs, image_tag, number_cell
from imagefit.overview.listing import RunSummary, summarise
from imagefit.runs import read_history
from imagefit.runs.folder import CONFIG, EVALUATION, EVALUATION_DIR, HISTORY, METRICS
from imagefit.version import __version__

COMPARE_STYLE = """
.side{display:flex;flex-wrap:wrap;gap:16px}.side>div{flex:1 1 360px;min-width:300px}
table.runs td.best{font-weight:700;background:#e3f1e3}
"""
SCORES = (  # (field, heading, higher is better)
    ("valid_accuracy", "valid accuracy", True),
    ("valid_loss", "valid loss", False),
    ("valid_score", "valid score", True),
)


def compare(runs: Sequence[str | os.PathLike], out: str | os.PathLike = "compare.html") -> Path:
    """Write one HTML page comparing the run folders `runs`; returns its path."""
    paths = [Path(r) for r in runs]
    for path in paths:
        if not (path / CONFIG).is_file():
            raise OptionError(
                f"{path} is not a run folder (no {CONFIG}): give folders made by imagefit train"
            )
    names = _names(paths)
    summaries = [summarise(p, p) for p in paths]
    for summary, name in zip(summaries, names, strict=True):
        summary.run = name
    body = [
        _scores_section(summaries, paths),
        _curves_section(paths, names, summaries),
        _confusion_section(paths, names),
        _differences_section(paths, names),
    ]
    out = Path(out)
    write_text(out, _page(names, "\n".join(body)))
    return out


def _names(paths: list[Path]) -> list[str]:
    """Each run's folder name, or its path where two share a name."""
    names = [p.resolve().name for p in paths]
    return [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]


def _scores_section(summaries: list[RunSummary], paths: list[Path]) -> str:
    heads = ["run", "strategy", "backbone", "data", "train images", "valid images"]
    heads += [h for _, h, _ in SCORES] + ["ECE", "epochs", "best epoch", "seconds", "date"]
    best = {f: _best([getattr(s, f) for s in summaries], up) for f, _, up in SCORES}
    rows = []
    for s, path in zip(summaries, paths, strict=True):
        ece = (_json(path / METRICS).get("trust") or {}).get("ece")
        cells = [
            f"<td>{escape(v)}</td>" for v in (s.run, s.strategy, s.backbone, Path(s.data).name or s.data)
        ]
        cells += [number_cell(s.train_images), number_cell(s.valid_images)]
        for field, _, _ in SCORES:
            value = getattr(s, field)
            cells.append(
                number_cell(value, cls="num best" if value is not None and value == best[field] else "num")
            )
        cells += [number_cell(ece), number_cell(s.epochs), number_cell(s.best_epoch)]
        cells += [number_cell(s.seconds, 1), f"<td>{escape(s.date)}</td>"]
        rows.append(f'<tr data-run="{escape(s.run)}">{"".join(cells)}</tr>')
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr>"
    note = (
        "<p>Scores of each run's kept model on its validation images. Valid score: samples-F1 of a "
        "multi-label run, mIoU of a map run's validation map (whose accuracy is per pixel), else the "
        "accuracy. The best of each score is highlighted.</p>"
    )
    return (
        f'<section id="scores"><h2>Scores</h2>{note}'
        f'<table class="runs" id="runs-table">{head}{"".join(rows)}</table></section>'
    )


def _curves_section(paths: list[Path], names: list[str], summaries: list[RunSummary]) -> str:
    histories = {n: _history(p) for p, n in zip(paths, names, strict=True)}
    finals = {
        s.run: {"val_loss": s.valid_loss, "val_acc": s.valid_accuracy}
        for s in summaries
        if not histories[s.run]
    }
    with tempfile.TemporaryDirectory() as tmp:
        png = overlaid_curves(histories, finals, Path(tmp) / "curves.png")
        figure = image_tag(png, "learning curves of the runs overlaid") if png else ""
    note = (
        "<p>Loss and accuracy per epoch, a colour per run: training solid, validation dashed. A run "
        "without epochs (linear) is a dotted line at its validation value.</p>"
    )
    return f'<section id="curves"><h2>Learning curves</h2>{note}{figure}</section>'


def _differences_section(paths: list[Path], names: list[str]) -> str:
    configs = [dict(flat_pairs(_json(p / CONFIG))) for p in paths]
    keys = sorted({k for c in configs for k in c} - {"imagefit_version", "format_version"})
    keys = [k for k in keys if len({c.get(k) for c in configs}) > 1 and not k.startswith("model.")]
    if not keys:
        return '<section id="differences"><h2>Differences</h2><p>The configs agree.</p></section>'
    head = "<tr><th>setting</th>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"
    rows = "".join(
        f"<tr><td>{escape(k)}</td>" + "".join(f"<td>{escape(c.get(k, '-'))}</td>" for c in configs) + "</tr>"
        for k in keys
    )
    return (
        '<section id="differences"><h2>Differences</h2><p>The settings of config.json that differ '
        f'between the runs.</p><table class="kv" id="differences-table">{head}{rows}</table></section>'
    )


def _confusion_section(paths: list[Path], names: list[str]) -> str:
    panels = []
    for i, (path, name) in enumerate(zip(paths, names, strict=True)):
        saved = path / EVALUATION_DIR / EVALUATION
        ev = _json(saved)
        if "confusion_matrix" not in ev:
            panels.append(
                f'<div><h3>{escape(name)}</h3><p class="note">no evaluation of its validation images with '
                "a confusion matrix (imagefit evaluate RUN DATA writes one)</p></div>"
            )
            continue
        facts = f"{ev.get('split') or 'evaluated'}: {ev['n']} images, accuracy {ev['accuracy']:.2%}"
        figure = image_tag(
            saved.parent / ev.get("confusion_figure", "confusion.png"), f"confusion matrix of {name}"
        )
        panels.append(
            f'<div class="confusion" data-run="{escape(name)}"><h3>{escape(name)}</h3><p>{escape(facts)}</p>'
            f"{confusion_table(ev, f'confusion-{i}')}{figure}</div>"
        )
    note = "<p>Rows are true classes, columns predicted ones; in brackets, the share of the true class.</p>"
    return (
        f'<section id="confusion"><h2>Confusion matrices</h2>{note}<div class="side">{"".join(panels)}</div>'
        "</section>"
    )


def _page(names: list[str], body: str) -> str:
    title = f"imagefit compare: {', '.join(names)}"
    nav = "".join(f'<a href="#{a}">{a}</a>' for a in ("scores", "curves", "confusion", "differences"))
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}{COMPARE_STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(title)}</h1><p>{len(names)} runs · written {stamp} by imagefit "
        f"{escape(__version__)}</p><nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _best(values: list, higher: bool):
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    return max(known) if higher else min(known)


def _history(path: Path) -> list[dict]:
    try:
        return read_history(path / HISTORY) if (path / HISTORY).is_file() else []
    except (ValueError, KeyError):
        return []


def _json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}
