"""skada's ``sample_domain`` convention: validation, label masks, domain weights."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_consistent_length, column_or_1d

# skada's masks of the unknown labels of target rows.
CLASSIFICATION_MASK = -1


def masked_rows(y, classification):
    """Whether each row's label is masked (-1 for classes, NaN for targets)."""
    if classification:
        if y.dtype.kind in "iu":
            return y == CLASSIFICATION_MASK
        if y.dtype.kind == "f":
            return np.isnan(y) | (y == CLASSIFICATION_MASK)
        return np.array([_is_mask(v) for v in y], dtype=bool)
    y2 = y.reshape(len(y), -1)
    return np.isnan(y2).all(axis=1)


def _is_mask(value):
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return True
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and value == CLASSIFICATION_MASK
    )


def check_sample_domain(sample_domain, y, classification, *, fit):
    """Validate ``sample_domain``, or infer it from the label masks.

    Returns an int64 array: positive for source rows, negative for target
    rows. Without ``sample_domain``, a regressor's rows with NaN targets are
    the target (domain -2) and the others the source (domain 1), as in skada;
    a classifier's rows are all source, because -1 is an ordinary class label
    in scikit-learn (binary labels are often -1 and 1). In `fit`, target rows
    must have masked labels and source rows real ones.
    """
    if sample_domain is None and classification:
        return np.ones(len(y), dtype=np.int64)
    masked = masked_rows(y, classification)
    mask_name = "-1" if classification else "NaN"
    if sample_domain is None:
        return np.where(masked, -2, 1).astype(np.int64)
    sample_domain = column_or_1d(sample_domain, warn=True)
    check_consistent_length(y, sample_domain)
    if sample_domain.dtype.kind not in "iuf" or (
        sample_domain.dtype.kind == "f"
        and not np.all(np.isfinite(sample_domain) & (sample_domain % 1 == 0))
    ):
        raise ValueError(
            "sample_domain must hold integers (positive for source domains, "
            f"negative for target domains), got dtype {sample_domain.dtype}."
        )
    sample_domain = sample_domain.astype(np.int64)
    if np.any(sample_domain == 0):
        raise ValueError(
            f"sample_domain contains 0 in {np.sum(sample_domain == 0)} row(s): "
            "source domains are positive integers and target domains negative "
            "ones (skada's convention); 0 is neither."
        )
    if not fit:
        return sample_domain
    target = sample_domain < 0
    labelled_target = target & ~masked
    if labelled_target.any():
        raise ValueError(
            f"{labelled_target.sum()} target row(s) (sample_domain < 0) have labels, "
            f"e.g. {y[labelled_target][0]!r}: domain-adversarial training is "
            "unsupervised on the target, so target labels must be masked with "
            f"{mask_name} (skada's convention). To use labelled target rows, give "
            "them a positive (source) domain."
        )
    unlabelled_source = ~target & masked
    if unlabelled_source.any():
        raise ValueError(
            f"{unlabelled_source.sum()} source row(s) (sample_domain > 0) have "
            f"masked labels ({mask_name}): every source row needs a label; give "
            "unlabelled rows a negative (target) domain."
        )
    return sample_domain


def check_two_domains(sample_domain):
    """Refuse training data without both a source and a target domain."""
    n_target = int(np.sum(sample_domain < 0))
    n_source = len(sample_domain) - n_target
    if n_source == 0 or n_target == 0:
        missing = "source" if n_source == 0 else "target"
        raise ValueError(
            f"Domain-adversarial training needs source and target rows, but there "
            f"are no {missing} rows (sample_domain: positive for labelled source "
            "domains, negative for unlabelled target domains; without it, rows "
            "with masked labels are the target)."
        )


def importance_weights(X_source, X_target, random_state=None):
    """Estimated density ratios ``p_target(x) / p_source(x)`` at the source rows.

    A logistic regression separates the standardised source and target rows;
    the ratio is ``P(target | x) / P(source | x) * n_source / n_target``,
    normalised to mean 1 over the source rows.
    """
    X = np.vstack([X_source, X_target])
    d = np.r_[np.zeros(len(X_source)), np.ones(len(X_target))]
    X = StandardScaler().fit_transform(X)
    clf = LogisticRegression(random_state=random_state).fit(X, d)
    proba = np.clip(clf.predict_proba(X[: len(X_source)])[:, 1], 1e-6, 1 - 1e-6)
    weights = proba / (1 - proba)
    return weights / weights.mean()
