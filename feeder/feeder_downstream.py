"""Downstream inputs (docs/published-behaviour.md §2.2) and the semi-supervised training subset.

Training samples are a random temporal crop with l_ratio in [0.5, 1] resized to 64 frames; validation
samples are the centre crop with ratio 0.95 resized to 64 frames. No other augmentation.

Random crops are drawn from the generator `sample_generator(seed, epoch, sample index)`, so a run's
inputs do not depend on the number of DataLoader workers and are reproduced by the same seed; call
`set_epoch` before each epoch (DataLoader workers receive a fresh copy of the dataset every epoch,
so do not combine it with `persistent_workers`). A feeder over a memory-mapped split pickles its
data as the file's path, so spawned workers map the file instead of receiving a copy of it.
"""

import numpy as np
import torch

from feeder.augmentations import (
    CENTRE_CROP_RATIO,
    DOWNSTREAM_L_RATIO,
    MIN_CROP_FRAMES,
    OUTPUT_FRAMES,
    centre_crop_resize,
    random_crop_resize,
)
from feeder.seeding import SeededFeeder, sample_generator


def semi_subset(num_samples, ratio, seed):
    """Sorted indices of int(num_samples x ratio) samples drawn without replacement with `seed`."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"data ratio must be in (0, 1], found {ratio}")
    size = int(num_samples * ratio)
    if size < 1:
        raise ValueError(f"data ratio {ratio} of {num_samples} training samples selects no sample")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_samples, size=size, replace=False))  # size


class DownstreamFeeder(SeededFeeder):
    """Samples of a processed split as (3 x 64 x 25 x 2 float32 tensor, label, sample index).

    Args:
        split: a `dataset.processed.Split`.
        train: random crop with l_ratio [0.5, 1] if True, else the 0.95 centre crop.
        indices: optional subset of sample indices (the semi-supervised subset); all by default.
        seed: base seed of the random crops.
        view_frames: frames of every crop (the pretraining views' length; the paper's 64).
        min_crop_frames: a random crop keeps at least this many frames (the paper's 64).
    """

    def __init__(self, split, train, indices=None, seed=0, view_frames=OUTPUT_FRAMES, min_crop_frames=MIN_CROP_FRAMES):
        super().__init__(split, seed)
        self.view_frames, self.min_crop_frames = view_frames, min_crop_frames
        self.train = train
        self.indices = np.arange(len(split)) if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self):
        return len(self.indices)

    @property
    def labels(self):
        """Labels of the samples in this feeder's order (N int64)."""
        return np.asarray(self.split.labels)[self.indices]

    @property
    def names(self):
        """Sample names in this feeder's order."""
        return [self.split.names[int(i)] for i in self.indices]

    def __getitem__(self, item):
        index = int(self.indices[item])
        frames = int(min(self.split.num_frame[index], self.split.data.shape[2]))  # load_split: >= 1
        used = torch.from_numpy(np.array(self.split.data[index, :, :frames], dtype=np.float32))  # 3 x frames x 25 x 2
        if self.train:
            generator = sample_generator(self.seed, self.epoch, index)
            clip = random_crop_resize(
                used[None],
                torch.tensor([frames]),
                DOWNSTREAM_L_RATIO,
                generator,
                self.view_frames,
                self.min_crop_frames,
            )
        else:
            clip = centre_crop_resize(used[None], torch.tensor([frames]), CENTRE_CROP_RATIO, self.view_frames)
        return clip[0], int(self.split.labels[index]), index  # C x view_frames x V x M
