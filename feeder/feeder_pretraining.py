"""The pretraining feeder: two augmented views per training sample, or the raw sample.

mode 'views' returns (im_q, im_k), each 3 x 64 x 25 x 2 float32, made in the DataLoader worker by
`pretraining_views` on the sample as a batch of one, from the stream `sample_generator(seed, epoch,
index)` (call `set_epoch` before each epoch's iterator is made). mode 'raw' returns (data 3 x T x 25 x 2
float32, num_frames) for `pretraining_views` on the training device.
"""

import numpy as np
import torch

from feeder.augmentations import MIN_CROP_FRAMES, NUM_CORRUPTED_JOINTS, OUTPUT_FRAMES, pretraining_views
from feeder.seeding import SeededFeeder, sample_generator

MODES = ("views", "raw")


class PretrainingFeeder(SeededFeeder):
    """Training samples of one processed folder, as pretraining view pairs or raw arrays.

    Args:
        split: the training part (a `dataset.processed.Split`).
        mode: 'views' (augment per sample) or 'raw' (augment later, batched).
        seed: the run's seed; views of sample i in epoch e come from (seed, e, i).
        view_frames, min_crop_frames, corrupted_joints: how views are made (feeder.augmentations).
    """

    def __init__(
        self,
        split,
        mode="views",
        seed=42,
        view_frames=OUTPUT_FRAMES,
        min_crop_frames=MIN_CROP_FRAMES,
        corrupted_joints=NUM_CORRUPTED_JOINTS,
    ):
        if mode not in MODES:
            raise ValueError(f"unknown feeder mode {mode!r}; expected one of {MODES}")
        super().__init__(split, seed)
        self.num_frames = np.minimum(split.num_frame, split.data.shape[2])  # N
        self.mode = mode
        self.view_frames, self.min_crop_frames, self.corrupted_joints = view_frames, min_crop_frames, corrupted_joints

    def __len__(self):
        return len(self.split)

    def __getitem__(self, index):
        data = self.split.data[index]  # 3 x T x 25 x 2 (memory-mapped)
        frames = int(self.num_frames[index])
        if self.mode == "raw":
            return torch.from_numpy(np.array(data, dtype=np.float32)), frames
        used = torch.from_numpy(np.array(data[:, :frames], dtype=np.float32))  # 3 x frames x 25 x 2
        generator = sample_generator(self.seed, self.epoch, index)
        im_q, im_k = pretraining_views(
            used[None], torch.tensor([frames]), generator, self.view_frames, self.corrupted_joints, self.min_crop_frames
        )  # each 1 x 3 x 64 x 25 x 2
        return im_q[0], im_k[0]
