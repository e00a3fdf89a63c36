"""The CMD model, and nothing else: the three modalities, the GRU encoder (two forward-in-time stacks,
as the published code runs its "bidirectional" GRU) and the three-modality MoCo builder with the CMD loss."""
