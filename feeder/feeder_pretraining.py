"""The pretraining feeder: two augmented views per training sample, or the raw sample.

mode 'views' returns (im_q, im_k), each 3 x 64 x 25 x 2 float32, made in the DataLoader worker by
`pretraining_views` on the sample as a batch of one, from the stream `sample_generator(seed, epoch,
index)` (call `set_epoch` before each epoch's iterator is made). mode 'raw' returns (data 3 x T x 25 x 2
float32, num_frames) for `pretraining_views` on the training device.
"""
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from dataset.processed import ProcessedDataError, load_split
from feeder.augmentations import OUTPUT_FRAMES, pretraining_views
from feeder.seeding import sample_generator

MODES = ("views", "raw")


class PretrainingFeeder(Dataset):
    """Training samples of one processed folder, as pretraining view pairs or raw arrays.

    Args:
        data_dir: a processed folder (docs/published-behaviour.md §1.3).
        mode: 'views' (augment per sample) or 'raw' (augment later, batched).
        seed: the run's seed; views of sample i in epoch e come from (seed, e, i).
        part: 'train' (pretraining uses the training part).
        mmap: memory-map the data array instead of loading it.
        view_frames: frames of each view (64 in the paper).
        corrupted_joints: joints a joint corruption picks (default: the folder layout's; the paper's
            15 of NTU's 25 joints).
    """

    def __init__(self, data_dir, mode="views", seed=42, part="train", mmap=True, view_frames=OUTPUT_FRAMES,
                 corrupted_joints=None):
        if mode not in MODES:
            raise ValueError(f"unknown feeder mode {mode!r}; expected one of {MODES}")
        if not os.path.isdir(data_dir):
            raise ProcessedDataError(f"processed folder {data_dir}: no such folder (pass --data-dir, or make it "
                                     f"with data_gen)")
        self.data_dir, self.part, self.mmap = data_dir, part, mmap
        self.split = load_split(data_dir, part, mmap=mmap)
        frames_cap = self.split.data.shape[2]
        self.layout = self.split.layout
        self.num_frames = np.minimum(self.split.num_frame, frames_cap)  # N
        self.mode = mode
        self.seed = seed
        self.view_frames = view_frames
        self.corrupted_joints = self.layout.corrupted_joints if corrupted_joints is None else corrupted_joints
        self.epoch = 0

    def __getstate__(self):
        """Pickled (for DataLoader workers started without fork) without the memory-mapped array."""
        state = dict(self.__dict__)
        if self.mmap:
            state["split"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.split is None:
            self.split = load_split(self.data_dir, self.part, mmap=True)

    def set_epoch(self, epoch):
        """Views drawn from now on are those of `epoch` (set before making the epoch's iterator)."""
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.split)

    def __getitem__(self, index):
        data = self.split.data[index]  # 3 x T x 25 x 2 (memory-mapped)
        frames = int(self.num_frames[index])
        if self.mode == "raw":
            return torch.from_numpy(np.array(data, dtype=np.float32)), frames
        used = torch.from_numpy(np.array(data[:, :frames], dtype=np.float32))  # 3 x frames x 25 x 2
        generator = sample_generator(self.seed, self.epoch, index)
        im_q, im_k = pretraining_views(used[None], torch.tensor([frames]), generator, self.view_frames,
                                       self.corrupted_joints)  # each 1 x 3 x 64 x 25 x 2
        return im_q[0], im_k[0]
