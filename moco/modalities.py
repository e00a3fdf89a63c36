"""The three skeleton modalities (docs/published-behaviour.md §2.3) and their flattening to GRU input sequences.

Every function takes a batch laid out as N x C x T x V x M (C = 3 coordinates, V = 25 joints,
M = 2 persons) and is written with tensor operations only.
"""
import torch

MODALITIES = ('joint', 'motion', 'bone')

# (child, parent) pairs, 1-based NTU joint numbers; bone[child] = x[child] - x[parent].
BONE_PAIRS = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21),
              (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1),
              (18, 17), (19, 18), (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12))
# PARENT[v] is the 0-based parent of 0-based joint v.
PARENT = torch.tensor([parent - 1 for _, parent in sorted(BONE_PAIRS)], dtype=torch.long)


def _check_layout(x: torch.Tensor) -> None:
    if x.dim() != 5 or x.shape[1] != 3 or x.shape[3] != len(PARENT):
        raise ValueError(f'expected a skeleton batch N x 3 x T x {len(PARENT)} x M, '
                         f'found shape {tuple(x.shape)}')


def motion(x: torch.Tensor) -> torch.Tensor:
    """Frame differences x[:, :, t+1] - x[:, :, t]; the last frame is 0. N x C x T x V x M."""
    _check_layout(x)
    diff = x[:, :, 1:] - x[:, :, :-1]  # N x C x T-1 x V x M
    return torch.cat([diff, torch.zeros_like(x[:, :, :1])], dim=2)  # N x C x T x V x M


def bone(x: torch.Tensor) -> torch.Tensor:
    """Bone vectors x[child] - x[parent] for the NTU skeleton (joint 21 maps to 0). N x C x T x V x M."""
    _check_layout(x)
    return x - x.index_select(3, PARENT.to(x.device))  # N x C x T x V x M


def flatten(x: torch.Tensor) -> torch.Tensor:
    """N x C x T x V x M -> N x T x (V*C*M), feature index v*6 + c*2 + m (the published order)."""
    _check_layout(x)
    n, c, t, v, m = x.shape
    return x.permute(0, 2, 3, 1, 4).reshape(n, t, v * c * m)  # N x T x 150


def modality(x: torch.Tensor, name: str) -> torch.Tensor:
    """The named modality ('joint', 'motion' or 'bone') of x, flattened to N x T x 150."""
    if name == 'joint':
        return flatten(x)
    if name == 'motion':
        return flatten(motion(x))
    if name == 'bone':
        return flatten(bone(x))
    raise ValueError(f'unknown modality {name!r}; expected one of {MODALITIES}')
