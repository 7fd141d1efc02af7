"""imagefit features, similar and dedupe: embeddings of images, nearest neighbours, duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import click

from imagefit.cli.options import inference_options, model_option, weights_option, weights_value
from imagefit.models.defaults import DEFAULT_BACKBONE


@click.command()
@click.argument("source", metavar="MODEL_OR_RUN")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Embedding file (.safetensors, with a .json sidecar).",
)
@click.option("--layer", default="pre-logits", show_default=True, help="pre-logits or a module name.")
@click.option("--pool", type=click.Choice(["avg", "max"]), default="avg", show_default=True)
@click.option("--flip", is_flag=True, help="Average each image's vector with its mirror image's.")
@weights_option
@inference_options
def features(source, folder, out, layer, pool, flip, weights, batch_size, workers, engine) -> None:
    """Embeddings of every image under DIR, from a backbone name or a run folder."""
    from imagefit.features.store import embeddings_file
    from imagefit.search.embed import features as embed_folder

    data = embed_folder(
        source,
        folder,
        out,
        layer,
        pool,
        flip,
        weights_value(weights),
        batch_size=batch_size,
        workers=workers,
        engine=engine,
    )
    if data is None:  # a torchrun rank other than 0: its share is in the store
        return
    path = embeddings_file(out)
    click.echo(f"{len(data.paths)} embeddings of size {data.vectors.shape[1]} -> {path}")
    if data.skipped:
        click.echo(f"skipped {len(data.skipped)} unreadable image(s), listed in the sidecar", err=True)


@click.command()
@click.argument("index", type=click.Path(path_type=Path))
@click.argument("queries", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-k", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--metric",
    type=click.Choice(["euclidean", "cosine"]),
    default=None,
    help="Default: the index's, or euclidean for an embedding file.",
)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Write a picture of the results (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per query.")
@click.option("--model", default=None, help="Embed new queries with this model (default: the index's).")
@click.option("--layer", default=None, help="Embed new queries from this layer (default: the index's).")
def similar(index, queries, k, metric, out, as_json, model, layer) -> None:
    """The K images of INDEX nearest to each query image.

    INDEX is a folder written by imagefit index (loaded, not rebuilt), or an embedding file from
    imagefit features (either file of the pair, or the name given to its -o).
    """
    from imagefit.search.similar import similar as find_similar

    results = find_similar(index, list(queries), k=k, metric=metric, out=out, model=model, layer=layer)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for item in results:
            click.echo(item["query"])
            for n in item["neighbours"]:
                click.echo(f"  {n['distance']:.4f}  {n['path']}")
    if out:
        click.echo(f"wrote {out}", err=True)


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="Cosine similarity from which two images are duplicates.",
)
@model_option
@weights_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of groups.")
@inference_options
def dedupe(folder, threshold, model, weights, as_json, batch_size, workers, engine) -> None:
    """Groups of near-duplicate images under DIR (re-saved, resized or mirrored copies)."""
    from imagefit.search.dedupe import dedupe as find_duplicates

    groups = find_duplicates(
        folder,
        threshold,
        model,
        weights_value(weights),
        batch_size=batch_size,
        workers=workers,
        engine=engine,
    )
    if as_json:
        click.echo(json.dumps([[str(p) for p in g] for g in groups], indent=2))
        return
    for n, group in enumerate(groups, 1):
        click.echo(f"group {n}:")
        for path in group:
            click.echo(f"  {path}")
    click.echo(f"{len(groups)} group(s) of near-duplicates", err=True)


@click.command("index")
@click.argument("source", metavar="EMBEDDINGS|DIR", type=click.Path(path_type=Path, exists=True))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Index folder.")
@click.option(
    "--model",
    "-m",
    default=None,
    help=f"DIR: backbone or run folder (default: the index's model, else {DEFAULT_BACKBONE}).",
)
@click.option(
    "--metric", type=click.Choice(["euclidean", "cosine"]), default=None, help="New index: default euclidean."
)
@weights_option
@inference_options
def index(source, out, model, metric, weights, batch_size, workers, engine) -> None:
    """Make a similarity index of DIR or of an embedding file, or add the new images to it.

    Exact below 50,000 images, IVF-PQ with exact re-ranking above; imagefit similar OUT loads it.
    """
    from imagefit.search.indexing import index as build_index

    options = {"batch_size": batch_size, "workers": workers, "engine": engine} if source.is_dir() else {}
    built = build_index(source, out, model, metric, weights_value(weights), **options)
    click.echo(f"{len(built)} images in {out} ({built.meta['kind']}, {built.meta['metric']})")
