"""The CMD model (moco.model) and its published constructor (moco.builder.MoCo), docs/published-behaviour.md
§3.2, §3.3, §6, against direct computations from the definitions."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from dataset.layouts import NTU25
from moco.builder import MoCo, PublishedClassifier
from moco.encoder import BIGRU, SkeletonGRUEncoder
from moco.loss import cmd_kl, cmd_loss
from moco.modalities import MODALITIES, modality
from moco.model import CMD, ThreeStreamClassifier

HIDDEN, LAYERS, DIM = 4, 2, 3
ARGS = {"en_input_size": 150, "en_hidden_size": HIDDEN, "en_num_layers": LAYERS, "num_class": DIM}
PREFIX = {"joint": "", "motion": "_motion", "bone": "_bone"}
PARENTS = torch.tensor(NTU25.parents)  # the published NTU-25 bone table


def tiny_moco(**kw):
    torch.manual_seed(0)
    settings = dict(dim=DIM, K=8, m=0.9, T=0.2, teacher_T=0.3, student_T=0.4, cmd_weight=0.5, topk=5)
    settings.update(kw)
    return MoCo("graph-based", ARGS, **settings).double()


def views(n=2, t=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, 3, t, 25, 2, generator=g, dtype=torch.float64),
        torch.randn(n, 3, t, 25, 2, generator=g, dtype=torch.float64),
    )


def kl_by_definition(teacher, student, topk, teacher_T, student_T):
    """Mean over rows of sum_i p_i log(p_i / q_i) over the top-k teacher entries, with plain Python."""
    total = 0.0
    for t_row, s_row in zip(teacher.tolist(), student.tolist()):
        index = sorted(range(len(t_row)), key=lambda j: -t_row[j])[:topk]
        zt = sum(math.exp(t_row[j] / teacher_T) for j in index)
        zs = sum(math.exp(s_row[j] / student_T) for j in index)
        for j in index:
            p = math.exp(t_row[j] / teacher_T) / zt
            q = math.exp(s_row[j] / student_T) / zs
            total += p * math.log(p / q)
    return total / len(teacher)


def test_cmd_kl_hand_worked_topk():
    teacher = torch.tensor([[0.9, 0.1, 0.5, -0.3, 0.7, 0.2], [0.0, 0.4, -0.2, 0.8, 0.3, 0.6]], dtype=torch.float64)
    student = torch.tensor([[0.2, 0.8, -0.1, 0.4, 0.3, 0.9], [0.5, -0.6, 0.1, 0.2, 0.7, 0.0]], dtype=torch.float64)
    # top-3 teacher entries: row 0 -> columns 0, 4, 2; row 1 -> columns 3, 5, 1
    index = [[0, 4, 2], [3, 5, 1]]
    expected = 0.0
    for row, cols in enumerate(index):
        p = torch.softmax(teacher[row, cols] / 0.05, dim=0)
        q = torch.softmax(student[row, cols] / 0.1, dim=0)
        expected += float((p * (p / q).log()).sum())
    expected /= 2
    assert cmd_kl(teacher, student, 3, 0.05, 0.1).item() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(kl_by_definition(teacher, student, 3, 0.05, 0.1), rel=1e-12)


def test_cmd_loss_sums_six_ordered_pairs():
    g = torch.Generator().manual_seed(3)
    teacher = {name: torch.randn(3, 10, generator=g, dtype=torch.float64) for name in MODALITIES}
    student = {name: torch.randn(3, 10, generator=g, dtype=torch.float64) for name in MODALITIES}
    expected = sum(
        kl_by_definition(teacher[a], student[b], 4, 0.05, 0.1) for a in MODALITIES for b in MODALITIES if a != b
    )
    assert cmd_loss(teacher, student, 4, 0.05, 0.1).item() == pytest.approx(expected, rel=1e-10)


def momentum_updated(model):
    """A copy of `model` whose key encoders were updated by hand as k <- 0.9 k + 0.1 q."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for name in MODALITIES:
            for p_q, p_k in zip(ref.query_encoder(name).parameters(), ref.key_encoder(name).parameters()):
                p_k.copy_(0.9 * p_k + 0.1 * p_q)
    return ref


@pytest.mark.parametrize("mlp", [False, True])
def test_forward_logits_losses_queue_and_momentum(mlp):
    model = tiny_moco(mlp=mlp)
    with torch.no_grad():  # queries unlike their keys, so the momentum update shows (copies would not move)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    before = copy.deepcopy(model)
    ref = momentum_updated(model)
    im_q, im_k = views()

    logits_j, logits_m, logits_b, labels, loss_cmd = model(im_q, im_k)

    q = {n: F.normalize(ref.query_encoder(n)(modality(im_q, n, PARENTS)), dim=1) for n in MODALITIES}  # N x dim
    k = {n: F.normalize(ref.key_encoder(n)(modality(im_k, n, PARENTS)), dim=1).detach() for n in MODALITIES}
    queue = {n: getattr(before, "queue" + PREFIX[n]) for n in MODALITIES}  # dim x K
    for n, logits in zip(MODALITIES, (logits_j, logits_m, logits_b)):
        assert logits.shape == (2, 9) and logits.dtype == torch.float64
        expected = torch.cat([(q[n] * k[n]).sum(1, keepdim=True), q[n] @ queue[n]], dim=1) / 0.2
        torch.testing.assert_close(logits, expected)
    assert labels.tolist() == [0, 0]
    expected_cmd = sum(
        kl_by_definition(k[a] @ queue[a], q[b] @ queue[b], 5, 0.3, 0.4)
        for a in MODALITIES
        for b in MODALITIES
        if a != b
    )
    assert loss_cmd.item() == pytest.approx(0.5 * expected_cmd, rel=1e-9)

    for n in MODALITIES:
        new_queue = getattr(model, "queue" + PREFIX[n])
        torch.testing.assert_close(new_queue[:, :2], k[n].T)
        assert torch.equal(new_queue[:, 2:], queue[n][:, 2:])
        assert getattr(model, "queue_ptr" + PREFIX[n]).tolist() == [2]
        # momentum update k <- m k + (1 - m) q of every key parameter; queries untouched
        old_q = dict(before.query_encoder(n).named_parameters())
        old_k = dict(before.key_encoder(n).named_parameters())
        for pname, p_k in model.key_encoder(n).named_parameters():
            torch.testing.assert_close(p_k, 0.9 * old_k[pname] + 0.1 * old_q[pname], rtol=1e-13, atol=1e-15)
            assert not p_k.requires_grad
        for pname, p_q in model.query_encoder(n).named_parameters():
            assert torch.equal(p_q, old_q[pname])

    total = loss_cmd + sum(F.cross_entropy(s, labels) for s in (logits_j, logits_m, logits_b))
    total.backward()
    for n in MODALITIES:
        assert all(p.grad is not None for p in model.query_encoder(n).parameters())
        assert all(p.grad is None for p in model.key_encoder(n).parameters())


def kl_by_definition_autograd(teacher, student, topk, teacher_T, student_T):
    """kl_by_definition with torch scalars, so that autograd gives its gradient with respect to `student`."""
    total = 0.0
    for t_row, s_row in zip(teacher, student):
        index = sorted(range(len(t_row)), key=lambda j: -float(t_row[j]))[:topk]
        zt = sum(torch.exp(t_row[j] / teacher_T) for j in index)
        zs = sum(torch.exp(s_row[j] / student_T) for j in index)
        for j in index:
            p = torch.exp(t_row[j] / teacher_T) / zt
            q = torch.exp(s_row[j] / student_T) / zs
            total = total + p * torch.log(p / q)
    return total / len(teacher)


def test_cmd_loss_gradient_reaches_every_query_encoder_as_the_definition_gives_it():
    """The CMD loss alone, backpropagated, gives each query encoder the gradient of the definition's KL sum."""
    model = tiny_moco(mlp=True)
    before = copy.deepcopy(model)
    ref = momentum_updated(model)
    im_q, im_k = views()
    *_, loss_cmd = model(im_q, im_k)
    loss_cmd.backward()

    q = {n: F.normalize(ref.query_encoder(n)(modality(im_q, n, PARENTS)), dim=1) for n in MODALITIES}
    with torch.no_grad():
        k = {n: F.normalize(ref.key_encoder(n)(modality(im_k, n, PARENTS)), dim=1) for n in MODALITIES}
    queue = {n: getattr(before, "queue" + PREFIX[n]) for n in MODALITIES}  # dim x K
    expected = 0.5 * sum(
        kl_by_definition_autograd(k[a] @ queue[a], q[b] @ queue[b], 5, 0.3, 0.4)
        for a in MODALITIES
        for b in MODALITIES
        if a != b
    )
    expected.backward()
    for n in MODALITIES:
        got = dict(model.query_encoder(n).named_parameters())
        for pname, p_ref in ref.query_encoder(n).named_parameters():
            assert p_ref.grad is not None and p_ref.grad.abs().max() > 0, (n, pname)
            torch.testing.assert_close(got[pname].grad, p_ref.grad, rtol=1e-9, atol=1e-12, msg=f"{n} {pname}")
        assert all(p.grad is None for p in model.key_encoder(n).parameters())


def test_key_encoders_start_as_copies():
    model = tiny_moco(mlp=True)
    for n in MODALITIES:
        for p_q, p_k in zip(model.query_encoder(n).parameters(), model.key_encoder(n).parameters()):
            assert torch.equal(p_q, p_k)


def test_mlp_head_last_layer_is_xavier_initialised():
    # hidden 256, dim 128: Xavier std sqrt(2 / (512 + 128)) = 0.0559, PyTorch default 1/sqrt(3 * 512) = 0.0255
    torch.manual_seed(0)
    args = dict(ARGS, en_hidden_size=256, en_num_layers=1)
    model = MoCo("graph-based", args, dim=128, K=16, topk=4, mlp=True)
    for n in MODALITIES:
        for encoder in (model.query_encoder(n), model.key_encoder(n)):
            assert encoder.fc[2].weight.std().item() == pytest.approx(math.sqrt(2 / 640), rel=0.02)
            assert encoder.fc[0].weight.std().item() == pytest.approx(1 / math.sqrt(3 * 512), rel=0.02)


def test_queue_initialisation_and_pointer_wraps():
    model = tiny_moco()
    for n in MODALITIES:
        queue = getattr(model, "queue" + PREFIX[n])
        assert queue.shape == (DIM, 8)
        torch.testing.assert_close(queue.norm(dim=0), torch.ones(8, dtype=torch.float64))
        assert getattr(model, "queue_ptr" + PREFIX[n]).dtype == torch.long
    pointers = []
    for step in range(4):
        model(*views(seed=10 + step))
        pointers.append([int(getattr(model, "queue_ptr" + PREFIX[n])) for n in MODALITIES])
    assert pointers == [[2, 2, 2], [4, 4, 4], [6, 6, 6], [0, 0, 0]]


def test_second_step_enqueues_after_the_first():
    model = tiny_moco()
    model(*views(seed=4))
    first = model.queue.clone()
    ref = momentum_updated(model)
    im_q, im_k = views(seed=5)
    model(im_q, im_k)
    k = F.normalize(ref.key_encoder("joint")(modality(im_k, "joint", PARENTS)), dim=1).detach()
    torch.testing.assert_close(model.queue[:, 2:4], k.T)
    assert torch.equal(model.queue[:, :2], first[:, :2])
    assert torch.equal(model.queue[:, 4:], first[:, 4:])


def encoder_shapes(hidden, layers, head):
    shapes = {
        "input_norm.weight": (150,),
        "input_norm.bias": (150,),
        "input_norm.running_mean": (150,),
        "input_norm.running_var": (150,),
        "input_norm.num_batches_tracked": (),
    }
    for layer in range(layers):
        for suffix in ("", "_reverse"):
            shapes[f"encoder.gru.weight_ih_l{layer}{suffix}"] = (3 * hidden, 150 if layer == 0 else 2 * hidden)
            shapes[f"encoder.gru.weight_hh_l{layer}{suffix}"] = (3 * hidden, hidden)
            shapes[f"encoder.gru.bias_ih_l{layer}{suffix}"] = (3 * hidden,)
            shapes[f"encoder.gru.bias_hh_l{layer}{suffix}"] = (3 * hidden,)
    shapes.update(head)
    return shapes


@pytest.mark.parametrize("mlp", [False, True])
def test_pretrain_state_dict_names_and_shapes(mlp):
    model = tiny_moco(mlp=mlp)
    if mlp:
        head = {
            "fc.0.weight": (2 * HIDDEN, 2 * HIDDEN),
            "fc.0.bias": (2 * HIDDEN,),
            "fc.2.weight": (DIM, 2 * HIDDEN),
            "fc.2.bias": (DIM,),
        }
    else:
        head = {"fc.weight": (DIM, 2 * HIDDEN), "fc.bias": (DIM,)}
    expected = {}
    for prefix in (
        "encoder_q",
        "encoder_k",
        "encoder_q_motion",
        "encoder_k_motion",
        "encoder_q_bone",
        "encoder_k_bone",
    ):
        expected.update({f"{prefix}.{k}": v for k, v in encoder_shapes(HIDDEN, LAYERS, head).items()})
    for suffix in ("", "_motion", "_bone"):
        expected[f"queue{suffix}"] = (DIM, 8)
        expected[f"queue_ptr{suffix}"] = (1,)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected


def test_downstream_model_state_dict_and_views():
    torch.manual_seed(0)
    args = dict(ARGS, num_class=6)
    model = MoCo("graph-based", args, pretrain=False, mlp=True).double()
    head = {"fc.weight": (6, 2 * HIDDEN), "fc.bias": (6,)}
    expected = {}
    for prefix in ("encoder_q", "encoder_q_motion", "encoder_q_bone"):
        expected.update({f"{prefix}.{k}": v for k, v in encoder_shapes(HIDDEN, LAYERS, head).items()})
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected

    model.eval()
    x, _ = views(n=3)
    scores = {n: model(x, view=n) for n in MODALITIES}
    for n in MODALITIES:
        assert scores[n].shape == (3, 6)
        torch.testing.assert_close(scores[n], model.query_encoder(n).fc(model(x, view=n, knn_eval=True)))
    torch.testing.assert_close(model(x, view="all"), sum(scores.values()) / 3)
    features = model(x, view="bone", knn_eval=True)
    assert features.shape == (3, 2 * HIDDEN)
    expected = model.query_encoder("bone")(modality(x, "bone", PARENTS), return_features=True)
    torch.testing.assert_close(features, expected)
    with pytest.raises(ValueError, match="unknown view"):
        model(x, view="skeleton")


def test_published_pretraining_state_dict_names():
    # The released checkpoints' names (docs/published-behaviour.md §3.3), written out by hand: 3 GRU
    # layers, MLP head, and the three queues with their pointers.
    torch.manual_seed(0)
    model = MoCo("graph-based", dict(ARGS, en_num_layers=3), dim=DIM, K=8, topk=5, mlp=True, pretrain=True)
    expected = {"queue", "queue_ptr", "queue_motion", "queue_ptr_motion", "queue_bone", "queue_ptr_bone"}
    for prefix in (
        "encoder_q",
        "encoder_k",
        "encoder_q_motion",
        "encoder_k_motion",
        "encoder_q_bone",
        "encoder_k_bone",
    ):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            for layer in (0, 1, 2):
                expected.add(f"{prefix}.encoder.gru.{kind}_l{layer}")
                expected.add(f"{prefix}.encoder.gru.{kind}_l{layer}_reverse")
        expected |= {f"{prefix}.fc.0.weight", f"{prefix}.fc.0.bias", f"{prefix}.fc.2.weight", f"{prefix}.fc.2.bias"}
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            expected.add(f"{prefix}.input_norm.{name}")
    assert len(expected) == 6 * (24 + 4 + 5) + 6
    assert set(model.state_dict()) == expected


def assert_same_state(a, b):
    """Same state-dict names (in the same order), shapes and values."""
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    for key, value in state_a.items():
        assert value.shape == state_b[key].shape and value.dtype == state_b[key].dtype, key
        assert torch.equal(value, state_b[key]), key


@pytest.mark.parametrize("mlp", [False, True])
def test_published_builder_draws_the_weights_of_the_model(mlp):
    settings = dict(dim=DIM, K=8, m=0.9, T=0.2, teacher_T=0.3, student_T=0.4, cmd_weight=0.5, topk=5, mlp=mlp)
    torch.manual_seed(11)
    published = MoCo("graph-based", ARGS, **settings)
    rng_after_published = torch.get_rng_state()
    torch.manual_seed(11)
    model = CMD(
        150,
        HIDDEN,
        LAYERS,
        NTU25.parents,
        contrast_dim=DIM,
        contrast_k=8,
        contrast_m=0.9,
        contrast_t=0.2,
        teacher_t=0.3,
        student_t=0.4,
        cmd_weight=0.5,
        topk=5,
        mlp=mlp,
    )
    assert type(published) is CMD
    assert_same_state(published, model)
    assert torch.equal(rng_after_published, torch.get_rng_state())  # the same random draws, no more
    torch.manual_seed(12)
    other = CMD(150, HIDDEN, LAYERS, NTU25.parents, contrast_dim=DIM, contrast_k=8, topk=5, mlp=mlp)
    assert not torch.equal(other.encoder_q.encoder.gru.weight_ih_l0, model.encoder_q.encoder.gru.weight_ih_l0)


def test_published_module_paths_build_the_same_models():
    # The published scripts write `import moco.builder_cmd` and call it positionally (skeleton
    # representation, the BIGRU arguments, dim, K, m, T, teacher_T, student_T, cmd_weight, topk, mlp);
    # their encoder module is moco/GRU.py.
    import moco.builder_cmd
    from moco.GRU import BIGRU as PublishedBIGRU

    torch.manual_seed(11)
    published = moco.builder_cmd.MoCo("graph-based", ARGS, DIM, 8, 0.9, 0.2, 0.3, 0.4, 0.5, 5, True)
    torch.manual_seed(11)
    model = MoCo(
        "graph-based", ARGS, dim=DIM, K=8, m=0.9, T=0.2, teacher_T=0.3, student_T=0.4, cmd_weight=0.5, topk=5, mlp=True
    )
    assert_same_state(published, model)
    assert (published.contrast_k, published.topk, published.cmd_weight) == (8, 5, 0.5)
    torch.manual_seed(3)
    encoder = PublishedBIGRU(150, HIDDEN, LAYERS, num_class=7)
    torch.manual_seed(3)
    assert_same_state(encoder, BIGRU(150, HIDDEN, LAYERS, num_class=7))
    assert encoder(torch.randn(2, 5, 150), knn_eval=True).shape == (2, 2 * HIDDEN)


def test_published_downstream_builder_draws_the_weights_of_the_classifier():
    torch.manual_seed(13)
    published = MoCo("graph-based", dict(ARGS, num_class=6), pretrain=False, mlp=True)
    rng_after_published = torch.get_rng_state()
    torch.manual_seed(13)
    model = ThreeStreamClassifier(150, HIDDEN, LAYERS, 6, NTU25.parents)
    assert type(published) is PublishedClassifier
    assert_same_state(published, model)
    assert torch.equal(rng_after_published, torch.get_rng_state())


def test_published_classifier_features_are_its_knn_eval_output():
    torch.manual_seed(0)
    model = MoCo("graph-based", dict(ARGS, num_class=6), pretrain=False).double().eval()
    x, _ = views(n=3)
    for n in MODALITIES + ("all",):
        torch.testing.assert_close(model.features(x, n), model(x, view=n, knn_eval=True), rtol=0, atol=0)


def test_published_classifier_all_view_features_are_the_mean_of_the_three():
    torch.manual_seed(0)
    model = MoCo("graph-based", dict(ARGS, num_class=6), pretrain=False).double().eval()
    x, _ = views(n=3)
    features = model(x, view="all", knn_eval=True)
    streams = [model.query_encoder(n)(modality(x, n, PARENTS), return_features=True) for n in MODALITIES]
    assert features.shape == (3, 2 * HIDDEN)
    torch.testing.assert_close(features, (streams[0] + streams[1] + streams[2]) / 3)
    torch.testing.assert_close(model(x, None, "all", True), features, rtol=0, atol=0)  # published positions


def test_settings_are_kept_under_their_flag_names_and_rebuild_the_same_model():
    model = tiny_moco(mlp=True)
    assert isinstance(model, CMD)
    settings = (
        model.contrast_k,
        model.contrast_m,
        model.contrast_t,
        model.teacher_t,
        model.student_t,
        model.cmd_weight,
        model.topk,
    )
    assert settings == (8, 0.9, 0.2, 0.3, 0.4, 0.5, 5)
    rebuilt = CMD(150, HIDDEN, LAYERS, NTU25.parents, contrast_dim=DIM, contrast_k=8, topk=5, mlp=True).double()
    rebuilt.load_state_dict(model.state_dict())  # strict: same names and shapes


def test_published_encoder_arguments_are_translated_once():
    pretraining = tiny_moco()
    for n in MODALITIES:
        for encoder in (pretraining.query_encoder(n), pretraining.key_encoder(n)):
            sizes = (encoder.input_size, encoder.hidden_size, encoder.num_layers, encoder.fc.out_features)
            assert sizes == (150, HIDDEN, LAYERS, DIM)  # pretraining: the head is the embedding, size dim
    model = MoCo("graph-based", dict(ARGS, num_class=6), pretrain=False)
    assert isinstance(model, PublishedClassifier) and isinstance(model, ThreeStreamClassifier)
    encoder = model.query_encoder("motion")
    assert isinstance(encoder, SkeletonGRUEncoder)
    sizes = (encoder.input_size, encoder.hidden_size, encoder.num_layers, encoder.fc.out_features)
    assert sizes == (150, HIDDEN, LAYERS, 6)
    with pytest.raises(ValueError, match=r"must hold exactly the keys .*found \('en_input_size', 'hidden'\)"):
        MoCo("graph-based", {"en_input_size": 150, "hidden": 4}, pretrain=False)


def test_bad_settings():
    with pytest.raises(ValueError, match=r"topk.*queue length 8, found 9"):
        tiny_moco(topk=9)
    with pytest.raises(ValueError, match=r"topk.*queue length 8, found 0"):  # a CMD loss of 0 otherwise
        tiny_moco(topk=0)
    assert tiny_moco(topk=1).topk == 1 and tiny_moco(topk=8).topk == 8  # the bounds the flags allow
    with pytest.raises(ValueError):
        tiny_moco().query_encoder("hand")
    model = tiny_moco(K=10, topk=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"queue length 10 must be a multiple of the global batch.*found 4"):
        model(*views(n=4))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # checked before any change
    with pytest.raises(ValueError, match=r"two views of one non-empty batch, found 0 and 0"):
        model(*(v[:0] for v in views(n=4)))
    im_q, im_k = views(n=4)
    with pytest.raises(ValueError, match=r"two views of one non-empty batch, found 4 and 2"):
        model(im_q, im_k[:2])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="graph-based"):
        MoCo("seq-based", ARGS)


def test_autocast_keeps_losses_in_float32():
    torch.manual_seed(0)
    model = MoCo("graph-based", ARGS, dim=DIM, K=8, topk=5)
    im_q, im_k = (v.float() for v in views())
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        *logits, labels, loss_cmd = model(im_q, im_k)
    assert all(s.dtype == torch.float32 for s in logits) and loss_cmd.dtype == torch.float32
    assert torch.isfinite(loss_cmd) and model.queue.dtype == torch.float32


def test_similarities_and_the_cmd_loss_are_computed_in_float32_under_autocast():
    """With the encoders' features fixed, a bfloat16 autocast changes neither the logits nor the CMD loss,
    computed here from the definitions in float64: the block after the encoders runs with autocast off
    (bfloat16 matmuls would move them by ~1e-2)."""
    g = torch.Generator().manual_seed(4)
    features = {n: torch.randn(2, DIM, generator=g) for n in MODALITIES}  # N x dim, float32
    torch.manual_seed(0)
    model = MoCo("graph-based", ARGS, dim=DIM, K=8, topk=5)
    model.query_encoder = lambda name: lambda x: features[name] * 1.0
    model.key_encoder = lambda name: lambda x: features[name] * 0.9 + 0.1
    model._momentum_update_key_encoders = lambda: None
    queue = {n: getattr(model, "queue" + PREFIX[n]).double().clone() for n in MODALITIES}  # dim x K
    im_q, im_k = (v.float() for v in views())
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        *logits, _, loss_cmd = model(im_q, im_k)
    q = {n: F.normalize(features[n].double(), dim=1) for n in MODALITIES}
    k = {n: F.normalize(features[n].double() * 0.9 + 0.1, dim=1) for n in MODALITIES}
    for n, found in zip(MODALITIES, logits):
        expected = torch.cat([(q[n] * k[n]).sum(1, keepdim=True), q[n] @ queue[n]], dim=1) / 0.07
        torch.testing.assert_close(found.double(), expected, rtol=1e-5, atol=1e-5)
    expected_cmd = sum(
        kl_by_definition(k[a] @ queue[a], q[b] @ queue[b], 5, 0.05, 0.1)
        for a in MODALITIES
        for b in MODALITIES
        if a != b
    )
    assert loss_cmd.item() == pytest.approx(expected_cmd, rel=1e-5)


def _distributed_worker(rank, world, init_file, out_dir, K):
    """One rank: forward its half of a batch of 4 and save its queues and its own keys."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model = tiny_moco(K=K, topk=4)
        im_q, im_k = (v[2 * rank : 2 * rank + 2] for v in views(n=4))
        ref = momentum_updated(model)
        keys = {n: F.normalize(ref.key_encoder(n)(modality(im_k, n, PARENTS)), dim=1).detach() for n in MODALITIES}
        try:
            model(im_q, im_k)
            error = None
        except ValueError as exc:
            error = str(exc)
        state = {k: v for k, v in model.state_dict().items() if k.startswith("queue")}
        torch.save({"state": state, "keys": keys, "error": error}, f"{out_dir}/rank{rank}.pt")
        torch.distributed.barrier()  # leave together: gloo aborts a rank whose peer tears the group down first
    finally:
        torch.distributed.destroy_process_group()


def _run_two_ranks(tmp_path, K):
    torch.multiprocessing.spawn(_distributed_worker, args=(2, str(tmp_path / "init"), str(tmp_path), K), nprocs=2)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_distributed_keys_gathered_before_enqueue(tmp_path):
    rank0, rank1 = _run_two_ranks(tmp_path, K=8)
    assert rank0["error"] is None and rank1["error"] is None
    for name, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][name]), name  # every rank holds the same queue
    for n in MODALITIES:
        queue = rank0["state"]["queue" + PREFIX[n]]
        assert rank0["state"]["queue_ptr" + PREFIX[n]].tolist() == [4]  # advanced by the global batch
        torch.testing.assert_close(queue[:, 0:2], rank0["keys"][n].T)  # rank order
        torch.testing.assert_close(queue[:, 2:4], rank1["keys"][n].T)


def test_distributed_queue_must_divide_global_batch(tmp_path):
    rank0, _ = _run_two_ranks(tmp_path, K=6)  # 6 is a multiple of the local batch 2, not of 2 x 2
    assert "queue length 6 must be a multiple of the global batch" in rank0["error"] and "found 4" in rank0["error"]
    assert rank0["state"]["queue_ptr"].tolist() == [0]
