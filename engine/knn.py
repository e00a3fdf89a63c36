"""k-nearest-neighbour classification of features by cosine similarity (the kNN evaluation of
docs/published-behaviour.md §4).

Features are L2-normalised and compared by dot product, so the nearest neighbour by cosine distance
(1 - cos) is the one with the largest dot product. Queries are processed in chunks: only a
chunk x M similarity block exists at any time, never the full N x M matrix.

Votes for k > 1: each of the k neighbours gives one vote to its class; a tie between classes is won
by the smallest label, as in the published kNN (scikit-learn's KNeighborsClassifier).
"""

import torch
import torch.nn.functional as F


def check_finite(features, name):
    """Raise ValueError naming `name`, how many rows and the first row when `features` (N x D) hold NaN or inf."""
    bad = torch.nonzero(~torch.isfinite(features).all(dim=1)).flatten()  # rows with a NaN or inf
    if bad.numel():
        raise ValueError(
            f"{name} features are not finite (NaN or inf) in {bad.numel()} of {features.shape[0]} "
            f"rows, the first at row {int(bad[0])}; no kNN result is computed from them"
        )


@torch.no_grad()
def knn_predict(train_features, train_labels, query_features, k=1, chunk_size=1024, device=None):
    """Predicted labels (N int64, on the CPU) of `query_features` (N x D) by k-NN on
    `train_features` (M x D) with labels `train_labels` (M). Non-finite features raise ValueError."""
    if k < 1:
        raise ValueError(f"the number of neighbours must be at least 1, found {k}")
    if train_features.shape[0] < k:
        raise ValueError(f"{k} neighbours requested but only {train_features.shape[0]} training features")
    if train_features.shape[1] != query_features.shape[1]:
        raise ValueError(
            f"feature sizes differ: train {tuple(train_features.shape)}, query {tuple(query_features.shape)}"
        )
    check_finite(train_features, "training")
    check_finite(query_features, "query")
    device = device or train_features.device
    bank = F.normalize(train_features.to(device, torch.float32), dim=1)  # M x D
    bank_labels = train_labels.to(device, torch.long)  # M
    num_classes = int(bank_labels.max().item()) + 1
    predictions = []
    for start in range(0, query_features.shape[0], chunk_size):
        query = F.normalize(query_features[start : start + chunk_size].to(device, torch.float32), dim=1)  # B x D
        similarity = query @ bank.T  # B x M
        if k == 1:
            predictions.append(bank_labels[similarity.argmax(dim=1)].cpu())
            continue
        neighbours = similarity.topk(k, dim=1).indices  # B x k, nearest first
        neighbour_labels = bank_labels[neighbours]  # B x k
        votes = torch.zeros(query.shape[0], num_classes, device=device)  # B x C
        votes.scatter_add_(1, neighbour_labels, torch.ones_like(neighbour_labels, dtype=votes.dtype))
        predictions.append(votes.argmax(dim=1).cpu())  # the first (smallest) of tied labels
    return torch.cat(predictions)  # N


def knn_top1(train_features, train_labels, query_features, query_labels, k=1, chunk_size=1024, device=None):
    """Top-1 accuracy (percent) of k-NN predictions for `query_features` against `query_labels`."""
    predicted = knn_predict(train_features, train_labels, query_features, k, chunk_size, device)
    return (predicted == query_labels.cpu().long()).float().mean().item() * 100.0
