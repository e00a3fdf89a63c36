"""The pretraining feeder: two augmented views per training sample, or the raw sample.

mode 'views' returns (im_q, im_k), each C x view_frames x V x M float32 (3 x 64 x 25 x 2 published),
made in the DataLoader worker by `pretraining_views` on the sample as a batch of one, from the stream
`sample_generator(seed, epoch, index)` (call `set_epoch` before each epoch's iterator is made). mode
'raw' returns (data C x T x V x M float32, num_frames) for `pretraining_views` on the training device.
"""

import numpy as np
import torch

from feeder.augmentations import PUBLISHED_VIEWS, pretraining_views
from feeder.seeding import SeededFeeder, sample_generator

MODES = ("views", "raw")


class PretrainingFeeder(SeededFeeder):
    """Training samples of one processed folder, as pretraining view pairs or raw arrays.

    Args:
        split: the training part (a `dataset.processed.Split`).
        mode: 'views' (augment per sample) or 'raw' (augment later, batched).
        seed: the run's seed; views of sample i in epoch e come from (seed, e, i).
        views: how views are made (a feeder.augmentations.ViewSettings; the published ones by default).
    """

    def __init__(self, split, mode="views", seed=42, views=PUBLISHED_VIEWS):
        if mode not in MODES:
            raise ValueError(f"unknown feeder mode {mode!r}; expected one of {MODES}")
        super().__init__(split, seed)
        self.num_frames = np.minimum(split.num_frame, split.data.shape[2])  # N
        self.mode = mode
        self.views = views

    def __len__(self):
        return len(self.split)

    def __getitem__(self, index):
        data = self.split.data[index]  # C x T x V x M (memory-mapped)
        frames = int(self.num_frames[index])
        if self.mode == "raw":
            return torch.from_numpy(np.array(data, dtype=np.float32)), frames
        used = torch.from_numpy(np.array(data[:, :frames], dtype=np.float32))  # C x frames x V x M
        generator = sample_generator(self.seed, self.epoch, index)
        im_q, im_k = pretraining_views(
            used[None], torch.tensor([frames]), generator, self.views
        )  # each 1 x C x T' x V x M
        return im_q[0], im_k[0]
