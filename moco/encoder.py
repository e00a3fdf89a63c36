"""The skeleton sequence encoder of CMD (docs/published-behaviour.md §3.1): input BatchNorm, two
forward-in-time GRU stacks whose states are concatenated per layer, and a projection or
classification head.

The published code builds `nn.GRU(bidirectional=True)` but feeds it one frame at a time, carrying
the hidden state from frame to frame, so its "reverse" direction also runs *forward* in time: it is
a second forward stack with its own weights, not a backward pass. Layer l+1 of both stacks sees at
frame t the concatenation of both stacks' layer-l states at frame t; the feature is the two top-layer
states at the last frame. `SkeletonGRUEncoder.forward` computes exactly that function with one
whole-sequence, single-direction GRU call per layer and stack (`torch.gru`, time-major);
`forward_loop` is the published frame-by-frame computation, kept as the reference for tests and the
benchmark. The weights stay in the `nn.GRU` (stack 0 = its forward direction, stack 1 = its
`_reverse` one), so state-dict names are those of released checkpoints.

`BIGRU` is the published name, arguments and `knn_eval` flag of the same encoder.
"""

import torch
from torch import nn

STACK_SUFFIXES = ("", "_reverse")  # nn.GRU parameter suffixes of stack 0 and stack 1


class GRUStacks(nn.Module):
    """Holds the weights of both stacks in one `nn.GRU`, named `encoder.gru.*` as in released checkpoints."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers, batch_first=True, bidirectional=True)


class SkeletonGRUEncoder(nn.Module):
    """CMD encoder for one modality.

    Args:
        input_size: features per frame (150 = 25 joints x 3 coordinates x 2 persons).
        hidden_size: hidden size H of each of the two GRU stacks (1024); the feature has 2H values.
        num_layers: GRU layers of each stack (3).
        out_dim: output size of the linear head `fc`: the embedding size (128) in pretraining, the
            number of classes downstream.
    """

    def __init__(self, input_size: int = 150, hidden_size: int = 1024, num_layers: int = 3, out_dim: int = 128):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.input_norm = nn.BatchNorm1d(input_size)
        self.encoder = GRUStacks(input_size, hidden_size, num_layers)
        self.fc = nn.Linear(2 * hidden_size, out_dim)
        for name, param in self.named_parameters():
            if param.dim() == 2 and (name.startswith("encoder.gru.") or name == "fc.weight"):
                nn.init.xavier_uniform_(param)

    @property
    def feature_dim(self) -> int:
        """Size of the encoder feature (the top-layer states of both stacks)."""
        return 2 * self.hidden_size

    def use_mlp_head(self) -> None:
        """Put a new Linear(2H, 2H) (PyTorch default init) and a ReLU in front of the head: `fc` becomes
        Sequential(Linear(2H, 2H), ReLU, <the original, Xavier-initialised fc>), as the published builder does."""
        dim = self.feature_dim
        self.fc = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), self.fc)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Input BatchNorm over N and T for each of the features. N x T x F -> N x T x F."""
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"expected an input sequence N x T x {self.input_size}, found shape {tuple(x.shape)}")
        return self.input_norm(x.transpose(1, 2)).transpose(1, 2)  # N x T x F

    def _stack_weights(self, layer: int, suffix: str) -> list:
        """[w_ih, w_hh, b_ih, b_hh] of one layer of one stack."""
        gru = self.encoder.gru
        return [getattr(gru, f"{kind}_l{layer}{suffix}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The published 2H-d feature of each sequence. x: N x T x F -> N x 2H."""
        seq = self._normalise(x).transpose(0, 1).contiguous()  # T x N x F (time-major, as torch.gru runs)
        h0 = seq.new_zeros(1, seq.shape[1], self.hidden_size)  # 1 x N x H
        last = []
        for layer in range(self.num_layers):
            outputs, last = [], []
            for suffix in STACK_SUFFIXES:
                # One forward-in-time, single-direction GRU over the whole sequence.
                out, h_n = torch.gru(
                    seq, h0, self._stack_weights(layer, suffix), True, 1, 0.0, self.training, False, False
                )  # T x N x H, 1 x N x H
                outputs.append(out)
                last.append(h_n[0])  # N x H
            if layer + 1 < self.num_layers:
                seq = torch.cat(outputs, dim=2)  # T x N x 2H
        return torch.cat(last, dim=1)  # N x 2H

    def features_loop(self, x: torch.Tensor) -> torch.Tensor:
        """Reference: the published computation, stepping the GRU one frame at a time. N x 2H."""
        seq = self._normalise(x)  # N x T x F
        hidden = None
        for t in range(seq.shape[1]):
            out, hidden = self.encoder.gru(seq[:, t : t + 1], hidden)  # N x 1 x 2H, 2L x N x H
        return out[:, 0]  # N x 2H

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        """x: N x T x F. Returns fc(feature) (N x out_dim), or the N x 2H feature when return_features."""
        feature = self.features(x)
        return feature if return_features else self.fc(feature)

    def forward_loop(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        """Same as `forward`, computed frame by frame as the published code does (slow)."""
        feature = self.features_loop(x)
        return feature if return_features else self.fc(feature)


class BIGRU(SkeletonGRUEncoder):
    """`SkeletonGRUEncoder` under its published name and arguments: en_input_size, en_hidden_size,
    en_num_layers, num_class (the head's output size; 60 by default, as published), and `knn_eval=True` to
    return the feature."""

    def __init__(
        self, en_input_size: int = 150, en_hidden_size: int = 1024, en_num_layers: int = 3, num_class: int = 60
    ):
        super().__init__(en_input_size, en_hidden_size, en_num_layers, num_class)

    def forward(self, x: torch.Tensor, knn_eval: bool = False) -> torch.Tensor:
        """x: N x T x F. Returns fc(feature) (N x num_class), or the N x 2H feature when knn_eval."""
        return super().forward(x, return_features=knn_eval)

    def forward_loop(self, x: torch.Tensor, knn_eval: bool = False) -> torch.Tensor:
        """Same as `forward`, computed frame by frame as the published code does (slow)."""
        return super().forward_loop(x, return_features=knn_eval)
