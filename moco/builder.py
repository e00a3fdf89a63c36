"""MoCo with three modalities and cross-modal mutual distillation (CMD; docs/published-behaviour.md §3.2 and §6).

State-dict names are those of the released checkpoints (docs/published-behaviour.md §3.3): for modality 'joint' the
attributes are `encoder_q`, `encoder_k`, `queue`, `queue_ptr`; for 'motion' and 'bone' the same
names with the suffix `_motion` / `_bone`.

Use from training code:
    logits_j, logits_m, logits_b, labels, loss_cmd = model(im_q, im_k)
    loss = CE(logits_j, labels) + CE(logits_m, labels) + CE(logits_b, labels) + loss_cmd
The contrastive top-1 of a modality is `(logits.argmax(1) == labels)` (the positive is column 0).
Downstream code gets per-modality 2048-d features with `model.features(x, view)`.

The constructor and `forward` keep the published names (`args_bi_gru` with its `en_*` and `num_class`
keys, `knn_eval`); they are translated once, here, to the encoder's own (`SkeletonGRUEncoder`
sizes, `return_features`).

A pretraining forward also changes the model's state, as the published one does: it moves the key
encoders (momentum update, before the keys) and enqueues the keys (after the losses). Under
torch.autocast the encoders may run in reduced precision; similarities, logits and the CMD loss are
computed in float32 (or the queue's dtype if wider). When torch.distributed is initialised the keys
of all ranks are gathered before enqueueing, so every rank holds the same queues.
"""
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from dataset.layouts import NTU25, get_layout
from moco.encoder import SkeletonGRUEncoder
from moco.loss import cmd_loss
from moco.modalities import MODALITIES, modality

VIEWS = MODALITIES + ('all',)
BIGRU_ARGUMENTS = ('en_input_size', 'en_hidden_size', 'en_num_layers', 'num_class')


def _suffix(name: str) -> str:
    """State-dict suffix of a modality: '' for joint, '_motion', '_bone'."""
    if name not in MODALITIES:
        raise ValueError(f'unknown modality {name!r}; expected one of {MODALITIES}')
    return '' if name == 'joint' else f'_{name}'


def encoder_sizes(args_bi_gru: dict) -> dict:
    """`SkeletonGRUEncoder` arguments from the published BIGRU arguments (the keys of BIGRU_ARGUMENTS)."""
    if sorted(args_bi_gru) != sorted(BIGRU_ARGUMENTS):
        raise ValueError(f'args_bi_gru must hold exactly the keys {BIGRU_ARGUMENTS}, found {tuple(args_bi_gru)}')
    return {'input_size': args_bi_gru['en_input_size'], 'hidden_size': args_bi_gru['en_hidden_size'],
            'num_layers': args_bi_gru['en_num_layers'], 'out_dim': args_bi_gru['num_class']}


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenation over ranks (rank order) of `tensor` from every process; itself when not distributed."""
    if not _distributed():
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)  # (world x N) x ...


class MoCo(nn.Module):
    """Three-modality MoCo with CMD.

    Args:
        skeleton_representation: input representation; only 'graph-based' (N x C x T x V x M) exists.
        args_bi_gru: the published encoder arguments {'en_input_size', 'en_hidden_size', 'en_num_layers',
            'num_class'} (features per frame, GRU hidden size, GRU layers, head size). With pretrain=True
            the encoders' head size is the embedding size `dim` (num_class is not used).
        dim: embedding size (128).
        K: queue length (divisible by the global batch size).
        m: momentum of the key encoders (0.999).
        T: softmax temperature of the InfoNCE logits (0.07).
        teacher_T, student_T: temperatures of the teacher / student distributions in CMD (0.05, 0.1).
        cmd_weight: weight of the CMD loss, already applied to the returned `loss_cmd`.
        topk: number of queue entries (largest teacher similarities) the CMD loss compares.
        mlp: use the Linear-ReLU-Linear projection head (pretraining only).
        pretrain: True builds query/key encoders and queues; False builds only the three query
            encoders with `num_class` outputs for downstream use.
        layout: the skeleton layout (a `dataset.layouts.Layout`, its name or its fields; default the
            published 'ntu25'): its parent table makes the bone modality, and its joints x channels
            x bodies must equal en_input_size. Recorded in `arch` with the other arguments.
    """

    def __init__(self, skeleton_representation, args_bi_gru, dim=128, K=65536, m=0.999, T=0.07,
                 teacher_T=0.05, student_T=0.1, cmd_weight=1.0, topk=1024, mlp=False, pretrain=True,
                 layout=None):
        super().__init__()
        if skeleton_representation != 'graph-based':
            raise ValueError(f"unknown skeleton representation {skeleton_representation!r}; "
                             f"expected 'graph-based'")
        self.layout = get_layout(NTU25 if layout is None else layout)
        self.arch = dict(skeleton_representation=skeleton_representation, args_bi_gru=dict(args_bi_gru),
                         dim=dim, K=K, m=m, T=T, teacher_T=teacher_T, student_T=student_T,
                         cmd_weight=cmd_weight, topk=topk, mlp=mlp, pretrain=pretrain,
                         layout=self.layout.to_dict())
        self.pretrain = pretrain
        sizes = encoder_sizes(args_bi_gru)
        if sizes['input_size'] != self.layout.input_size:
            raise ValueError(f"en_input_size {sizes['input_size']} does not fit the layout {self.layout.name!r} "
                             f"({self.layout.num_joints} joints x {self.layout.channels} channels x "
                             f"{self.layout.bodies} bodies = {self.layout.input_size})")
        # not in the state dict: the layout is recorded in `arch`, and released checkpoints have no entry
        self.register_buffer('bone_parents', torch.tensor(self.layout.parents, dtype=torch.long), persistent=False)
        if not pretrain:
            for name in MODALITIES:
                setattr(self, f'encoder_q{_suffix(name)}', SkeletonGRUEncoder(**sizes))
            return
        if not 0 < topk <= K:
            raise ValueError(f'topk must be between 1 and the queue length K={K}, found topk={topk}')
        self.K, self.m, self.T = K, m, T
        self.teacher_T, self.student_T = teacher_T, student_T
        self.cmd_weight, self.topk = cmd_weight, topk
        sizes['out_dim'] = dim
        for name in MODALITIES:
            s = _suffix(name)
            encoder_q, encoder_k = SkeletonGRUEncoder(**sizes), SkeletonGRUEncoder(**sizes)
            if mlp:
                encoder_q.use_mlp_head()
                encoder_k.use_mlp_head()
            for param_q, param_k in zip(encoder_q.parameters(), encoder_k.parameters()):
                param_k.data.copy_(param_q.data)
                param_k.requires_grad = False
            setattr(self, f'encoder_q{s}', encoder_q)
            setattr(self, f'encoder_k{s}', encoder_k)
            self.register_buffer(f'queue{s}', F.normalize(torch.randn(dim, K), dim=0))  # dim x K
            self.register_buffer(f'queue_ptr{s}', torch.zeros(1, dtype=torch.long))

    def query_encoder(self, name: str) -> SkeletonGRUEncoder:
        """The query encoder of modality `name`."""
        return getattr(self, f'encoder_q{_suffix(name)}')

    def key_encoder(self, name: str) -> SkeletonGRUEncoder:
        """The momentum (key) encoder of modality `name`."""
        return getattr(self, f'encoder_k{_suffix(name)}')

    def queue_of(self, name: str) -> torch.Tensor:
        """The dim x K queue of modality `name`."""
        return getattr(self, f'queue{_suffix(name)}')

    def queue_ptr_of(self, name: str) -> torch.Tensor:
        """The one-element pointer of modality `name`'s queue."""
        return getattr(self, f'queue_ptr{_suffix(name)}')

    def check_batch_size(self, global_batch_size: int) -> None:
        """Raise ValueError unless the queue length K is a multiple of the global batch size."""
        if self.K % global_batch_size != 0:
            raise ValueError(f'the queue length K={self.K} must be a multiple of the global batch size '
                             f'(batch size x number of processes), found {global_batch_size}')

    @torch.no_grad()
    def _momentum_update_key_encoders(self) -> None:
        """k <- m * k + (1 - m) * q for every parameter of every key encoder."""
        for name in MODALITIES:
            params_q = list(self.query_encoder(name).parameters())
            params_k = list(self.key_encoder(name).parameters())
            torch._foreach_mul_(params_k, self.m)
            torch._foreach_add_(params_k, params_q, alpha=1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: dict) -> None:
        """Write every modality's keys (gathered over all ranks) at its pointer and advance it."""
        for name in MODALITIES:
            k = concat_all_gather(keys[name])  # B x dim (B = global batch)
            self.check_batch_size(k.shape[0])
            queue, ptr = self.queue_of(name), self.queue_ptr_of(name)
            start = int(ptr)
            queue[:, start:start + k.shape[0]] = k.T.to(queue.dtype)  # dim x B
            ptr[0] = (start + k.shape[0]) % self.K

    def features(self, x: torch.Tensor, view: str = 'joint') -> torch.Tensor:
        """2H-d encoder features of the query encoder(s): N x C x T x V x M -> N x 2H."""
        return self._query_outputs(x, view, return_features=True)

    def _query_outputs(self, x: torch.Tensor, view: str, return_features: bool) -> torch.Tensor:
        """Query-encoder outputs (head scores, or features when return_features) of `view`; 'all' averages."""
        if view not in VIEWS:
            raise ValueError(f'unknown view {view!r}; expected one of {VIEWS}')
        names = MODALITIES if view == 'all' else (view,)
        outputs = [self.query_encoder(name)(modality(x, name, self.bone_parents), return_features) for name in names]
        return sum(outputs) / len(outputs)

    def forward(self, im_q, im_k=None, view='joint', knn_eval=False):
        """Pretraining: two views N x 3 x T x 25 x 2 -> (logits_joint, logits_motion, logits_bone,
        labels, loss_cmd); each logits N x (1 + K), labels N zeros, loss_cmd scalar x cmd_weight.
        Downstream (pretrain=False): forward(x, view, knn_eval) -> N x num_class scores, or N x 2H
        features when knn_eval (the published name of "return features"); view 'all' averages the
        three modalities.
        """
        if not self.pretrain:
            return self._query_outputs(im_q, view, return_features=knn_eval)
        if im_k is None:
            raise ValueError('pretraining forward needs two views: model(im_q, im_k)')
        q = {name: self.query_encoder(name)(modality(im_q, name, self.bone_parents)) for name in MODALITIES}  # N x dim
        with torch.no_grad():
            self._momentum_update_key_encoders()
            k = {name: self.key_encoder(name)(modality(im_k, name, self.bone_parents))
                 for name in MODALITIES}  # N x dim
        # Similarities, logits and losses in float32, also under autocast.
        with torch.autocast(device_type=im_q.device.type, enabled=False):
            logits, student_sims, teacher_sims = {}, {}, {}
            for name in MODALITIES:
                dtype = torch.promote_types(self.queue_of(name).dtype, torch.float32)
                q[name] = F.normalize(q[name].to(dtype), dim=1)  # N x dim
                k[name] = F.normalize(k[name].to(dtype), dim=1)  # N x dim
                queue = self.queue_of(name).detach().to(dtype, copy=True)  # dim x K
                l_pos = (q[name] * k[name]).sum(dim=1, keepdim=True)  # N x 1
                l_neg = q[name] @ queue  # N x K
                logits[name] = torch.cat([l_pos, l_neg], dim=1) / self.T  # N x (1+K)
                student_sims[name] = l_neg
                teacher_sims[name] = k[name] @ queue  # N x K, no gradient
            loss = cmd_loss(teacher_sims, student_sims, self.topk, self.teacher_T, self.student_T)
        labels = torch.zeros(im_q.shape[0], dtype=torch.long, device=im_q.device)  # N
        self._dequeue_and_enqueue(k)
        return logits['joint'], logits['motion'], logits['bone'], labels, loss * self.cmd_weight
