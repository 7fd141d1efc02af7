"""map-train: its options, labelled patches and crops of tiles, decoder losses, the callback that
maps the validation tile after every epoch, and the strategy that trains a map run."""
