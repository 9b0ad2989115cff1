"""Categorical columns, as every estimator takes them.

The estimators take a pandas DataFrame as it is: with
``categorical_features="from_dtype"`` (the default, as in scikit-learn's
``HistGradientBoosting*``), its columns of ``category``, ``object`` or
``string`` dtype are categorical; an array-like of column names, indices or a
boolean mask names them explicitly (for a numpy array too).

Three steps, all positional over the columns of ``X``:

- `encode_categories`, before ``validate_data``: each categorical column is
  replaced by the code of its value among the categories met when the
  estimator was fitted (its ``categories_``, sorted), ``-1`` for a value never
  met. Validated rows therefore keep ``n_features_in_`` columns and their
  feature names, and all numbers.
- `expand_categories`, where rows enter the model (`_standardize_X` of the
  network estimators, the wrapped estimator of the baselines): the numeric
  columns first, in their order, then the one-hot columns of each
  categorical column, all zeros for ``-1``. This is what
  ``ColumnTransformer([("num", "passthrough", numeric), ("cat",
  OneHotEncoder(handle_unknown="ignore"), categorical)])`` gives.
- `decode_categories`, the inverse of the first for evaluation helpers that
  hold validated rows and call the public methods again.
"""

import numpy as np

from sktransfer.utils._sklearn_compat import StrOptions


class _Unseen:
    """A value that equals no category: what a code of -1 decodes to."""

    def __repr__(self):
        return "<category unseen in fit>"


UNSEEN = _Unseen()


def _is_frame(X):
    return hasattr(X, "dtypes") and hasattr(X, "iloc") and hasattr(X, "columns")


def _is_categorical_dtype(dtype):
    import pandas as pd  # only called on the dtypes of a DataFrame

    return isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype)


def _n_columns(X):
    if _is_frame(X):
        return X.shape[1]
    shape = np.asarray(X).shape
    return shape[1] if len(shape) == 2 else None


def _column_names(X):
    return [str(c) for c in X.columns] if _is_frame(X) else None


def categorical_mask(spec, X):
    """Boolean mask of the categorical columns of ``X`` under ``spec``, or None.

    ``spec`` is the ``categorical_features`` parameter: None (no column),
    ``"from_dtype"`` (the ``category``, ``object`` and ``string`` columns of a
    DataFrame; none of an array), or an array-like of column names, of column
    indices, or a boolean mask. None when no column is categorical.
    """
    if spec is None:
        return None
    if isinstance(spec, str):  # "from_dtype", as the constraints allow
        if not _is_frame(X):
            return None
        mask = np.array([_is_categorical_dtype(d) for d in X.dtypes], dtype=bool)
        return mask if mask.any() else None
    n_columns = _n_columns(X)
    if n_columns is None:
        return None
    spec = np.asarray(spec)
    if spec.size == 0:
        return None
    spec = spec.ravel()
    if spec.dtype.kind == "b":
        if len(spec) != n_columns:
            raise ValueError(
                f"categorical_features is a boolean mask of {len(spec)} entries, "
                f"but X has {n_columns} columns."
            )
        mask = spec.copy()
    elif spec.dtype.kind in "iu":
        bad = spec[(spec < -n_columns) | (spec >= n_columns)]
        if len(bad):
            raise ValueError(
                f"categorical_features has the column indices {bad.tolist()}, out "
                f"of range for X with {n_columns} columns."
            )
        mask = np.zeros(n_columns, dtype=bool)
        mask[spec] = True
    elif spec.dtype.kind in "OUS":
        names = _column_names(X)
        if names is None:
            raise ValueError(
                "categorical_features names columns, so X must be a DataFrame "
                "with those columns; got an array without column names."
            )
        missing = [str(s) for s in spec if str(s) not in names]
        if missing:
            raise ValueError(
                f"categorical_features names {missing}, which are not columns of "
                f"X (columns: {names})."
            )
        mask = np.isin(names, [str(s) for s in spec])
    else:
        raise TypeError(
            "categorical_features must be None, 'from_dtype', or an array-like of "
            f"column names, column indices or booleans; got dtype {spec.dtype}."
        )
    return mask if mask.any() else None


def _columns(X):
    """The columns of ``X`` as 1-D numpy arrays, by position."""
    if _is_frame(X):
        return [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
    X = np.asarray(X)
    return [X[:, j] for j in range(X.shape[1])]


def _column_label(X, j):
    names = _column_names(X)
    return f"column {names[j]!r}" if names is not None else f"column {j}"


def _missing(values):
    """Whether each entry is missing: None, NaN, pandas' NA or NaT."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with the dev extra
        return np.array([v is None or v != v for v in values], dtype=bool)
    return np.asarray(pd.isna(values), dtype=bool)


def _checked_values(X, j, values):
    missing = _missing(values)
    if missing.any():
        raise ValueError(
            f"The categorical {_column_label(X, j)} has {int(missing.sum())} missing "
            "values. Fill them first, for instance with sklearn's "
            "SimpleImputer(strategy='most_frequent') in a Pipeline before the "
            "estimator (sktransfer.adapt adapts a Pipeline), or give them a "
            "category of their own."
        )
    return values


def _sorted_categories(X, j, values):
    values = np.asarray(values, dtype=object)
    try:
        return np.array(sorted(set(values.tolist())), dtype=object)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in values.tolist()})
        raise TypeError(
            f"The categorical {_column_label(X, j)} mixes values of types {kinds}, "
            "which cannot be sorted into categories; convert it to one type "
            "(for instance with .astype(str))."
        ) from None


def encode_categories(estimator, X, *, reset):
    """``X`` with each categorical column replaced by its codes (float64).

    ``reset`` (the first fit) finds the categorical columns from
    ``estimator.categorical_features`` and stores ``is_categorical_`` (a
    boolean mask over the columns, or None) and ``categories_`` (the sorted
    categories of each categorical column, or None). Otherwise the stored
    ones encode ``X``; a value never met gets code -1. ``X`` is returned as
    it is when no column is categorical, or when its shape does not match
    (``validate_data`` then says so). A DataFrame stays a DataFrame with the
    same columns, so feature names are checked as usual.
    """
    if reset:
        mask = categorical_mask(getattr(estimator, "categorical_features", None), X)
        categories = None
        if mask is not None:
            columns = _columns(X)
            categories = [
                _sorted_categories(X, j, _checked_values(X, j, columns[j]))
                for j in np.flatnonzero(mask)
            ]
        estimator.is_categorical_ = mask
        estimator.categories_ = categories
    else:
        mask = getattr(estimator, "is_categorical_", None)
        categories = getattr(estimator, "categories_", None)
    if mask is None or _n_columns(X) != len(mask):
        return X
    columns = _columns(X)
    for j, cats in zip(np.flatnonzero(mask), categories, strict=True):
        values = _checked_values(X, j, columns[j])
        lookup = {value: code for code, value in enumerate(cats.tolist())}
        columns[j] = np.fromiter(
            (lookup.get(v, -1) for v in np.asarray(values, dtype=object).tolist()),
            dtype=np.float64,
            count=len(values),
        )
    if _is_frame(X):
        import pandas as pd

        out = pd.DataFrame(dict(enumerate(columns)), index=X.index)
        out.columns = X.columns
        return out
    out = np.empty((len(columns[0]) if columns else 0, len(columns)), dtype=object)
    for j, column in enumerate(columns):
        out[:, j] = column
    return out


def expand_categories(estimator, X):
    """Validated rows (codes in the categorical columns) as the model's inputs.

    The numeric columns first, then the one-hot columns of each categorical
    column in turn (all zeros for code -1); ``X`` itself when no column is
    categorical.
    """
    mask = getattr(estimator, "is_categorical_", None)
    if mask is None:
        return X
    X = np.asarray(X, dtype=np.float64)
    blocks = [X[:, ~mask]]
    rows = np.arange(len(X))
    for j, cats in zip(np.flatnonzero(mask), estimator.categories_, strict=True):
        codes = X[:, j].astype(np.int64)
        block = np.zeros((len(X), len(cats)))
        seen = codes >= 0
        block[rows[seen], codes[seen]] = 1.0
        blocks.append(block)
    return np.hstack(blocks)


def decode_categories(estimator, X):
    """Validated rows back to the values the user gives: the inverse of
    `encode_categories` (a code of -1 becomes `UNSEEN`, which is encoded as
    -1 again); ``X`` itself when no column is categorical."""
    mask = getattr(estimator, "is_categorical_", None)
    if mask is None:
        return X
    out = np.asarray(X, dtype=np.float64).astype(object)
    for j, cats in zip(np.flatnonzero(mask), estimator.categories_, strict=True):
        codes = np.asarray(X[:, j], dtype=np.int64)
        out[:, j] = np.where(codes >= 0, cats[np.maximum(codes, 0)], UNSEEN)
    return out


def user_rows(estimator, X, *, decode=True):
    """Validated rows back as a user gives them to ``estimator``'s methods.

    Codes decoded to their categories (`decode_categories`; with ``decode``:
    the rows hold the estimator's own codes), and a DataFrame
    with the estimator's ``feature_names_in_`` where it has them (numeric
    columns float64), so that validating them again neither warns nor
    changes them. For evaluation helpers that hold validated rows and call
    the public `adapt` and `predict`.
    """
    names = getattr(estimator, "feature_names_in_", None)
    decoded = decode_categories(estimator, X) if decode else X
    if names is None:
        return decoded
    import pandas as pd  # the estimator was fitted on a DataFrame

    mask = getattr(estimator, "is_categorical_", None) if decode else None
    X = np.asarray(X)
    data = {
        j: decoded[:, j]
        if mask is not None and mask[j]
        else np.asarray(X[:, j], dtype=np.float64)
        for j in range(X.shape[1])
    }
    frame = pd.DataFrame(data)
    frame.columns = names
    return frame


def n_model_inputs(estimator):
    """The width of the model's input: ``n_features_in_`` columns, each
    categorical one as many columns as it has categories."""
    mask = getattr(estimator, "is_categorical_", None)
    if mask is None:
        return estimator.n_features_in_
    return int((~mask).sum()) + sum(len(c) for c in estimator.categories_)


# The ``_parameter_constraints`` entry of ``categorical_features``.
CATEGORICAL_CONSTRAINT = [None, StrOptions({"from_dtype"}), "array-like"]
