"""Chunked cosine kNN against scikit-learn and a hand-worked vote."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from engine.knn import knn_predict, knn_top1


def _data(seed, train=300, query=120, dim=24, classes=7):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    train_labels = rng.integers(0, classes, train)
    query_labels = rng.integers(0, classes, query)
    train_x = (centres[train_labels] + 1.5 * rng.normal(size=(train, dim))).astype(np.float32)
    query_x = (centres[query_labels] + 1.5 * rng.normal(size=(query, dim))).astype(np.float32)
    # different norms must not matter to cosine similarity
    train_x *= rng.uniform(0.1, 10.0, size=(train, 1)).astype(np.float32)
    return train_x, train_labels, query_x, query_labels


@pytest.mark.parametrize("chunk_size", [1, 17, 1024])
def test_one_nn_agrees_with_sklearn_cosine(chunk_size):
    train_x, train_y, query_x, query_y = _data(0)
    reference = KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(train_x, train_y).predict(query_x)
    predicted = knn_predict(
        torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(query_x), k=1, chunk_size=chunk_size
    )
    assert np.array_equal(predicted.numpy(), reference)
    expected_top1 = (reference == query_y).mean() * 100.0
    top1 = knn_top1(
        torch.from_numpy(train_x),
        torch.from_numpy(train_y),
        torch.from_numpy(query_x),
        torch.from_numpy(query_y),
        k=1,
        chunk_size=chunk_size,
    )
    assert top1 == pytest.approx(expected_top1)
    assert 0 < top1 < 100  # the data are neither trivial nor hopeless


@pytest.mark.parametrize("k", [2, 4, 5])
def test_k_neighbours_agree_with_sklearn_ties_included(k):
    train_x, train_y, query_x, _ = _data(1)
    sk = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(train_x, train_y)
    neighbours = sk.kneighbors(query_x, return_distance=False)  # Q x k
    counts = np.stack([np.bincount(train_y[n], minlength=7) for n in neighbours])  # Q x 7
    tied = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1  # several majority classes
    predicted = knn_predict(
        torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(query_x), k=k, chunk_size=13
    ).numpy()
    assert tied.sum() > 5 and (~tied).sum() > 5
    assert np.array_equal(predicted, sk.predict(query_x))


def test_vote_tie_goes_to_the_smallest_label():
    # Directions at angles 0.1, 0.2, 0.3, 0.4 rad from the query (x axis): labels 5, 2, 2, 5.
    # k=4: classes 5 and 2 both have two votes -> 2, though the nearest neighbour (0.1 rad) is class 5.
    angles = np.array([0.4, 0.2, 0.1, 0.3, 3.0])
    train = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], axis=1), dtype=torch.float32)
    labels = torch.tensor([5, 2, 5, 2, 2])
    query = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    # second query: nearest are 3.0 rad (class 2), then 0.4 (5), 0.3 (2), 0.2 (2) -> class 2 by majority
    assert knn_predict(train, labels, query, k=4).tolist() == [2, 2]
    # k=2 for the first query: labels 5 (0.1 rad) and 2 (0.2 rad) tie -> 2
    assert knn_predict(train, labels, query[:1], k=2).tolist() == [2]


def test_bad_arguments_are_reported():
    train = torch.randn(3, 4)
    with pytest.raises(ValueError, match="only 3 training"):
        knn_predict(train, torch.zeros(3, dtype=torch.long), torch.randn(2, 4), k=5)
    with pytest.raises(ValueError, match="4 neighbours requested but only 3 training features"):  # one short
        knn_predict(train, torch.zeros(3, dtype=torch.long), torch.randn(2, 4), k=4)
    assert knn_predict(train, torch.tensor([0, 1, 1]), train, k=3).tolist() == [1, 1, 1]  # all three: k = M
    with pytest.raises(ValueError, match="the number of neighbours must be at least 1, found 0"):
        knn_predict(train, torch.zeros(3, dtype=torch.long), torch.randn(2, 4), k=0)
    with pytest.raises(ValueError, match="feature sizes differ"):
        knn_predict(train, torch.zeros(3, dtype=torch.long), torch.randn(2, 5))


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_features_are_refused_naming_rows(bad_value):
    # a NaN training row would otherwise win every query (its similarity is NaN, argmax picks it)
    train_x, train_y, query_x, query_y = (torch.from_numpy(a) for a in _data(2))
    train_bad = train_x.clone()
    train_bad[[40, 7, 41], 3] = bad_value
    with pytest.raises(ValueError, match=r"training features are not finite .* in 3 of 300 rows, the first at row 7"):
        knn_top1(train_bad, train_y, query_x, query_y)
    query_bad = query_x.clone()
    query_bad[119, 0] = bad_value
    with pytest.raises(ValueError, match=r"query features are not finite .* in 1 of 120 rows, the first at row 119"):
        knn_predict(train_x, train_y, query_bad, k=3)
