"""sktransfer.save and sktransfer.load: bit-identical round trips, no pickle."""

import _pickle
import inspect
import io
import json
import math
import pickle
import sys
import zipfile
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import pytest
import torch
from sklearn.base import is_classifier
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback
from torch import nn

import sktransfer
from sktransfer import MAMLRegressor, MetaRidgeRegressor
from sktransfer.datasets import (
    make_related_classification_tasks,
    make_related_regression_tasks,
)
from sktransfer.utils.discovery import all_estimators
from tests._marks import slow_only
from tests.test_common import INIT_PARAMS

# sktransfer.save writes safetensors (the io extra, in the dev extra).
pytest.importorskip("safetensors")

# -- a guard: no unpickling while it is on -----------------------------------------
_GUARD = {"on": False, "hooked": False}


def _audit(event, args):
    # Every unpickler, skorch's and torch's included, looks classes up here.
    if event == "pickle.find_class" and _GUARD["on"]:
        raise AssertionError(f"load unpickled {args}")


def _refuse(*args, **kwargs):
    raise AssertionError("load called pickle or torch.load")


@contextmanager
def no_pickle(monkeypatch):
    """pickle.load(s), pickle.Unpickler and torch.load raise while on, and so
    does any unpickler that looks up a class."""
    if not _GUARD["hooked"]:
        sys.addaudithook(_audit)  # audit hooks stay for the process
        _GUARD["hooked"] = True
    with monkeypatch.context() as patch:
        for name in ("load", "loads", "Unpickler"):
            patch.setattr(pickle, name, _refuse)
        patch.setattr(torch, "load", _refuse)
        _GUARD["on"] = True
        try:
            yield
        finally:
            _GUARD["on"] = False


def _round_trip(estimator, monkeypatch, tmp_path, **kwargs):
    path = tmp_path / "model.skt"
    sktransfer.save(estimator, path)
    with no_pickle(monkeypatch):
        return sktransfer.load(path, **kwargs)


def _outputs(estimator, X):
    """Every prediction method the estimator has, on ``X``."""
    methods = ["predict", "predict_proba", "decision_function", "transform"]
    return {m: getattr(estimator, m)(X) for m in methods if hasattr(estimator, m)}


def _assert_same_outputs(a, b, X):
    out_a, out_b = _outputs(a, X), _outputs(b, X)
    assert out_a.keys() == out_b.keys()
    for method, value in out_a.items():
        np.testing.assert_array_equal(out_b[method], value, err_msg=method)


def _data(estimator):
    make = (
        make_related_classification_tasks
        if is_classifier(estimator)
        else make_related_regression_tasks
    )
    return make(n_tasks=6, n_samples=40, random_state=0)


def _fit(estimator, X, y, t, method="fit"):
    fit = getattr(estimator, method)
    parameters = inspect.signature(fit).parameters
    if "task_ids" in parameters:
        return fit(X, y, task_ids=t)
    if "sample_domain" in parameters:
        # Domain adaptation: the last task is the target domain, unlabelled
        # (skada's masks: -1 for classes, NaN for regression targets).
        target = t == t.max()
        y = np.where(target, -1 if is_classifier(estimator) else np.nan, y)
        return fit(X, y, sample_domain=np.where(target, -1, 1))
    return fit(X, y)


def _small(name, cls):
    estimator = cls(**INIT_PARAMS.get(name, {}))
    if "max_iter" in estimator.get_params():
        estimator.set_params(max_iter=5)
    return estimator


def test_guard_catches_unpickling(monkeypatch):
    X, y, t = make_related_regression_tasks(n_tasks=4, random_state=0)
    estimator = MAMLRegressor(max_iter=2, random_state=0).fit(X, y, task_ids=t)
    data = pickle.dumps(estimator)
    with no_pickle(monkeypatch):
        with pytest.raises(AssertionError, match="unpickled"):
            _pickle.loads(data)  # the C unpickler, not the patched name
        with pytest.raises(AssertionError, match="pickle"):
            pickle.loads(data)


@pytest.mark.parametrize(
    "name, cls",
    slow_only(
        all_estimators(),
        "FineTuneClassifier",
        "FineTuneRegressor",
        "MetaRidgeClassifier",
        "MetaRidgeRegressor",
        "ProtoNetClassifier",
        key=lambda pair: pair[0],
    ),
    ids=[name for name, _ in all_estimators()],
)
def test_round_trip_is_bit_identical(name, cls, monkeypatch, tmp_path):
    """Fitted, adapted, and after more adapt / partial_fit: the same to the bit."""
    X, y, t = _data(cls())
    original = _fit(_small(name, cls), X, y, t)
    loaded = _round_trip(original, monkeypatch, tmp_path)
    assert type(loaded) is type(original)
    assert repr(loaded.get_params()) == repr(original.get_params())
    _assert_same_outputs(original, loaded, X)

    if hasattr(original, "adapt"):
        support, other = t == 0, t == 1
        original.adapt(X[support][:10], y[support][:10])
        adapted = _round_trip(original, monkeypatch, tmp_path)
        _assert_same_outputs(original, adapted, X)
        # The loaded estimator adapts as the original does.
        for est in (original, adapted):
            est.adapt(X[other][:10], y[other][:10])
        _assert_same_outputs(original, adapted, X)

    if hasattr(original, "partial_fit"):
        # Weights and optimiser state go on as if never saved.
        method = "predict_proba" if is_classifier(loaded) else "predict"
        before = _outputs(loaded, X)[method]
        for est in (original, loaded):
            _fit(est, X, y, t, method="partial_fit")
        _assert_same_outputs(original, loaded, X)
        assert loaded.n_iter_ == original.n_iter_
        assert not np.array_equal(_outputs(loaded, X)[method], before)


class Net(nn.Module):
    """A user's module: built by the estimator from its class."""

    def __init__(self, n_features, n_outputs, hidden=8):
        super().__init__()
        self.hidden = hidden
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, X):
        return self.head(self.body(X))


class CountEpochs(Callback):
    """A user's skorch callback."""

    def initialize(self):
        self.count_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.count_ += 1


USER_TYPES = [
    "tests.test_persistence.CountEpochs",
    "tests.test_persistence.Net",
]


def test_custom_classes_need_trust(monkeypatch, tmp_path):
    X, y, t = make_related_regression_tasks(n_tasks=6, random_state=0)
    estimator = MAMLRegressor(
        Net, module_params={"hidden": 6}, max_iter=3, callbacks=[CountEpochs()]
    ).fit(X, y, task_ids=t)
    path = tmp_path / "model.skt"
    sktransfer.save(estimator, path)

    assert sktransfer.get_untrusted_types(path) == USER_TYPES
    with pytest.raises(ValueError, match="not trusted") as info:
        sktransfer.load(path)
    for name in USER_TYPES:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="CountEpochs"):
        sktransfer.load(path, trusted=[Net])

    for trusted in ([Net, CountEpochs], USER_TYPES):
        with no_pickle(monkeypatch):
            loaded = sktransfer.load(path, trusted=trusted)
        assert type(loaded.module_) is Net and loaded.module_.hidden == 6
        assert dict(loaded.net_.callbacks_)["CountEpochs"].count_ == 3
        _assert_same_outputs(estimator, loaded, X)


def _rewrite(path, change):
    """Rewrite the schema of a saved file with ``change(schema)``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    change(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fitted, adapted MAMLRegressor, saved."""
    X, y, t = make_related_regression_tasks(n_tasks=6, random_state=0)
    estimator = MAMLRegressor(max_iter=3, random_state=0).fit(X, y, task_ids=t)
    estimator.adapt(X[:10], y[:10])
    path = tmp_path_factory.mktemp("saved") / "model.skt"
    sktransfer.save(estimator, path)
    return estimator, path, X


@pytest.mark.parametrize(
    "root, untrusted",
    [
        # A call of an arbitrary function, as a crafted pickle would make.
        ({"$": "object", "id": 0, "reduce": "os:system", "args": ["x"]}, "os.system"),
        (
            {
                "$": "object",
                "id": 0,
                "reduce": "subprocess:check_call",
                "args": [{"$": "list", "id": 1, "items": ["true"]}],
            },
            "subprocess.check_call",
        ),
        # A numpy class whose constructor writes files.
        (
            {"$": "object", "id": 0, "call": "numpy:memmap", "args": ["x", "u1", "w+"]},
            "numpy.memmap",
        ),
        ({"$": "function", "path": "subprocess:run"}, "subprocess.run"),
    ],
)
def test_crafted_calls_are_refused(saved, tmp_path, root, untrusted):
    path = tmp_path / "crafted.skt"
    path.write_bytes(saved[1].read_bytes())
    _rewrite(path, lambda schema: schema.update(root=root))
    assert sktransfer.get_untrusted_types(path) == [untrusted]
    with pytest.raises(ValueError, match=untrusted):
        sktransfer.load(path)
    assert not (tmp_path / "x").exists()


def test_trusted_package_cannot_smuggle_other_objects(saved, tmp_path):
    # sktransfer.base imports copy: its name is trusted, copy.deepcopy is not.
    path = tmp_path / "crafted.skt"
    path.write_bytes(saved[1].read_bytes())
    _rewrite(
        path,
        lambda schema: schema.update(
            root={"$": "function", "path": "sktransfer.base:copy.deepcopy"}
        ),
    )
    assert sktransfer.get_untrusted_types(path) == []
    with pytest.raises(ValueError, match="defined elsewhere"):
        sktransfer.load(path)


def _truncated(data):
    return data[: len(data) // 2]


def _other_zip(data):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("model.json", "{}")
    return out.getvalue()


def _damaged_weights(data):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            dst.writestr(name, body[:20] if name.endswith(".safetensors") else body)
    return out.getvalue()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda data: b"", "not a file written by sktransfer.save"),
        (lambda data: b"\x00garbage" * 100, "not a file written by sktransfer.save"),
        (_truncated, "not a file written by sktransfer.save"),
        (_other_zip, "not a file written by sktransfer.save"),
        (_damaged_weights, "damaged"),
        (lambda data: pickle.dumps({"a": 1}), "not a file written by sktransfer.save"),
    ],
    ids=["empty", "garbage", "truncated", "other-zip", "weights", "pickle"],
)
def test_damaged_or_foreign_files(saved, tmp_path, corrupt, message):
    path = tmp_path / "bad.skt"
    path.write_bytes(corrupt(saved[1].read_bytes()))
    with pytest.raises(ValueError, match=message):
        sktransfer.load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(format="skops"), "not a file written by"),
        (lambda s: s.update(format_version=99), "upgrade sktransfer"),
        (lambda s: s["root"].update({"$": "mystery"}), "unknown node kind"),
        (lambda s: s["root"]["state"]["items"][0].append(1), "damaged"),
    ],
    ids=["format", "version", "node", "bad-item"],
)
def test_damaged_schema(saved, tmp_path, change, message):
    path = tmp_path / "bad.skt"
    path.write_bytes(saved[1].read_bytes())
    _rewrite(path, change)
    with pytest.raises(ValueError, match=message):
        sktransfer.load(path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without GPU")
def test_gpu_file_loads_on_cpu(saved, tmp_path):
    """Tensors saved from a GPU come back on the CPU of a machine without one."""
    estimator, source, X = saved
    path = tmp_path / "gpu.skt"
    path.write_bytes(source.read_bytes())

    def on_gpu(node):
        if isinstance(node, dict):
            if node.get("$") == "tensor":
                node["device"] = "cuda:0"
            if node.get("$") == "torch_device":
                node["name"] = "cuda:0"
            for value in node.values():
                on_gpu(value)
        elif isinstance(node, list):
            for value in node:
                on_gpu(value)

    def change(schema):
        on_gpu(schema)
        text = json.dumps(schema)
        assert text.count('"cuda:0"') > 10

    _rewrite(path, change)
    loaded = sktransfer.load(path)
    assert {p.device.type for p in loaded.module_.parameters()} == {"cpu"}
    assert {v.device.type for v in loaded.adapted_params_.values()} == {"cpu"}
    assert torch.device(loaded.net_.device).type == "cpu"
    _assert_same_outputs(estimator, loaded, X)


def test_file_objects_and_pipelines(monkeypatch):
    X, y, t = make_related_regression_tasks(n_tasks=6, random_state=0)
    pipe = make_pipeline(StandardScaler(), MAMLRegressor(max_iter=3, random_state=0))
    pipe.fit(X, y, mamlregressor__task_ids=t)
    buffer = io.BytesIO()
    sktransfer.save(pipe, buffer)
    buffer.seek(0)
    with no_pickle(monkeypatch):
        loaded = sktransfer.load(buffer)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))


class Point(NamedTuple):
    x: float
    y: int


def test_values_round_trip(monkeypatch, tmp_path):
    """Every kind of value an estimator holds comes back equal, with its type."""
    weight = torch.randn(3, 4)
    cyclic = [1]
    cyclic.append(cyclic)
    structured = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))])
    structured["b"] = [[1.5, 2], [3, 4], [5, 6]]
    values = {
        "floats": [0.1, -0.0, float("inf"), float("nan"), 1e-310, 2**70],
        "scalars": [np.float32(0.1), np.int64(-3), np.bool_(True), np.str_("é")],
        "arrays": [
            np.arange(12.0).reshape(3, 4).T,  # Fortran order
            np.array(["a", "bé"]),
            np.array(["x", None, 2], dtype=object),
            np.array(1.5, dtype=np.float16),
            np.zeros((0, 3), dtype=np.uint32),
            np.array([1 + 2j]),
            np.arange(3, dtype=">i4"),
            structured,
        ],
        "tensors": [
            weight,
            weight[1:],  # a view: shares memory with weight
            torch.ones(2, dtype=torch.bfloat16),
            torch.zeros(0, 2, dtype=torch.int64),
            torch.tensor([True, False]),
            nn.Parameter(torch.ones(2), requires_grad=False),
        ],
        "containers": (
            {1: "int key", (1, "a"): "tuple key"},
            {3, 1, 2},
            frozenset({"a"}),
            OrderedDict(b=1, a=2),
            defaultdict(list, a=[1]),
            Point(1.5, 2),
            cyclic,
            b"\x00\xff",
        ),
        "types": [np.float32, torch.float64, torch.device("cpu"), np.dtype("<M8[ns]")],
        "random": [np.random.RandomState(3), np.random.default_rng(4)],
        "torch_random": torch.Generator().manual_seed(5),
        "functions": [np.log, print],
    }
    values["shared"] = values["tensors"][0]
    loaded = _round_trip(values, monkeypatch, tmp_path, trusted=[Point])

    assert loaded["floats"][:3] == [0.1, -0.0, float("inf")]
    assert np.isnan(loaded["floats"][3]) and loaded["floats"][4:] == [1e-310, 2**70]
    assert math.copysign(1, loaded["floats"][1]) == -1
    for a, b in zip(values["scalars"], loaded["scalars"], strict=True):
        assert type(a) is type(b) and a == b
    for a, b in zip(values["arrays"], loaded["arrays"], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.flags.f_contiguous == b.flags.f_contiguous
        np.testing.assert_array_equal(a, b)
        assert b.flags.writeable
    for a, b in zip(values["tensors"], loaded["tensors"], strict=True):
        assert type(a) is type(b) and a.dtype == b.dtype
        assert a.requires_grad == b.requires_grad
        assert torch.equal(a, b)
    assert loaded["shared"] is loaded["tensors"][0]
    assert loaded["containers"][:6] == values["containers"][:6]
    assert [type(c) for c in loaded["containers"]] == [
        type(c) for c in values["containers"]
    ]
    assert loaded["containers"][4].default_factory is list
    assert loaded["containers"][6][1] is loaded["containers"][6]
    assert loaded["containers"][7] == b"\x00\xff"
    assert loaded["types"] == values["types"]
    for a, b in zip(values["random"], loaded["random"], strict=True):
        assert type(a) is type(b)
        np.testing.assert_array_equal(a.random(5), b.random(5))
    assert loaded["functions"] == [np.log, print]
    generator = values["torch_random"]
    expected = torch.rand(3, generator=generator)
    assert torch.equal(torch.rand(3, generator=loaded["torch_random"]), expected)


def test_base_estimator_from_scikit_learn(monkeypatch, tmp_path):
    """Gradient boosting inside: structured arrays, Cython objects, RNG states."""
    X, y, t = make_related_regression_tasks(n_tasks=6, random_state=0)
    estimator = MetaRidgeRegressor(
        base_estimator=HistGradientBoostingRegressor(
            max_iter=5, random_state=np.random.RandomState(0)
        ),
        hidden_layer_sizes=(8,),
        n_components=2,
        max_iter=5,
        random_state=0,
    ).fit(X, y, task_ids=t)
    loaded = _round_trip(estimator, monkeypatch, tmp_path)
    _assert_same_outputs(estimator, loaded, X)
    np.testing.assert_array_equal(
        loaded.base_estimator_.predict(X), estimator.base_estimator_.predict(X)
    )


def test_pickle_keeps_working(saved, monkeypatch, tmp_path):
    estimator, path, X = saved
    for est in (estimator, sktransfer.load(path)):
        _assert_same_outputs(est, pickle.loads(pickle.dumps(est)), X)


def test_unsaveable_parts_are_refused_before_writing(tmp_path):
    X, y, t = make_related_regression_tasks(n_tasks=6, random_state=0)
    module = Net(X.shape[1], 1)
    module.scale = lambda z: 2 * z
    estimator = MAMLRegressor(module, max_iter=2).fit(X, y, task_ids=t)
    path = tmp_path / "model.skt"
    with pytest.raises(TypeError, match="lambda"):
        sktransfer.save(estimator, path)
    assert not path.exists()


def test_clear_error_without_safetensors(saved, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ImportError, match=r"pip install sktransfer\[io\]"):
        sktransfer.save(saved[0], tmp_path / "model.skt")
    with pytest.raises(ImportError, match=r"pip install sktransfer\[io\]"):
        sktransfer.load(saved[1])
