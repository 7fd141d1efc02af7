"""report.html: one self-contained page about a run (config, curves, metrics, confusion matrix, galleries).

Everything is inside the file: figures are PNGs embedded as base64 data URIs and the style sheet is
inline, so the page opens anywhere, offline, and can be mailed as one attachment. Every string that
comes from the user (paths, class names, options) is HTML-escaped. Numbers in tables carry their
exact value in a `data-value` attribute beside the rounded text a person reads.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from html import escape
from pathlib import Path

from imagefit.data.atomic import write_text
from imagefit.errors import ModelError
from imagefit.evaluate.curves import learning_curves
from imagefit.evaluate.galleries import GALLERIES
from imagefit.runs import read_config, read_history
from imagefit.runs.folder import (
    CONFIG,
    CURVES,
    ENGINES_FILE,
    EVALUATION,
    EVALUATION_DIR,
    HISTORY,
    METRICS,
    REPORT,
)
from imagefit.version import __version__

log = logging.getLogger(__name__)

PR_FILE = "pr_curves.png"

GALLERY_TITLES = {
    "random_correct": "Random correct",
    "random_incorrect": "Random incorrect",
    "most_confident_correct": "Most confident correct, per class",
    "most_confident_incorrect": "Most confident incorrect, per predicted class",
    "most_uncertain": "Most uncertain (nearest a tie)",
}

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2330;
background:#f4f5f7;margin:0}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
header{background:#1f3a5f;color:#fff;padding:22px 28px}
header h1{margin:0;font-size:24px;word-break:break-all}header p{margin:4px 0 0;opacity:.85}
nav{margin-top:10px;font-size:14px}nav a{color:#cfe0ff;margin-right:14px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:16px 20px;margin:18px 0}
h2{margin:0 0 12px;font-size:19px;color:#1f3a5f}h3{margin:18px 0 8px;font-size:16px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:14px}
th,td{border:1px solid #dde1e7;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.hit{background:#e3f1e3}td.miss{background:#fbe9e7}table.kv td:first-child{color:#4a5568}
table.kv td{word-break:break-all;max-width:780px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#eef1f5;border-radius:6px;padding:10px 16px}
.card b{display:block;font-size:22px}.card span{font-size:13px;color:#4a5568}
img{max-width:100%;height:auto;border:1px solid #dde1e7;background:#fff}
.note{color:#5a6372;font-style:italic}pre{background:#f6f8fa;padding:8px;overflow-x:auto}
ul.skipped{font-size:13px;word-break:break-all}
"""


def report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the report of `run_dir` (with RUN/evaluation/ when it exists) to `out` (RUN/report.html)."""
    run_dir = Path(run_dir)
    read_config(run_dir)  # a folder that is not a run, or one from a newer imagefit, stops here
    evaluation = None
    saved = run_dir / EVALUATION_DIR / EVALUATION
    if saved.is_file():
        evaluation = _read_json(saved)
        evaluation["out"] = str(saved.parent)  # figures are found beside the JSON, wherever it moved
    return write_report(run_dir, evaluation, out if out is not None else run_dir / REPORT)


def write_report(run_dir: str | os.PathLike, evaluation: dict | None, out: str | os.PathLike) -> Path:
    """Write the self-contained HTML report of a run, with an evaluation's results when given."""
    run_dir, out = Path(run_dir), Path(out)
    config = _read_json(run_dir / CONFIG)
    metrics = _read_json(run_dir / METRICS)
    history = _history(run_dir)
    curves = learning_curves(history, out.parent / CURVES) if history else None
    body = [_summary(config, metrics, evaluation), _training_section(config, metrics, curves)]
    links = ["summary", "training"]
    if evaluation is not None and evaluation.get("task") == "multilabel":
        folder = Path(evaluation.get("out") or out.parent)
        body += [_multilabel_section(evaluation, folder), _multilabel_galleries(evaluation, folder)]
        links += ["evaluation", "galleries"]
    elif evaluation is not None:
        folder = Path(evaluation.get("out") or out.parent)
        body += [_evaluation_section(evaluation), _confusion_section(evaluation, folder)]
        body.append(_galleries_section(evaluation, folder))
        links += ["evaluation", "confusion", "galleries"]
    if evaluation is not None and _TRUST_KEYS & set(evaluation):
        body.append(_trust_section(evaluation, Path(evaluation.get("out") or out.parent)))
        links.append("trust")
    engines = _read_json(run_dir / ENGINES_FILE)
    if engines.get("engines"):
        body.append(_engines_section(engines))
        links.append("engines")
    body += [_skipped_section(metrics, evaluation), _config_section(config, run_dir)]
    write_text(out, _page(run_dir, config, links, "\n".join(body)))
    return out


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}): rerun the step that wrote it") from exc


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / HISTORY
    try:
        return read_history(path) if path.is_file() else []
    except (ValueError, KeyError) as exc:  # a hand-edited or foreign file: the report goes on without curves
        log.warning("%s is unreadable (%s): the report has no learning curves", path, exc)
        return []


def _page(run_dir: Path, config: dict, links: list[str], body: str) -> str:
    name = run_dir.resolve().name if run_dir.is_dir() else run_dir.name
    facts = [config.get("strategy"), config.get("backbone"), f"{len(config.get('classes', []))} classes"]
    facts = [str(f) for f in facts if f and f != "0 classes"]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    nav = "".join(f'<a href="#{a}">{a}</a>' for a in [*links, "skipped", "config"])
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>imagefit report: {escape(name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(name)}</h1><p>{escape(' · '.join(facts))} · written {stamp} "
        f"by imagefit {escape(__version__)}</p><nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )


def number_cell(value, digits: int = 4, cls: str = "num") -> str:
    """A table cell showing `value` rounded, with the exact value in data-value."""
    if value is None:
        return '<td class="num">-</td>'
    text = str(value) if isinstance(value, int) else f"{value:.{digits}f}"
    return f'<td class="{cls}" data-value="{escape(repr(value))}">{text}</td>'


def image_tag(path: Path, alt: str) -> str:
    """An <img> with the PNG at `path` inside it, or a note when the file is missing."""
    if not path.is_file():
        return f'<p class="note">{escape(path.name)} is missing</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _summary(config: dict, metrics: dict, evaluation: dict | None) -> str:
    cards = []
    if evaluation is not None and evaluation.get("task") == "multilabel":
        where = f"{evaluation.get('split') or 'evaluated'} ({evaluation['n']} images)"
        cards += [_card(f"{evaluation['samples_f1']:.2%}", f"samples-F1, {where}")]
        cards += [_card(f"{evaluation['mAP']:.2%}", "mAP")]
    elif evaluation is not None:
        where = f"{evaluation.get('split') or 'evaluated'} ({evaluation['n']} images)"
        cards += [_card(f"{evaluation['accuracy']:.2%}", f"accuracy, {where}")]
        cards += [_card(f"{evaluation['loss']:.4f}", "log loss")]
    else:
        for split in ("valid", "train"):
            m = metrics.get(split) or {}
            score, name = (
                (m.get("samples_f1"), "samples-F1") if "samples_f1" in m else (m.get("accuracy"), "accuracy")
            )
            if m.get("n"):
                cards.append(_card(f"{score:.2%}", f"{split} {name} ({m['n']} images)"))
    cards += _trust_cards(evaluation or {})
    classes = config.get("classes") or (evaluation or {}).get("classes") or []
    cards.append(_card(str(len(classes)), "classes"))
    if metrics.get("epochs"):
        cards.append(_card(str(metrics["epochs"]), "epochs"))
    return f'<section id="summary"><h2>Summary</h2><div class="cards">{"".join(cards)}</div></section>'


def _trust_cards(ev: dict) -> list[str]:
    cards = []
    if "ece" in ev:
        cards.append(_card(f"{ev['ece']:.4f}", "calibration error (ECE)"))
    if "ood_auroc" in ev:
        cards.append(_card(f"{ev['ood_auroc']:.3f}", f"AUROC against {ev['n_unknown']} unknown images"))
    return cards


def flat_pairs(obj, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, text) pairs of a nested dict; lists are joined with commas."""
    if isinstance(obj, dict):
        rows = []
        for key, value in obj.items():
            rows += flat_pairs(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(obj, list | tuple):
        return [(prefix, ", ".join(str(v) for v in obj))]
    if isinstance(obj, float):
        return [(prefix, f"{obj:.6g}")]
    return [(prefix, "none" if obj is None else str(obj))]


def _kv_table(pairs: list[tuple[str, str]], table_id: str) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv" id="{table_id}">{rows}</table>'


def _config_section(config: dict, run_dir: Path) -> str:
    if not config:
        return (
            '<section id="config"><h2>Configuration</h2>'
            f'<p class="note">{escape(str(run_dir))} has no {CONFIG} (an exported model)</p></section>'
        )
    table = _kv_table(flat_pairs(config), "config-table")
    return f'<section id="config"><h2>Configuration</h2>{table}</section>'


def _training_section(config: dict, metrics: dict, curves: Path | None) -> str:
    parts = ['<section id="training"><h2>Training</h2>']
    multilabel = "samples_f1" in (metrics.get("train") or {})
    scores = ("samples_f1", "micro_f1", "macro_f1", "mAP") if multilabel else ("accuracy",)
    rows = [
        f"<tr><td>{split}</td>{''.join(number_cell(m.get(k)) for k in ('n', 'loss', *scores))}</tr>"
        for split in ("train", "valid")
        if (m := metrics.get(split) or {}).get("n")
    ]
    if rows:
        head = (
            "<tr><th>split</th><th>images</th><th>loss</th>"
            + "".join(f"<th>{k}</th>" for k in scores)
            + "</tr>"
        )
        parts.append(f'<table id="training-scores">{head}{"".join(rows)}</table>')
    rest = {k: v for k, v in metrics.items() if k not in ("train", "valid", "skipped")}
    if rest:
        parts.append(_kv_table(flat_pairs(rest), "training-details"))
    parts.append("<h3>Learning curves</h3>")
    if curves is not None:
        parts.append(image_tag(curves, "learning curves: loss and accuracy per epoch"))
    elif config.get("strategy") == "linear":
        parts.append(
            '<p class="note">The linear strategy has no epochs: a logistic-regression head is fitted '
            "on cached features (its regularisation chosen by cross-validation above).</p>"
        )
    else:
        parts.append(f'<p class="note">no {HISTORY} in the run folder</p>')
    return "".join(parts) + "</section>"


def _evaluation_section(ev: dict) -> str:
    facts = [f"data: {ev.get('data', '')}", f"split: {ev.get('split', '')}", f"images: {ev['n']}"]
    scores = [("accuracy", ev["accuracy"]), ("log loss", ev["loss"])]
    scores += [(f"top-{k} accuracy", v) for k, v in ev.get("top_k_accuracy", {}).items()]
    score_rows = "".join(f"<tr><td>{escape(name)}</td>{number_cell(v)}</tr>" for name, v in scores)
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    rows = "".join(
        f'<tr data-class="{escape(name)}"><td>{escape(name)}</td>{number_cell(s["precision"])}'
        f"{number_cell(s['recall'])}{number_cell(s['f1'])}{number_cell(s['support'])}</tr>"
        for name, s in ev["per_class"].items()
    )
    return (
        f'<section id="evaluation"><h2>Evaluation</h2><p>{escape(" · ".join(facts))}</p>'
        f'<table id="scores">{score_rows}</table><h3>Per class</h3>'
        f'<table id="per-class">{head}{rows}</table></section>'
    )


def _multilabel_section(ev: dict, folder: Path) -> str:
    facts = [f"data: {ev.get('data', '')}", f"split: {ev.get('split', '')}", f"images: {ev['n']}"]
    names = (("samples-F1", "samples_f1"), ("micro-F1", "micro_f1"), ("macro-F1", "macro_f1"), ("mAP", "mAP"),
             ("exact match", "exact_match"), ("log loss (summed over labels)", "loss"))  # fmt: skip
    score_rows = "".join(f"<tr><td>{escape(name)}</td>{number_cell(ev.get(key))}</tr>" for name, key in names)
    columns = ("threshold", "precision", "recall", "f1", "ap", "support", "true_positives",
               "false_positives", "misses")  # fmt: skip
    head = "<tr><th>label</th>" + "".join(f"<th>{c.replace('_', ' ')}</th>" for c in columns) + "</tr>"
    rows = []
    for name, threshold in zip(ev["classes"], ev["thresholds"], strict=True):
        s = {"threshold": threshold, **ev["per_label"][name]}
        rows.append(
            f'<tr data-label="{escape(name)}"><td>{escape(name)}</td>'
            f"{''.join(number_cell(s[c]) for c in columns)}</tr>"
        )
    return (
        f'<section id="evaluation"><h2>Evaluation (multi-label)</h2><p>{escape(" · ".join(facts))}</p>'
        f'<table id="scores">{score_rows}</table><h3>Per label</h3>'
        "<p>A label is predicted when its probability reaches its threshold (chosen for the best F1).</p>"
        f'<table id="per-label">{head}{"".join(rows)}</table><h3>Precision-recall curves</h3>'
        f"{image_tag(folder / ev.get('pr_curves', PR_FILE), 'precision-recall curves per label')}</section>"
    )


def _multilabel_galleries(ev: dict, folder: Path) -> str:
    titles = {"worst_false_positives": "Worst false positives, per label (label and its probability)",
              "worst_misses": "Worst misses, per label (the true label and its probability)"}  # fmt: skip
    parts = ['<section id="galleries"><h2>Galleries</h2>']
    for name, title in titles.items():
        entry = (ev.get("galleries") or {}).get(name) or {}
        parts.append(f'<h3 id="gallery-{name}">{title}</h3>')
        if entry.get("file"):
            parts.append(image_tag(folder / entry["file"], title))
        else:
            parts.append(f'<p class="note">{escape(entry.get("note", "no images to show"))}</p>')
    return "".join(parts) + "</section>"


def _confusion_section(ev: dict, folder: Path) -> str:
    figure = image_tag(folder / ev.get("confusion_figure", "confusion.png"), "confusion matrix")
    return (
        '<section id="confusion"><h2>Confusion matrix</h2>'
        "<p>Rows are true classes, columns predicted ones; in brackets, the share of the true class.</p>"
        f"{confusion_table(ev)}{figure}</section>"
    )


def confusion_table(ev: dict, table_id: str = "confusion-table") -> str:
    """An evaluation's confusion matrix as an HTML table: counts, and shares of the true class."""
    classes, cm = ev["classes"], ev["confusion_matrix"]
    norm = ev.get("confusion_matrix_normalised") or [[0.0] * len(classes) for _ in classes]
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{escape(c)}</th>" for c in classes) + "</tr>"
    rows = []
    for i, name in enumerate(classes):
        cells = "".join(_count_cell(int(cm[i][j]), norm[i][j], i == j) for j in range(len(classes)))
        rows.append(f"<tr><th>{escape(name)}</th>{cells}</tr>")
    return f'<table id="{escape(table_id)}">{head}{"".join(rows)}</table>'


def _count_cell(count: int, share: float, diagonal: bool) -> str:
    cls = "num hit" if diagonal else ("num miss" if count else "num")
    return f'<td class="{cls}" data-value="{count}">{count} <small>({share:.1%})</small></td>'


def _galleries_section(ev: dict, folder: Path) -> str:
    parts = [
        '<section id="galleries"><h2>Galleries</h2><p>Each image is titled with its file name, the '
        "predicted class and its probability, and the true class when the prediction is wrong.</p>"
    ]
    for name in GALLERIES:
        entry = (ev.get("galleries") or {}).get(name) or {}
        parts.append(f'<h3 id="gallery-{name}">{GALLERY_TITLES[name]}</h3>')
        if entry.get("file"):
            parts.append(image_tag(folder / entry["file"], GALLERY_TITLES[name]))
        else:
            parts.append(f'<p class="note">{escape(entry.get("note", "no images to show"))}</p>')
    return "".join(parts) + "</section>"


_TRUST_KEYS = {"ece", "ood_auroc"}
TRUST_SCORES = (
    ("expected calibration error (15 bins, top label)", "ece"),
    ("the same before calibration", "ece_uncalibrated"),
    ("evaluated images called unknown", "known_unknown_share"),
    ("AUROC of familiarity, evaluated against unknown images", "ood_auroc"),
    ("unknown images as familiar as 95 % of the evaluated (FPR at 95 % TPR)", "ood_fpr_at_95tpr"),
    ("unknown images called unknown at the run's threshold", "ood_unknown_share"),
    ("unknown images", "n_unknown"),
)


def _trust_section(ev: dict, folder: Path) -> str:
    """Calibration, accuracy against coverage and unknown images, as far as the evaluation measured them."""
    rows = "".join(
        f"<tr><td>{escape(name)}</td>{number_cell(ev[key])}</tr>" for name, key in TRUST_SCORES if key in ev
    )
    parts = ['<section id="trust"><h2>Trust</h2>', f'<table id="trust-scores">{rows}</table>']
    by, unknown = escape(ev.get("coverage_by", "familiarity")), escape(str(ev.get("unknown", "")))
    figures = [
        ("reliability_figure", "reliability", "Reliability", "Accuracy per confidence bin against the "
         "diagonal (a calibrated model lies on it); below, the images in each bin.", "reliability diagram"),
        ("coverage_figure", "coverage", "Accuracy against coverage", f"The images kept from the highest {by} "
         "down: the accuracy of those kept, if the run could set the others aside.",
         "accuracy against coverage"),
        ("familiarity_figure", "familiarity", "Unknown images", f"Familiarity of the evaluated images and of "
         f"the images of {unknown}; below the dashed threshold the run calls an image unknown.",
         "familiarity of known and unknown images"),
    ]  # fmt: skip
    for key, anchor, title, text, alt in figures:
        if ev.get(key):
            parts.append(f'<h3 id="{anchor}">{title}</h3><p>{text}</p>' + image_tag(folder / ev[key], alt))
    return "".join(parts) + "</section>"


def _engines_section(record: dict) -> str:
    """The run's engines judged on its validation images: speed, agreement with fp32, score."""
    metric = record.get("metric", "accuracy")
    names = ("engine", "precision", "agreement", metric, "images/s", "eligible")
    head = "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"
    rows = []
    for name, v in record["engines"].items():
        agreement = "—" if v.get("agreement") is None else f"{v['agreement']:.2%}"
        score = record.get("fp32_score") if v.get("precision") == "fp32" else v.get("score")
        verdict = "yes" if v.get("eligible") else escape(v.get("reason") or "no")
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{escape(v.get('precision', ''))}</td>"
            f'<td class="num">{agreement}</td>'
            f"{number_cell(score)}{number_cell(v.get('images_per_s'), 1)}<td>{verdict}</td></tr>"
        )
    note = (
        f"Judged on {record.get('images')} validation images: an engine is eligible when its predictions "
        f"equal fp32's on at least {record['thresholds']['agreement']:.1%} of them and its {metric} drops "
        f"by less than {100 * record['thresholds']['max_drop']:.1f} points. Chosen: "
        f"<b>{escape(record.get('choice', 'auto'))}</b>."
    )
    table = f'<table id="engines-table">{head}{"".join(rows)}</table>'
    return f'<section id="engines"><h2>Engines</h2><p>{note}</p>{table}</section>'


def _skipped_section(metrics: dict, evaluation: dict | None) -> str:
    skipped = {s["path"]: s["reason"] for s in metrics.get("skipped", [])}
    for key in ("skipped", "unknown_skipped"):
        skipped.update({s["path"]: s["reason"] for s in (evaluation or {}).get(key, [])})
    if not skipped:
        return '<section id="skipped"><h2>Skipped files</h2><p>None: every image was read.</p></section>'
    items = "".join(
        f"<li>{escape(reason if path in reason else f'{path}: {reason}')}</li>"
        for path, reason in skipped.items()
    )
    return (
        f'<section id="skipped"><h2>Skipped files</h2><p>{len(skipped)} file(s) could not be read:</p>'
        f'<ul class="skipped">{items}</ul></section>'
    )
