"""CMD model package: modalities, the bidirectional-GRU encoder and the three-modality MoCo builder."""
