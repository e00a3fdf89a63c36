"""The three skeleton modalities (docs/published-behaviour.md §2.3) and their flattening to GRU input sequences.

Every function takes a batch laid out as N x C x T x V x M (C coordinates, V joints, M bodies; NTU:
3, 25, 2) and is written with tensor operations only. The bone modality needs the skeleton's parent
table (`dataset.layouts.Layout.parents`: parents[v] is the 0-based parent of joint v).
"""

import torch

MODALITIES = ("joint", "motion", "bone")


def _check_batch(x: torch.Tensor) -> None:
    if x.dim() != 5:
        raise ValueError(f"expected a skeleton batch N x C x T x V x M, found shape {tuple(x.shape)}")


def motion(x: torch.Tensor) -> torch.Tensor:
    """Frame differences x[:, :, t+1] - x[:, :, t]; the last frame is 0. N x C x T x V x M."""
    _check_batch(x)
    diff = x[:, :, 1:] - x[:, :, :-1]  # N x C x T-1 x V x M
    return torch.cat([diff, torch.zeros_like(x[:, :, :1])], dim=2)  # N x C x T x V x M


def bone(x: torch.Tensor, parents) -> torch.Tensor:
    """Bone vectors x[v] - x[parents[v]] (a joint that is its own parent gives 0). N x C x T x V x M."""
    _check_batch(x)
    if x.shape[3] != len(parents):
        raise ValueError(f"expected {len(parents)} joints (the skeleton layout), found shape {tuple(x.shape)}")
    return x - x.index_select(3, torch.as_tensor(parents, device=x.device))  # N x C x T x V x M


def flatten(x: torch.Tensor) -> torch.Tensor:
    """N x C x T x V x M -> N x T x (V*C*M), feature index (v*C + c)*M + m (the published order)."""
    _check_batch(x)
    n, c, t, v, m = x.shape
    return x.permute(0, 2, 3, 1, 4).reshape(n, t, v * c * m)  # N x T x V*C*M


def modality(x: torch.Tensor, name: str, parents) -> torch.Tensor:
    """The named modality ('joint', 'motion' or 'bone') of x, flattened to N x T x V*C*M."""
    if name == "joint":
        return flatten(x)
    if name == "motion":
        return flatten(motion(x))
    if name == "bone":
        return flatten(bone(x, parents))
    raise ValueError(f"unknown modality {name!r}; expected one of {MODALITIES}")
