"""A linear probe that converges on small data: multinomial logistic regression on frozen features
(docs/small-data.md).

For each stream and every C of `C_GRID`, a pipeline that standardises the features (with the mean and
deviation of the samples it is fitted on) and fits a multinomial logistic regression by L-BFGS to
convergence is scored by stratified k-fold cross-validation on the training part alone; the C with the
best mean accuracy (the strongest regularisation on a tie) is refitted on the whole training part and
scored on the validation part. The three-stream score sums
the three streams' class probabilities, as the SGD probe's fusion sums their softmaxes.
"""

import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from tqdm import tqdm

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths tried by cross-validation
FOLDS = 5
MAX_ITER = 5000
FALLBACK_C = 1.0  # scikit-learn's default, when no cross-validation fold can be fitted

log = logging.getLogger(__name__)


def cv_folds(labels, seed, folds=FOLDS):
    """Stratified folds of the training labels: `folds`, or fewer when a class has fewer samples (at least 2);
    None when no class has two samples."""
    counts = np.bincount(labels)[np.unique(labels)]
    if counts.max() < 2:
        return None
    return StratifiedKFold(n_splits=max(2, min(folds, int(counts.min()))), shuffle=True, random_state=seed % 2**32)


def _pipeline(c):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER))


def fit_stream(train_x, train_y, seed=0, c_grid=C_GRID):
    """(fitted pipeline, chosen C) of one stream: C chosen by cross-validation on (train_x N x D, train_y N).

    A fold whose training part holds a single class cannot be fitted (two classes, one of them a single
    recording, leave such a fold); a fold that fails for any C is left out of every C's mean. When no fold
    can be fitted, C is `FALLBACK_C`."""
    folds = cv_folds(train_y, seed)
    # one thread: these fits are small, and OpenMP/BLAS threads spinning on a busy CPU make them 20x slower
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # a C that does not converge is not chosen for it
        warnings.simplefilter("ignore", FitFailedWarning)  # such folds score NaN and are left out below
        # a class of one recording sits in one fold only (cv_folds: at least two folds); its warning says so
        warnings.filterwarnings("ignore", "The least populated class in y has only", UserWarning)
        scores = np.array(
            [cross_val_score(_pipeline(c), train_x, train_y, cv=folds, error_score=np.nan) for c in c_grid]
            if folds is not None
            else [[np.nan]] * len(c_grid)
        )  # C x folds
        fitted = ~np.isnan(scores).any(axis=0)  # folds scored for every C
        if fitted.any():
            c = c_grid[int(np.argmax(scores[:, fitted].mean(axis=1)))]
        else:
            c = FALLBACK_C
            log.warning(
                "no cross-validation fold of the %d training recordings could be fitted (too few recordings of a "
                "class): the logistic probe's C is %g, scikit-learn's default, not a choice",
                len(train_y),
                c,
            )
        return _pipeline(c).fit(train_x, train_y), c


def informative_top5(top5, classes):
    """`top5`, or None when there were `classes` <= 5 to rank: then every label is among the five."""
    return top5 if classes > 5 else None


def _accuracy(probabilities, classes, labels):
    """Top-1 and top-5 (percent) of class probabilities (N x C over `classes`) against `labels` (N); top-5
    None over 5 classes or fewer (every class the probe knows is among the five)."""
    ranked = classes[np.argsort(-probabilities, axis=1)]  # N x C, most probable first
    top5 = float((ranked[:, :5] == labels[:, None]).any(axis=1).mean() * 100.0)
    return {"top1": float((ranked[:, 0] == labels).mean() * 100.0), "top5": informative_top5(top5, len(classes))}


def logistic_probe(train, val, seed=0):
    """Top-1/top-5 per stream and, with the three streams 'joint', 'motion' and 'bone', of their fusion
    and of a probe on their concatenated features; each probe's chosen C.

    train, val: ({stream: N x D features}, N labels). Returns {name: {'top1', 'top5'[, 'C']}}.
    """
    (train_x, train_y), (val_x, val_y) = train, val
    three = sorted(train_x) == ["bone", "joint", "motion"]
    if three:
        train_x = dict(train_x, concat=np.concatenate([train_x[n] for n in ("joint", "motion", "bone")], axis=1))
        val_x = dict(val_x, concat=np.concatenate([val_x[n] for n in ("joint", "motion", "bone")], axis=1))
    results, probabilities = {}, {}
    # each stream: len(C_GRID) x FOLDS cross-validation fits and one refit (minutes on NTU-sized parts)
    for name, features in tqdm(train_x.items(), desc="logistic probe", unit="stream", total=len(train_x), leave=False):
        model, c = fit_stream(features, train_y, seed)
        probabilities[name] = model.predict_proba(val_x[name])  # N x C
        results[name] = dict(_accuracy(probabilities[name], model.classes_, val_y), C=c)
    if three:
        fused = sum(probabilities[n] for n in ("joint", "motion", "bone"))
        results["fusion"] = _accuracy(fused, model.classes_, val_y)
    return results
