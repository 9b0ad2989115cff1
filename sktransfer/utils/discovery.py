"""Find every public sktransfer estimator, as ``sklearn.utils.all_estimators``."""

import inspect

from sklearn.base import BaseEstimator


def all_estimators():
    """Public estimators exported by ``sktransfer``, sorted by name.

    Returns
    -------
    estimators : list of (str, type)
        Name and class of every estimator in ``sktransfer.__all__``.
    """
    import sktransfer

    found = []
    for name in sktransfer.__all__:
        obj = getattr(sktransfer, name)
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
            found.append((name, obj))
    return sorted(found)
