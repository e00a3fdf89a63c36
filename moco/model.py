"""The CMD model: three modality streams, the CMD pretraining module and the downstream classifier
(docs/published-behaviour.md §3).

- `ThreeStreamEncoder`: the joint, motion and bone encoders (`SkeletonGRUEncoder`) of a skeleton
  batch, under the published state-dict names `encoder_q`, `encoder_q_motion`, `encoder_q_bone`.
- `CMD(ThreeStreamEncoder)`: pretraining. Adds the momentum (key) encoders `encoder_k*` and the
  queues `queue*`/`queue_ptr*`; `forward(im_q, im_k)` returns the three InfoNCE logits, their labels
  and the weighted CMD loss, and moves the key encoders and queues as the published MoCo does.
- `ThreeStreamClassifier(ThreeStreamEncoder)`: downstream. The streams' heads are classifiers.

Every constructor argument has the name of its command-line flag (`hidden_size`, `contrast_k`, …);
the skeleton enters as `input_size` (joints x channels x bodies) and `parents` (its bone table).
`moco.builder.MoCo` is the published constructor of the same modules.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from moco.encoder import SkeletonGRUEncoder
from moco.loss import cmd_loss
from moco.modalities import MODALITIES, modality

VIEWS = MODALITIES + ("all",)
SUFFIX = {"joint": "", "motion": "_motion", "bone": "_bone"}  # state-dict suffix of each modality


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenation over ranks (rank order) of `tensor` from every process; itself when not distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)  # (world x N) x ...


class ThreeStreamEncoder(nn.Module):
    """The joint, motion and bone encoders of one skeleton layout.

    Subclasses add the streams (`_add_encoder`), so that each builds them in the order its
    initialisation draws random numbers in. `parents` is the layout's bone table (bone[v] =
    x[v] - x[parents[v]]).
    """

    def __init__(self, parents):
        super().__init__()
        # not in the state dict: the layout is part of the run's settings, and released checkpoints have no entry
        self.register_buffer("bone_parents", torch.tensor(tuple(parents), dtype=torch.long), persistent=False)

    def _add_encoder(self, prefix: str, name: str, encoder: SkeletonGRUEncoder) -> None:
        setattr(self, prefix + SUFFIX[name], encoder)

    def query_encoder(self, name: str) -> SkeletonGRUEncoder:
        """The (query) encoder of modality `name`."""
        if name not in SUFFIX:
            raise ValueError(f"unknown modality {name!r}; expected one of {MODALITIES}")
        return getattr(self, "encoder_q" + SUFFIX[name])

    def forward(self, x: torch.Tensor, view: str = "joint", return_features: bool = False) -> torch.Tensor:
        """Head outputs (N x out_dim), or the N x 2H features when `return_features`, of the encoder
        of `view` on x (N x C x T x V x M); view 'all' averages the three."""
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
        names = MODALITIES if view == "all" else (view,)
        outputs = [self.query_encoder(n)(modality(x, n, self.bone_parents), return_features) for n in names]
        return sum(outputs) / len(outputs)

    def features(self, x: torch.Tensor, view: str = "joint") -> torch.Tensor:
        """N x 2H encoder features of `view` ('all': the mean of the three)."""
        return ThreeStreamEncoder.forward(self, x, view, return_features=True)


class ThreeStreamClassifier(ThreeStreamEncoder):
    """Three streams whose heads `fc` give `num_class` scores (linear evaluation, fine-tuning)."""

    def __init__(self, input_size, hidden_size, num_layers, num_class, parents):
        super().__init__(parents)
        for name in MODALITIES:
            self._add_encoder("encoder_q", name, SkeletonGRUEncoder(input_size, hidden_size, num_layers, num_class))

    @property
    def classifier_keys(self) -> frozenset:
        """State-dict names of the three classifiers (`encoder_q*.fc.weight` and `.bias`)."""
        return frozenset(f"encoder_q{SUFFIX[n]}.fc.{p}" for n in MODALITIES for p in ("weight", "bias"))

    @torch.no_grad()
    def reset_classifiers(self) -> None:
        """Fresh classifiers, as the published evaluation makes them: weight ~ N(0, 0.01), bias = 0."""
        for name in MODALITIES:
            fc = self.query_encoder(name).fc
            fc.weight.normal_(mean=0.0, std=0.01)
            fc.bias.zero_()


class CMD(ThreeStreamEncoder):
    """Three-modality MoCo with cross-modal mutual distillation (docs/published-behaviour.md §3.2).

    Args (named as their flags):
        input_size, hidden_size, num_layers: the encoders' sizes; parents: the bone table.
        contrast_dim: embedding size (128). contrast_k: queue length K (a multiple of the global batch).
        contrast_m: key-encoder momentum. contrast_t: InfoNCE temperature.
        teacher_t, student_t: temperatures of the CMD teacher and student distributions.
        cmd_weight: weight of the CMD loss (applied to the returned loss). topk: queue entries it compares.
        mlp: Linear-ReLU-Linear projection heads.

    A forward also changes the module's state, as the published one does: it moves the key encoders
    (before the keys are computed) and enqueues the keys (after the losses). Under torch.autocast the
    encoders may run in reduced precision; similarities, logits and the CMD loss are float32 (or the
    queue's dtype if wider). Under torch.distributed the keys of all ranks are gathered before
    enqueueing, so every rank holds the same queues.
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers,
        parents,
        contrast_dim=128,
        contrast_k=16384,
        contrast_m=0.999,
        contrast_t=0.07,
        teacher_t=0.05,
        student_t=0.1,
        cmd_weight=1.0,
        topk=8192,
        mlp=False,
    ):
        super().__init__(parents)
        if not 0 < topk <= contrast_k:
            raise ValueError(f"topk must be between 1 and the queue length {contrast_k}, found {topk}")
        self.contrast_k, self.contrast_m, self.contrast_t = contrast_k, contrast_m, contrast_t
        self.teacher_t, self.student_t, self.cmd_weight, self.topk = teacher_t, student_t, cmd_weight, topk
        for name in MODALITIES:  # the published order of construction (and of random draws)
            encoder_q = SkeletonGRUEncoder(input_size, hidden_size, num_layers, contrast_dim)
            encoder_k = SkeletonGRUEncoder(input_size, hidden_size, num_layers, contrast_dim)
            if mlp:
                encoder_q.use_mlp_head()
                encoder_k.use_mlp_head()
            for param_q, param_k in zip(encoder_q.parameters(), encoder_k.parameters()):
                param_k.data.copy_(param_q.data)
                param_k.requires_grad = False
            self._add_encoder("encoder_q", name, encoder_q)
            self._add_encoder("encoder_k", name, encoder_k)
            self.register_buffer("queue" + SUFFIX[name], F.normalize(torch.randn(contrast_dim, contrast_k), dim=0))
            self.register_buffer("queue_ptr" + SUFFIX[name], torch.zeros(1, dtype=torch.long))

    def key_encoder(self, name: str) -> SkeletonGRUEncoder:
        """The momentum (key) encoder of modality `name`."""
        return getattr(self, "encoder_k" + SUFFIX[name])

    def queue_of(self, name: str) -> torch.Tensor:
        """The contrast_dim x K queue of modality `name`."""
        return getattr(self, "queue" + SUFFIX[name])

    @torch.no_grad()
    def _momentum_update_key_encoders(self) -> None:
        """k <- m * k + (1 - m) * q for every parameter of every key encoder."""
        for name in MODALITIES:
            params_k = list(self.key_encoder(name).parameters())
            torch._foreach_mul_(params_k, self.contrast_m)
            torch._foreach_add_(params_k, list(self.query_encoder(name).parameters()), alpha=1.0 - self.contrast_m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: dict) -> None:
        """Write every modality's keys (gathered over all ranks) at its pointer and advance it."""
        for name in MODALITIES:
            k = concat_all_gather(keys[name])  # B x dim (B = global batch; forward checked K % B)
            queue, ptr = self.queue_of(name), getattr(self, "queue_ptr" + SUFFIX[name])
            start = int(ptr)
            queue[:, start : start + k.shape[0]] = k.T.to(queue.dtype)  # dim x B
            ptr[0] = (start + k.shape[0]) % self.contrast_k

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor):
        """Two views N x C x T x V x M -> (logits_joint, logits_motion, logits_bone, labels, loss_cmd): each
        logits N x (1 + K) with the positive in column 0, labels N zeros, loss_cmd the weighted CMD loss."""
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if im_q.shape[0] == 0 or im_k.shape[0] != im_q.shape[0]:  # checked before any state changes
            raise ValueError(f"expected two views of one non-empty batch, found {im_q.shape[0]} and {im_k.shape[0]}")
        if self.contrast_k % (im_q.shape[0] * world):
            raise ValueError(
                f"the queue length {self.contrast_k} must be a multiple of the global batch "
                f"(batch size x processes), found {im_q.shape[0] * world}"
            )
        q = {n: self.query_encoder(n)(modality(im_q, n, self.bone_parents)) for n in MODALITIES}  # N x dim
        with torch.no_grad():
            self._momentum_update_key_encoders()
            k = {n: self.key_encoder(n)(modality(im_k, n, self.bone_parents)) for n in MODALITIES}  # N x dim
        with torch.autocast(device_type=im_q.device.type, enabled=False):
            logits, student_sims, teacher_sims = {}, {}, {}
            for name in MODALITIES:
                dtype = torch.promote_types(self.queue_of(name).dtype, torch.float32)
                q[name] = F.normalize(q[name].to(dtype), dim=1)  # N x dim
                k[name] = F.normalize(k[name].to(dtype), dim=1)  # N x dim
                queue = self.queue_of(name).detach().to(dtype, copy=True)  # dim x K
                l_pos = (q[name] * k[name]).sum(dim=1, keepdim=True)  # N x 1
                l_neg = q[name] @ queue  # N x K
                logits[name] = torch.cat([l_pos, l_neg], dim=1) / self.contrast_t  # N x (1+K)
                student_sims[name] = l_neg
                teacher_sims[name] = k[name] @ queue  # N x K, no gradient
            loss = cmd_loss(teacher_sims, student_sims, self.topk, self.teacher_t, self.student_t)
        labels = torch.zeros(im_q.shape[0], dtype=torch.long, device=im_q.device)  # N
        self._dequeue_and_enqueue(k)
        return logits["joint"], logits["motion"], logits["bone"], labels, loss * self.cmd_weight
