"""audit.html: one self-contained page, a summary then each kind of finding as a gallery, worst first.

Thumbnails are small JPEGs embedded as base64 data URIs and the style sheet is inline (the one
report.html uses), so the page opens anywhere offline. Every user string is HTML-escaped.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import time
from html import escape
from pathlib import Path

from imagefit.audit.findings import KINDS, UNUSABLE, Finding
from imagefit.data.atomic import write_text
from imagefit.data.images import ImageReadError, open_image
from imagefit.evaluate.report import STYLE
from imagefit.version import __version__

SHOWN = 60  # thumbnails per kind; audit.csv lists them all
THUMB = 160
TITLES = {
    "label_issue": "Likely label errors",
    "leakage": "Leakage: the same image in two splits",
    "cross_class": "The same image in two classes",
    "near_duplicate": "Near-duplicates within a class",
    "outlier": "Outliers: far from every other image",
    "unusable": "Unusable files",
}
EXTRA_STYLE = """
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:172px;background:#fafbfc;border:1px solid #dde1e7;border-radius:4px;padding:5px}
figure img{width:160px;height:160px;object-fit:contain;border:0;background:#eef1f5}
figure.pair{width:344px}figure.pair img{width:160px}
figcaption{font-size:12px;line-height:1.3;overflow-wrap:anywhere}
figcaption b{color:#b3261e}figcaption .rank{color:#5a6372}
"""


def write_page(target: Path, root: Path, findings: list[Finding], summary: dict) -> Path:
    """Write the self-contained audit page for `findings` of the dataset at `root`."""
    body = [_summary(summary)]
    for kind in KINDS:
        mine = [f for f in findings if f.kind == kind]
        body.append(_unusable(mine) if kind == UNUSABLE else _gallery(kind, mine, root))
    write_text(target, _page(summary, "\n".join(body)))
    return target


def _page(summary: dict, body: str) -> str:
    name = Path(summary["data"]).name
    stamp = time.strftime("%Y-%m-%d %H:%M")
    nav = "".join(f'<a href="#{k}">{escape(TITLES[k].split(":")[0])}</a>' for k in KINDS)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>imagefit audit: {escape(name)}</title>\n<style>{STYLE}{EXTRA_STYLE}</style>\n"
        f"</head>\n<body>\n<header><h1>Audit of {escape(name)}</h1><p>{summary['images']} images, "
        f"{len(summary['classes'])} classes · written {stamp} by imagefit {escape(__version__)}</p>"
        f"<nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _summary(summary: dict) -> str:
    counts = summary.get("counts", {})
    cards = [_card(str(summary["images"]), "labelled images")]
    cards += [_card(str(counts.get(k, 0)), TITLES[k].split(":")[0].lower()) for k in KINDS]
    settings = summary.get("settings", {})
    rows = [
        ("data", summary["data"]),
        ("classes", ", ".join(summary["classes"])),
        ("label issues", f"{settings.get('folds')}-fold cross-validation of the linear head "
         f"(C = {settings.get('C')}), cleanlab find_label_issues"),
        ("model", f"{settings.get('model')} (features {settings.get('feature_key')})"),
        ("seconds", ", ".join(f"{k} {v}" for k, v in summary.get("seconds", {}).items())),
    ]  # fmt: skip
    table = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return (
        f'<section id="summary"><h2>Summary</h2><div class="cards">{"".join(cards)}</div>'
        f'<table class="kv">{table}</table><p class="note">Decide in audit.csv (action: relabel, remove '
        "or keep), then imagefit fix DATA audit.csv; imagefit fix --undo JOURNAL puts it all back.</p>"
        "</section>"
    )


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _gallery(kind: str, findings: list[Finding], root: Path) -> str:
    head = f'<section id="{kind}"><h2>{escape(TITLES[kind])} ({len(findings)})</h2>'
    if not findings:
        return head + '<p class="note">None found.</p></section>'
    figures = "".join(_figure(f, root) for f in findings[:SHOWN])
    more = len(findings) - SHOWN
    tail = f'<p class="note">{more} more in audit.csv.</p>' if more > 0 else ""
    return f'{head}<div class="grid">{figures}</div>{tail}</section>'


def _figure(f: Finding, root: Path) -> str:
    images = [_thumbnail(root / f.path, f.path)]
    if f.note.startswith("like "):
        images.append(_thumbnail(root / f.note[5:], f.note[5:]))
    label = escape(f.given) + (f" &rarr; <b>{escape(f.suggested)}</b>" if f.suggested else "")
    score = "" if math.isnan(f.score) else f" · score {f.score:.3f}"
    cls = ' class="pair"' if len(images) > 1 else ""
    return (
        f'<figure{cls} data-path="{escape(f.path)}">{"".join(images)}<figcaption>'
        f'<span class="rank">#{f.rank}</span> {label}{score}<br>{escape(f.path)}'
        f"{'<br>' + escape(f.note) if f.note else ''}</figcaption></figure>"
    )


def _thumbnail(path: Path, alt: str) -> str:
    """An <img> holding a small JPEG of the image, or an empty box when it cannot be read."""
    data = ""
    with contextlib.suppress(ImageReadError, OSError):
        img = open_image(path, min_size=THUMB)
        img.thumbnail((THUMB, THUMB))
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=80)
        data = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="{data}">' if data else f'<img alt="{escape(alt)}">'


def _unusable(findings: list[Finding]) -> str:
    head = f'<section id="unusable"><h2>{TITLES[UNUSABLE]} ({len(findings)})</h2>'
    if not findings:
        return head + '<p class="note">None: every image decodes.</p></section>'
    items = "".join(f"<li>{escape(f.note or f.path)}</li>" for f in findings)
    return f'{head}<ul class="skipped">{items}</ul></section>'
