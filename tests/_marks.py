"""The ``slow`` mark on some members of a parametrised family.

``python -m pytest`` (CI) runs every test; ``python -m pytest -m "not slow"``
is the routine local run, under a minute on two cores. A test is marked slow
when it takes more than about 0.3 s, or when it repeats over one more
estimator a behaviour that a cheap member of its family already checks in the
routine run.

``values`` are those given to ``parametrize`` (or to a fixture's ``params``):
plain values, or tuples for several argument names. ``key`` gives the name a
value is picked by (the value itself by default).
"""

import pytest


def _marked(values, is_slow, names, key):
    key = key or (lambda value: value)
    unknown = set(names) - {key(value) for value in values}
    assert not unknown, f"not among the values: {sorted(unknown, key=str)}"
    out = []
    for value in values:
        if is_slow(key(value)):
            args = value if isinstance(value, tuple) else (value,)
            value = pytest.param(*args, marks=pytest.mark.slow)
        out.append(value)
    return out


def slow_except(values, *fast, key=None):
    """``values``, every one but those in ``fast`` marked slow."""
    return _marked(values, lambda name: name not in fast, fast, key)


def slow_only(values, *slow, key=None):
    """``values``, those in ``slow`` marked slow."""
    return _marked(values, lambda name: name in slow, slow, key)
