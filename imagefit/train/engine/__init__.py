"""The training engine: the Trainer's loop, batches, mixing, optimisers and stages, saved state, DDP."""
