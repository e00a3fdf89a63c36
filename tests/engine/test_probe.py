"""The logistic probe against scikit-learn on fixed features: the C it picks, its scores, the fusion."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.probe import C_GRID, FALLBACK_C, cv_folds, logistic_probe


def features(seed, n_per_class=24, classes=4, dim=6):
    """Three noisy streams of class-dependent features (N x dim each) and their labels; the class centres are
    the same for every seed, so a training part and an evaluation part drawn with two seeds share them."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = np.random.default_rng(1000 + classes).normal(size=(3, classes, dim))
    streams = {
        name: centres[i][labels] + rng.normal(scale=2.0, size=(len(labels), dim)) * (i + 1)
        for i, name in enumerate(("joint", "motion", "bone"))
    }
    return streams, labels


def reference(train_x, train_y, val_x, seed):
    """Slow and plain: for every C the mean accuracy of a scaled logistic regression over the same folds,
    the best C (the smallest on a tie) refitted on the whole training part, its validation probabilities."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)

    def model(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, tol=1e-8))

    scores = [cross_val_score(model(c), train_x, train_y, cv=folds).mean() for c in C_GRID]
    best = C_GRID[int(np.argmax(scores))]
    return best, model(best).fit(train_x, train_y).predict_proba(val_x)


def test_probe_matches_scikit_learn_per_stream_and_fused():
    train_x, train_y = features(0)
    val_x, val_y = features(1)
    found = logistic_probe((train_x, train_y), (val_x, val_y), seed=3)
    probabilities = []
    for name in ("joint", "motion", "bone"):
        c, p = reference(train_x[name], train_y, val_x[name], seed=3)
        probabilities.append(p)
        assert found[name]["C"] == c
        assert found[name]["top1"] == pytest.approx((p.argmax(1) == val_y).mean() * 100, abs=100 / len(val_y) + 1e-9)
    fused = (sum(probabilities).argmax(1) == val_y).mean() * 100
    assert found["fusion"]["top1"] == pytest.approx(fused, abs=100 / len(val_y) + 1e-9)
    # one more probe on the three streams' features side by side
    side_by_side = [np.concatenate([x[n] for n in ("joint", "motion", "bone")], axis=1) for x in (train_x, val_x)]
    c, p = reference(side_by_side[0], train_y, side_by_side[1], seed=3)
    assert found["concat"]["C"] == c
    assert found["concat"]["top1"] == pytest.approx((p.argmax(1) == val_y).mean() * 100, abs=100 / len(val_y) + 1e-9)
    assert set(found) == {"joint", "motion", "bone", "fusion", "concat"}


def test_a_seed_beyond_32_bits_draws_the_folds_of_its_low_32_bits():
    # every run accepts seeds up to 2**63 - 1; scikit-learn's folds take 32 bits
    train_x, train_y = features(0)
    val_x, val_y = features(1)
    train_x = {"joint": train_x["joint"]}
    val_x = {"joint": val_x["joint"]}
    big = logistic_probe((train_x, train_y), (val_x, val_y), seed=2**40 + 3)
    assert big == logistic_probe((train_x, train_y), (val_x, val_y), seed=3)
    folds = [test.tolist() for _, test in cv_folds(train_y, 2**63 - 1).split(train_x["joint"], train_y)]
    assert folds == [test.tolist() for _, test in cv_folds(train_y, 2**32 - 1).split(train_x["joint"], train_y)]


def top5_by_hand(probabilities, labels):
    """Percent of rows whose label is among the five largest probabilities, one row at a time."""
    hits = 0
    for row, label in zip(probabilities.tolist(), labels.tolist()):
        hits += label in sorted(range(len(row)), key=lambda j: -row[j])[:5]
    return hits / len(labels) * 100


def test_top5_counts_the_label_among_the_five_most_probable():
    """Eight classes: top-5 per stream and fused, against scikit-learn's probabilities ranked by hand."""
    train_x, train_y = features(0, classes=8)
    val_x, val_y = features(1, classes=8)
    found = logistic_probe((train_x, train_y), (val_x, val_y), seed=3)
    probabilities = {}
    for name in ("joint", "motion", "bone"):
        probabilities[name] = reference(train_x[name], train_y, val_x[name], seed=3)[1]
        expected = top5_by_hand(probabilities[name], val_y)
        assert found[name]["top5"] == pytest.approx(expected, abs=100 / len(val_y) + 1e-9)
    fused = top5_by_hand(sum(probabilities.values()), val_y)
    assert found["fusion"]["top5"] == pytest.approx(fused, abs=100 / len(val_y) + 1e-9)
    # the data make top-5 a check of its own: below 100 and above top-1 for the noisiest stream
    bone = probabilities["bone"]
    assert (bone.argmax(1) == val_y).mean() * 100 + 10 < top5_by_hand(bone, val_y) < 100
    one = logistic_probe(({"joint": train_x["joint"]}, train_y), ({"joint": val_x["joint"]}, val_y), seed=3)
    assert one == {"joint": found["joint"]}  # no fusion of one stream


@pytest.mark.parametrize("classes", [5, 6])
def test_top5_is_left_out_over_five_classes_or_fewer(classes):
    train_x, train_y = features(0, classes=classes)
    val_x, val_y = features(1, classes=classes)
    joint = logistic_probe(({"joint": train_x["joint"]}, train_y), ({"joint": val_x["joint"]}, val_y), seed=3)["joint"]
    if classes == 5:  # every class the probe knows is among the five most probable
        assert joint["top5"] is None
    else:
        expected = top5_by_hand(reference(train_x["joint"], train_y, val_x["joint"], seed=3)[1], val_y)
        assert joint["top5"] == pytest.approx(expected, abs=100 / len(val_y) + 1e-9)
        known = train_y < 5  # a probe fitted on a subset of five of the six classes ranks five
        subset = logistic_probe(
            ({"joint": train_x["joint"][known]}, train_y[known]), ({"joint": val_x["joint"]}, val_y)
        )
        assert subset["joint"]["top5"] is None and subset["joint"]["top1"] < 100


def test_the_regularisation_grid_is_the_documented_one():
    assert C_GRID == (0.001, 0.01, 0.1, 1.0, 10.0)  # docs/small-data.md, "The probe"


def test_folds_shrink_for_classes_with_few_samples():
    assert cv_folds(np.repeat(np.arange(3), 10), seed=0).n_splits == 5
    assert cv_folds(np.array([0, 0, 0, 1, 1, 1, 2, 2]), seed=0).n_splits == 2
    assert cv_folds(np.array([0, 0, 0, 1]), seed=0).n_splits == 2  # at least 2


def test_folds_that_cannot_be_fitted_are_left_out_of_the_choice_of_c():
    """Two classes, one of them a single recording: one fold's training part holds one class. C is chosen
    on the other folds, as a plain loop over the same folds that skips them does; nothing is NaN."""
    rng = np.random.default_rng(5)
    train_y = np.array([0] * 11 + [1])
    train_x = rng.normal(size=(12, 4)) + train_y[:, None] * 3.0
    val_y = np.array([0, 1] * 4)
    val_x = rng.normal(size=(8, 4)) + val_y[:, None] * 3.0
    scores = {c: [] for c in C_GRID}
    with pytest.warns(UserWarning, match="least populated class"):  # scikit-learn's, which the probe keeps quiet
        folds = list(cv_folds(train_y, seed=0).split(train_x, train_y))
    for fit_part, score_part in folds:
        if len(np.unique(train_y[fit_part])) < 2:
            continue
        for c in C_GRID:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
            scores[c].append(
                model.fit(train_x[fit_part], train_y[fit_part]).score(train_x[score_part], train_y[score_part])
            )
    assert all(len(s) == 1 for s in scores.values())  # one fold of two was fitted
    best = C_GRID[int(np.argmax([np.mean(scores[c]) for c in C_GRID]))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing leaks to the user's terminal
        found = logistic_probe(({"joint": train_x}, train_y), ({"joint": val_x}, val_y), seed=0)
    assert found["joint"]["C"] == best


def test_no_fold_fitted_falls_back_to_scikit_learns_default_c_and_says_so(caplog):
    train_x, train_y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])  # one recording a class: no folds
    with caplog.at_level("WARNING", logger="engine.probe"):
        found = logistic_probe(({"joint": train_x}, train_y), ({"joint": train_x}, train_y))
    assert found["joint"]["C"] == FALLBACK_C == 1.0
    assert "no cross-validation fold of the 2 training recordings could be fitted" in caplog.text
    assert "C is 1, scikit-learn's default, not a choice" in caplog.text
    assert found["joint"]["top1"] == 100.0
    assert cv_folds(train_y, seed=0) is None
