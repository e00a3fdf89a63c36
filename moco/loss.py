"""The cross-modal mutual distillation (CMD) loss (docs/published-behaviour.md §3.2)."""

import torch
import torch.nn.functional as F


def _top_teacher(teacher_sim: torch.Tensor, topk: int, teacher_T: float):
    """Log-softmax of the `topk` largest teacher similarities of each row, and their indices."""
    teacher_top, index = teacher_sim.topk(topk, dim=1)  # N x topk, N x topk
    return F.log_softmax(teacher_top / teacher_T, dim=1), index


def _kl(log_p_teacher: torch.Tensor, index: torch.Tensor, student_sim: torch.Tensor, student_T: float) -> torch.Tensor:
    """KL(teacher || softmax(student[index] / student_T)), averaged over the batch."""
    log_p_student = F.log_softmax(student_sim.gather(1, index) / student_T, dim=1)  # N x topk
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)


def cmd_kl(
    teacher_sim: torch.Tensor, student_sim: torch.Tensor, topk: int, teacher_T: float, student_T: float
) -> torch.Tensor:
    """KL(softmax(teacher[I] / teacher_T) || softmax(student[I] / student_T)), averaged over the batch.

    teacher_sim, student_sim: N x K similarities of one modality's keys (teacher, no gradient) and of
    another modality's queries (student) to the queue; I are, per row, the indices of the `topk`
    largest teacher similarities. Returns a scalar.
    """
    log_p_teacher, index = _top_teacher(teacher_sim, topk, teacher_T)
    return _kl(log_p_teacher, index, student_sim, student_T)


def cmd_loss(teacher_sims: dict, student_sims: dict, topk: int, teacher_T: float, student_T: float) -> torch.Tensor:
    """Sum of `cmd_kl` over every ordered pair (teacher a, student b != a) of modalities.

    teacher_sims[a]: N x K key-to-queue similarities of modality a; student_sims[b]: N x K
    query-to-queue similarities of modality b (all queues hold the same samples in the same slots).
    """
    total = 0.0
    for a, teacher_sim in teacher_sims.items():
        log_p_teacher, index = _top_teacher(teacher_sim, topk, teacher_T)
        for b, student_sim in student_sims.items():
            if b != a:
                total = total + _kl(log_p_teacher, index, student_sim, student_T)
    return total
