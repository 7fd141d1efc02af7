"""Similar images: embeddings of a folder, the nearest images to a query, near-duplicate groups."""
