"""The published datasets: class counts, benchmarks (protocols) and default processed folders
(docs/published-behaviour.md §1.1-§1.3). Every other module takes these facts from here.

A protocol names a benchmark (`cross_subject` -> folder `xsub`); the semi-supervised protocols
(`cross_subject_semi`, `cross_view_semi`) run on the folder of their base protocol.
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedDataset:
    num_class: int
    root: str  # default parent of its processed folders
    protocols: tuple


DATASETS = {
    "ntu60": PublishedDataset(60, "./data/NTU-RGB-D-60-AGCN", ("cross_subject", "cross_view")),
    "ntu120": PublishedDataset(120, "./data/NTU-RGB-D-120-AGCN", ("cross_subject", "cross_setup")),
    "pku_v2": PublishedDataset(51, "./data/PKU-MMD-v2-AGCN", ("cross_subject", "cross_view")),
}
PROTOCOL_FOLDERS = {"cross_subject": "xsub", "cross_view": "xview", "cross_setup": "xsetup"}
SEMI_SUFFIX = "_semi"
SEMI_PROTOCOLS = ("cross_subject_semi", "cross_view_semi")
PROTOCOLS = tuple(PROTOCOL_FOLDERS) + SEMI_PROTOCOLS
# The training recordings a folder of any other dataset needs to be pretrained on (it gets the small-data
# preset): a batch of 2, a queue of 4, CMD's top-k of 2 (over one neighbour its KL is 0).
SMALL_MIN_SAMPLES = 8


def folder_protocol(benchmark):
    """The protocol a benchmark folder stands for ('xview' -> 'cross_view'); None for any other name."""
    return {folder: protocol for protocol, folder in PROTOCOL_FOLDERS.items()}.get(benchmark)


def base_protocol(protocol):
    """The benchmark a protocol runs on: 'cross_view_semi' -> 'cross_view'; others unchanged."""
    if protocol and protocol.endswith(SEMI_SUFFIX):
        return protocol[: -len(SEMI_SUFFIX)]
    return protocol


def resolve_data_dir(dataset, protocol, data_dir=None):
    """The processed folder of `dataset` under `protocol` (ValueError naming the valid choices); `data_dir` wins."""
    if data_dir is not None:  # "" too: an empty --data-dir (an unset variable) is no folder, not the default
        return data_dir
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)} (or pass --data-dir)")
    base = base_protocol(protocol)
    if base not in DATASETS[dataset].protocols:
        raise ValueError(
            f"protocol {protocol!r} is not defined for {dataset}; use one of {', '.join(DATASETS[dataset].protocols)}"
        )
    return os.path.join(DATASETS[dataset].root, PROTOCOL_FOLDERS[base])
