"""Multi-label training: the per-label loss, the scores of each epoch, and the per-label thresholds."""
