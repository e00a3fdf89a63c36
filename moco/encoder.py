"""The skeleton sequence encoder of CMD (docs/published-behaviour.md §3.1): input BatchNorm, a
'bidirectional' GRU run the way the published code runs it, and a projection or classification head.

The published code feeds `nn.GRU(bidirectional=True)` one frame at a time and carries the hidden
state from frame to frame. Both directions of every layer therefore run *forward* in time; layer
l+1 sees at frame t the concatenation of both layer-l states at frame t; the feature is the top
layer's two states at the last frame. `BIGRU.forward` computes exactly that function with one
whole-sequence, single-direction GRU call per layer and direction (`torch.gru`, time-major);
`BIGRU.forward_loop` is the published frame-by-frame computation, kept as the reference for tests
and the benchmark.
"""
import torch
from torch import nn


class Encoder(nn.Module):
    """Holds the GRU so that its parameters are named `encoder.gru.*` as in released checkpoints."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers, batch_first=True, bidirectional=True)


class BIGRU(nn.Module):
    """CMD encoder for one modality.

    Args:
        en_input_size: features per frame (150 = 25 joints x 3 coordinates x 2 persons).
        en_hidden_size: GRU hidden size per direction (1024); the feature has twice this size.
        en_num_layers: GRU layers (3).
        num_class: output size of the linear head `fc` (128 for pretraining, classes downstream).
    """

    def __init__(self, en_input_size: int = 150, en_hidden_size: int = 1024, en_num_layers: int = 3,
                 num_class: int = 128):
        super().__init__()
        self.en_input_size = en_input_size
        self.en_hidden_size = en_hidden_size
        self.en_num_layers = en_num_layers
        self.input_norm = nn.BatchNorm1d(en_input_size)
        self.encoder = Encoder(en_input_size, en_hidden_size, en_num_layers)
        self.fc = nn.Linear(2 * en_hidden_size, num_class)
        for name, param in self.named_parameters():
            if param.dim() == 2 and (name.startswith('encoder.gru.') or name == 'fc.weight'):
                nn.init.xavier_uniform_(param)

    @property
    def feature_dim(self) -> int:
        """Size of the encoder feature (both directions of the top layer)."""
        return 2 * self.en_hidden_size

    def use_mlp_head(self) -> None:
        """Put a new Linear(2H, 2H) (PyTorch default init) and a ReLU in front of the head: `fc` becomes
        Sequential(Linear(2H, 2H), ReLU, <the original, Xavier-initialised fc>), as the published builder does."""
        dim = self.feature_dim
        self.fc = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), self.fc)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Input BatchNorm over N and T for each of the features. N x T x F -> N x T x F."""
        if x.dim() != 3 or x.shape[2] != self.en_input_size:
            raise ValueError(f'expected an input sequence N x T x {self.en_input_size}, '
                             f'found shape {tuple(x.shape)}')
        return self.input_norm(x.transpose(1, 2)).transpose(1, 2)  # N x T x F

    def _direction_weights(self, layer: int, suffix: str) -> list:
        gru = self.encoder.gru
        return [getattr(gru, f'{kind}_l{layer}{suffix}')
                for kind in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The published 2048-d feature of each sequence. x: N x T x F -> N x 2H."""
        seq = self._normalise(x).transpose(0, 1).contiguous()  # T x N x F (time-major, as torch.gru runs)
        h0 = seq.new_zeros(1, seq.shape[1], self.en_hidden_size)  # 1 x N x H
        last = []
        for layer in range(self.en_num_layers):
            outputs, last = [], []
            for suffix in ('', '_reverse'):
                # One forward-in-time, single-direction GRU over the whole sequence.
                out, h_n = torch.gru(seq, h0, self._direction_weights(layer, suffix), True, 1, 0.0,
                                     self.training, False, False)  # T x N x H, 1 x N x H
                outputs.append(out)
                last.append(h_n[0])  # N x H
            if layer + 1 < self.en_num_layers:
                seq = torch.cat(outputs, dim=2)  # T x N x 2H
        return torch.cat(last, dim=1)  # N x 2H

    def features_loop(self, x: torch.Tensor) -> torch.Tensor:
        """Reference: the published computation, stepping the GRU one frame at a time. N x 2H."""
        seq = self._normalise(x)  # N x T x F
        hidden = None
        for t in range(seq.shape[1]):
            out, hidden = self.encoder.gru(seq[:, t:t + 1], hidden)  # N x 1 x 2H, 2L x N x H
        return out[:, 0]  # N x 2H

    def forward(self, x: torch.Tensor, knn_eval: bool = False) -> torch.Tensor:
        """x: N x T x F. Returns fc(feature) (N x num_class), or the N x 2H feature when knn_eval."""
        feature = self.features(x)
        return feature if knn_eval else self.fc(feature)

    def forward_loop(self, x: torch.Tensor, knn_eval: bool = False) -> torch.Tensor:
        """Same as `forward`, computed frame by frame as the published code does (slow)."""
        feature = self.features_loop(x)
        return feature if knn_eval else self.fc(feature)
