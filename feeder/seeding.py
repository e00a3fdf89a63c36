"""Random streams of the augmentations: one per (seed, epoch, sample) or (seed, epoch, rank).

Views and crops drawn from these streams depend only on the run's seed, the epoch and the sample
(or the rank, for augmentation on the training device), never on which DataLoader worker made them
or on how many there are, so a resumed run draws exactly the views the uninterrupted run would have.
`SeededFeeder` is the feeders' common base: a split, the run's seed and the current epoch.
"""

import random
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import Dataset

from dataset.processed import ProcessedDataError


def _entropy(*values):
    """Non-negative integers for a SeedSequence from `values` (negatives wrapped to 64 bits)."""
    return [int(v) % 2**64 for v in values]


def _generator(entropy, device="cpu"):
    """A torch generator on `device` seeded from a SeedSequence of `entropy`."""
    state = np.random.SeedSequence(_entropy(*entropy)).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator(device=device)
    generator.manual_seed(int(state) & (2**63 - 1))
    return generator


def sample_generator(seed, epoch, index):
    """The torch generator (CPU) of sample `index` in `epoch` of a run seeded with `seed`."""
    return _generator((seed, epoch, index))


def epoch_generator(seed, epoch, rank, device="cpu"):
    """A torch generator on `device` for the batched augmentation of `rank` in `epoch`."""
    return _generator((seed, epoch, rank, 1), device)


class SeededFeeder(Dataset):
    """A Dataset over a processed `split` whose random draws for sample i come from
    `sample_generator(seed, epoch, i)`; call `set_epoch` before each epoch's iterator is made.

    Pickled (for DataLoader workers started without fork), a split memory-mapping a whole file travels
    as the file's path, dtype and shape and is mapped again where it is unpickled, instead of being
    copied into the pickle (a file since replaced by one of another dtype or shape is refused); the rest
    of the split travels as it is (checked once, where the run loaded it)."""

    def __init__(self, split, seed):
        self.split, self.seed, self.epoch = split, int(seed), 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __getstate__(self):
        state = dict(self.__dict__)
        data = self.split.data
        if isinstance(data, np.memmap):
            array = _file_array(data)
            if _file_array(data.filename) == array:  # the whole file, not a slice of it
                state["split"] = replace(self.split, data=(data.filename, array))
        return state

    def __setstate__(self, state):
        split = state["split"]
        if isinstance(split.data, tuple):
            path, array = split.data
            data = np.load(path, mmap_mode="r", allow_pickle=False)
            if _file_array(data) != array:
                raise ProcessedDataError(f"{path} was replaced while the run used it: {_file_array(data)}, was {array}")
            state["split"] = replace(split, data=data)
        self.__dict__.update(state)


def _file_array(data):
    """(dtype, shape) of an array, or of the .npy file at path `data` (its header only)."""
    if isinstance(data, str):
        data = np.load(data, mmap_mode="r", allow_pickle=False)
    return data.dtype.str, data.shape


def worker_init_fn(worker_id):
    """Seed Python's and NumPy's global generators in a DataLoader worker from torch's per-worker seed.

    torch gives each worker of each epoch's iterator its own seed; this extends it to the global
    generators so nothing a worker draws repeats across workers or epochs.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
