"""The published constructor of the CMD model, for code written against the published repository.

    model = MoCo(skeleton_representation, args_bi_gru, dim=128, K=65536, m=0.999, T=0.07, teacher_T=0.05,
                 student_T=0.1, cmd_weight=1.0, topk=1024, mlp=False, pretrain=True)

with `args_bi_gru = {'en_input_size': 150, 'en_hidden_size': 1024, 'en_num_layers': 3, 'num_class': 128}`
returns, with pretrain=True, a `moco.model.CMD` whose `forward(im_q, im_k)` gives (logits_joint,
logits_motion, logits_bone, labels, loss_cmd); with pretrain=False, the three query encoders with
`num_class` outputs, `forward(x, view='joint'|'motion'|'bone'|'all', knn_eval=False)`. State-dict names
are those of released checkpoints (docs/published-behaviour.md §3.3, §6). The published argument names
are translated here, once, to the model's own (which are those of the command-line flags).
"""

from dataset.layouts import NTU25, get_layout
from moco.model import CMD, ThreeStreamClassifier

BIGRU_ARGUMENTS = ("en_input_size", "en_hidden_size", "en_num_layers", "num_class")


class PublishedClassifier(ThreeStreamClassifier):
    """`ThreeStreamClassifier` with the published forward: `knn_eval=True` returns the features."""

    def forward(self, im_q, im_k=None, view="joint", knn_eval=False):
        return super().forward(im_q, view, return_features=knn_eval)


def MoCo(
    skeleton_representation,
    args_bi_gru,
    dim=128,
    K=65536,
    m=0.999,
    T=0.07,
    teacher_T=0.05,  # noqa: N802
    student_T=0.1,
    cmd_weight=1.0,
    topk=1024,
    mlp=False,
    pretrain=True,
    layout=None,
):
    """The published builder (see the module docstring); `layout` (default the published ntu25) gives
    the bone table and must have en_input_size features per frame."""
    if skeleton_representation != "graph-based":
        raise ValueError(f"unknown skeleton representation {skeleton_representation!r}; expected 'graph-based'")
    if sorted(args_bi_gru) != sorted(BIGRU_ARGUMENTS):
        raise ValueError(f"args_bi_gru must hold exactly the keys {BIGRU_ARGUMENTS}, found {tuple(args_bi_gru)}")
    layout = get_layout(NTU25 if layout is None else layout)
    if args_bi_gru["en_input_size"] != layout.input_size:
        raise ValueError(
            f"en_input_size {args_bi_gru['en_input_size']} does not fit the layout {layout.name!r} "
            f"({layout.num_joints} joints x {layout.channels} channels x {layout.bodies} bodies "
            f"= {layout.input_size})"
        )
    sizes = dict(
        input_size=layout.input_size,
        hidden_size=args_bi_gru["en_hidden_size"],
        num_layers=args_bi_gru["en_num_layers"],
        parents=layout.parents,
    )
    if not pretrain:
        return PublishedClassifier(num_class=args_bi_gru["num_class"], **sizes)
    return CMD(
        contrast_dim=dim,
        contrast_k=K,
        contrast_m=m,
        contrast_t=T,
        teacher_t=teacher_T,
        student_t=student_T,
        cmd_weight=cmd_weight,
        topk=topk,
        mlp=mlp,
        **sizes,
    )
