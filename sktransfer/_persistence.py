"""Safe persistence: one file of JSON and safetensors, loaded without pickle.

`save` walks the estimator's object graph as pickle would (``__reduce_ex__``,
``__getstate__``), but writes it as a JSON tree (``schema.json``) whose leaves
are Python scalars and strings, while every torch tensor goes to
``tensors.safetensors`` and every numpy array to ``arrays.safetensors``, all
in one zip file. `load` rebuilds the graph from that tree: shared objects stay
shared (a module's parameters are the optimiser's), so that ``predict``,
``adapt`` and ``partial_fit`` continue exactly where the saved estimator
stood. No pickle runs: classes and functions are imported by name, and only
when trusted (`get_untrusted_types` lists the others), as in ``skops.io``.
"""

import base64
import copyreg
import importlib
import json
import types
import zipfile

import numpy as np
import torch
from skorch import NeuralNet
from torch import nn

_FORMAT = "sktransfer"
_FORMAT_VERSION = 1
_SCHEMA = "schema.json"
_TENSORS = "tensors.safetensors"
_ARRAYS = "arrays.safetensors"
# What a damaged or foreign file raises while it is read.
_DAMAGED = (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError)

# Packages whose classes are trusted by default, to be instantiated (without
# arguments from the file, through ``__new__``, or with them, by a call):
# sktransfer and the engines it is built on, and numpy's random states.
_TRUSTED_PACKAGES = (
    "sktransfer",
    "skorch",
    "sklearn",
    "torch.nn",
    "torch.optim",
    "numpy.random",
)
# Classes kept as values only (a dtype, skorch's data loader class): these too.
_TRUSTED_TYPE_PACKAGES = (*_TRUSTED_PACKAGES, "numpy", "torch.utils.data")
# Packages whose functions are trusted as values (a callback's ``sink``, a
# module's activation); functions called while loading are stricter.
_TRUSTED_FUNCTION_PACKAGES = ("sktransfer", "skorch", "sklearn", "torch.nn")
_TRUSTED_NAMES = {
    f"builtins.{name}"
    for name in "bool bytes complex dict float frozenset int list object print range "
    "set slice str tuple".split()
} | {
    "collections.OrderedDict",
    "collections.defaultdict",
    "functools.partial",
    "torch._C.Generator",
}


def _in_packages(module, packages):
    return any(module == p or module.startswith(p + ".") for p in packages)


def _default_trusted(path, role):
    """Whether ``"module:qualname"`` is trusted without being asked, in ``role``.

    Roles: ``"type"`` (a class kept as a value), ``"new"`` (a class
    instantiated), ``"function"`` (a function kept as a value), ``"ufunc"``
    (a numpy ufunc) and ``"reduce"`` (a function called to rebuild an object:
    only numpy's random-state constructors and the Cython unpickling helpers
    of the trusted packages, which set attributes from data).
    """
    module, _, qualname = path.partition(":")
    if f"{module}.{qualname}" in _TRUSTED_NAMES:
        return role in ("type", "new", "function")
    if role == "type":
        return _in_packages(module, _TRUSTED_TYPE_PACKAGES)
    if role == "new":
        return _in_packages(module, _TRUSTED_PACKAGES)
    if role == "function":
        return _in_packages(module, _TRUSTED_FUNCTION_PACKAGES)
    if role == "ufunc":
        return module == "numpy"
    return _in_packages(module, ("numpy.random._pickle",)) or (
        qualname.startswith("__pyx_unpickle_")
        and _in_packages(module, _TRUSTED_PACKAGES)
    )


def _dotted(path):
    return path.replace(":", ".", 1)


def _trusted_names(trusted):
    """The dotted names in ``trusted``: types, functions or their names."""
    if trusted is None:
        return set()
    if isinstance(trusted, (str, type)) or callable(trusted):
        trusted = [trusted]
    names = set()
    for item in trusted:
        if isinstance(item, str):
            names.add(item)
        elif hasattr(item, "__qualname__") and hasattr(item, "__module__"):
            names.add(f"{item.__module__}.{item.__qualname__}")
        else:
            raise TypeError(
                "trusted must be a list of types, functions or their dotted names "
                f"('package.module.Name'), got {item!r}."
            )
    return names


def _lookup(path):
    """Import ``"module:qualname"`` and check that it is what it says it is."""
    module, _, qualname = path.partition(":")
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"{_dotted(path)!r} is not an importable name.")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", None))
    if getattr(obj, "__module__", None) != module or name != qualname:
        # A trusted package may re-export an untrusted object.
        raise ValueError(
            f"{_dotted(path)!r} names an object defined elsewhere "
            f"({getattr(obj, '__module__', '?')}.{name})."
        )
    return obj


def _dtype_descr(dtype):
    return dtype.descr if dtype.fields is not None else dtype.str


def _dtype_of(descr):
    if isinstance(descr, str):
        return np.dtype(descr)

    def field(entry):
        name, fmt, *shape = entry
        fmt = fmt if isinstance(fmt, str) else [field(f) for f in fmt]
        return (name, fmt, *(tuple(s) for s in shape))

    return np.dtype([field(f) for f in descr])


def _typed(dtype):
    """Whether safetensors stores arrays of ``dtype`` natively."""
    return dtype.isnative and (
        dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8)
    )


class _Writer:
    """Encodes an object graph into a JSON tree, tensors and arrays."""

    def __init__(self):
        self.memo = {}
        self.alive = []  # ids stay unique while the objects are referenced
        self.tensors = {}
        self.arrays = {}

    def encode(self, obj, where):
        if obj is None or type(obj) in (bool, int, float, str):
            return obj
        if type(obj) is bytes:
            return {"$": "bytes", "data": base64.b64encode(obj).decode("ascii")}
        if id(obj) in self.memo:
            return {"$": "ref", "id": self.memo[id(obj)]}
        if type(obj) is tuple:
            return {
                "$": "tuple",
                "items": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)],
            }
        if isinstance(obj, torch.dtype):
            return {"$": "torch_dtype", "name": str(obj).removeprefix("torch.")}
        if isinstance(obj, torch.device):
            return {"$": "torch_device", "name": str(obj)}
        if isinstance(obj, np.dtype):
            return {"$": "dtype", "descr": _dtype_descr(obj)}
        if isinstance(obj, np.generic):
            if obj.dtype.hasobject:
                raise TypeError(f"{where}: numpy object scalars cannot be saved.")
            data = base64.b64encode(np.asarray(obj).tobytes()).decode("ascii")
            return {"$": "scalar", "dtype": _dtype_descr(obj.dtype), "data": data}
        if isinstance(obj, type):
            return {"$": "type", "path": self.path(obj, where)}
        if isinstance(obj, np.ufunc):
            return {"$": "ufunc", "path": f"numpy:{obj.__name__}"}
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
            return {"$": "function", "path": self.path(obj, where)}
        if isinstance(obj, types.MethodType):
            owner = self.encode(obj.__self__, f"{where}.__self__")
            return {"$": "method", "self": owner, "name": obj.__func__.__name__}
        n = len(self.memo)
        self.memo[id(obj)] = n
        self.alive.append(obj)
        if type(obj) is list:
            node = {"$": "list", "id": n}
            node["items"] = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
            return node
        if type(obj) is dict:
            node = {"$": "dict", "id": n}
            node["items"] = self.pairs(obj.items(), where)
            return node
        if type(obj) in (set, frozenset):
            items = [self.encode(v, f"{where} item") for v in obj]
            return {"$": type(obj).__name__, "id": n, "items": items}
        if isinstance(obj, torch.Tensor):
            return self.tensor(obj, n, where)
        if type(obj) is np.ndarray:
            return self.array(obj, n, where)
        return self.object(obj, n, where)

    def pairs(self, items, where):
        return [
            [
                self.encode(k, f"{where} key"),
                self.encode(v, f"{where}[{k!r}]" if type(k) in (str, int) else where),
            ]
            for k, v in items
        ]

    def path(self, obj, where):
        """``"module:qualname"`` of a class or function, checked importable."""
        path = f"{obj.__module__}:{obj.__qualname__}"
        try:
            found = _lookup(path)
        except Exception:  # noqa: BLE001 - any failure means "not by name"
            found = None
        if found is not obj:
            raise TypeError(
                f"{where}: {_dotted(path)} cannot be saved by name (a lambda, or "
                "a class or function defined inside a function?); define it at "
                "the top level of a module."
            )
        return path

    def tensor(self, obj, n, where):
        if type(obj) not in (torch.Tensor, nn.Parameter) or obj.layout != torch.strided:
            raise TypeError(
                f"{where}: only dense torch tensors and parameters can be saved, "
                f"got {type(obj).__name__} with layout {obj.layout}."
            )
        key = f"t{n}"
        # A copy on the CPU: safetensors refuses tensors that share memory.
        self.tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {
            "$": "tensor",
            "id": n,
            "key": key,
            "device": str(obj.device),
            "parameter": isinstance(obj, nn.Parameter),
            "requires_grad": obj.requires_grad,
        }

    def array(self, obj, n, where):
        shape = list(obj.shape)
        if obj.dtype.hasobject:
            if obj.dtype != object:
                raise TypeError(
                    f"{where}: structured arrays of objects cannot be saved."
                )
            items = [self.encode(v, f"{where} item") for v in obj.reshape(-1)]
            return {"$": "objects", "id": n, "shape": shape, "items": items}
        key = f"a{n}"
        order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
        data = np.ascontiguousarray(obj)
        typed = _typed(obj.dtype)
        self.arrays[key] = data if typed else np.frombuffer(data.tobytes(), np.uint8)
        return {
            "$": "array",
            "id": n,
            "key": key,
            "dtype": _dtype_descr(obj.dtype),
            "shape": shape,
            "order": order,
            "raw": not typed,
        }

    def object(self, obj, n, where):
        """Any other object, through the reduction pickle would use."""
        node = {"$": "object", "id": n}
        if isinstance(obj, NeuralNet):
            # skorch's own __getstate__ pickles the modules and the optimiser
            # with torch.save: keep them as objects (tensors) instead.
            func, args, state = copyreg.__newobj__, (type(obj),), dict(obj.__dict__)
            listitems = dictitems = None
            node["raw"] = True
        else:
            try:
                reduced = obj.__reduce_ex__(4)
            except Exception as exc:  # noqa: BLE001 - whatever pickle refuses
                raise TypeError(
                    f"{where}: a {type(obj).__name__} cannot be saved: {exc}"
                ) from exc
            if isinstance(reduced, str):
                raise TypeError(
                    f"{where}: a {type(obj).__name__} is a global; it cannot be saved."
                )
            func, args, state, listitems, dictitems = (tuple(reduced) + (None,) * 5)[:5]
        kwargs = None
        if func is copyreg.__newobj_ex__:
            func, (cls, args, kwargs) = copyreg.__newobj__, args
            args = (cls, *args)
        if func is copyreg.__newobj__:
            node["new"] = self.path(args[0], where)
            args = args[1:]
        elif isinstance(func, type):
            node["call"] = self.path(func, where)
        else:
            node["reduce"] = self.path(func, where)
        node["args"] = [self.encode(a, f"{where} argument") for a in args]
        if kwargs:
            node["kwargs"] = self.encode(dict(kwargs), f"{where} argument")
        if state is not None:
            node["state"] = self.encode(state, f"{where}")
        if listitems is not None:
            node["listitems"] = [
                self.encode(v, f"{where}[{i}]") for i, v in enumerate(listitems)
            ]
        if dictitems is not None:
            node["dictitems"] = self.pairs(dictitems, where)
        return node


def _references(node):
    """Every ``(path, role)`` a JSON tree refers to."""
    if isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict):
        kind = node.get("$")
        if kind in ("type", "function", "ufunc"):
            yield node["path"], kind
        elif kind == "object":
            for key, role in (("new", "new"), ("call", "new"), ("reduce", "reduce")):
                if key in node:
                    yield node[key], role
        for value in node.values():
            if isinstance(value, (list, dict)):
                yield from _references(value)


class _Reader:
    """Rebuilds an object graph from what `_Writer` wrote."""

    def __init__(self, tensors, arrays):
        self.memo = {}
        self.tensors = tensors
        self.arrays = arrays
        self.devices = {}

    def device(self, name):
        """The saved device when this machine has it, else the CPU."""
        if name not in self.devices:
            device = torch.device(name)
            available = device.type == "cpu" or (
                device.type == "cuda"
                and torch.cuda.is_available()
                and (device.index or 0) < torch.cuda.device_count()
            )
            self.devices[name] = device if available else torch.device("cpu")
        return self.devices[name]

    def decode(self, node):
        if not isinstance(node, dict):
            if node is None or type(node) in (bool, int, float, str):
                return node
            raise ValueError(f"unexpected node {node!r}")
        kind = node["$"]
        decode = getattr(self, f"decode_{kind}", None)
        if decode is None:
            raise ValueError(f"unknown node kind {kind!r}")
        return decode(node)

    def keep(self, node, obj):
        self.memo[node["id"]] = obj
        return obj

    def decode_ref(self, node):
        return self.memo[node["id"]]

    def decode_bytes(self, node):
        return base64.b64decode(node["data"], validate=True)

    def decode_tuple(self, node):
        return tuple(self.decode(v) for v in node["items"])

    def decode_list(self, node):
        out = self.keep(node, [])
        out.extend(self.decode(v) for v in node["items"])
        return out

    def decode_dict(self, node):
        out = self.keep(node, {})
        for key, value in node["items"]:
            out[self.decode(key)] = self.decode(value)
        return out

    def decode_set(self, node):
        out = self.keep(node, set())
        out.update(self.decode(v) for v in node["items"])
        return out

    def decode_frozenset(self, node):
        return self.keep(node, frozenset(self.decode(v) for v in node["items"]))

    def decode_torch_dtype(self, node):
        dtype = getattr(torch, node["name"])
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"{node['name']!r} is not a torch dtype")
        return dtype

    def decode_torch_device(self, node):
        return self.device(node["name"])

    def decode_dtype(self, node):
        return _dtype_of(node["descr"])

    def decode_scalar(self, node):
        data = base64.b64decode(node["data"], validate=True)
        return np.frombuffer(data, dtype=_dtype_of(node["dtype"])).reshape(())[()]

    def decode_type(self, node):
        obj = _lookup(node["path"])
        if not isinstance(obj, type):
            raise ValueError(f"{_dotted(node['path'])} is not a class")
        return obj

    def decode_function(self, node):
        obj = _lookup(node["path"])
        if isinstance(obj, type) or not callable(obj):
            raise ValueError(f"{_dotted(node['path'])} is not a function")
        return obj

    def decode_ufunc(self, node):
        obj = _lookup(node["path"])
        if not isinstance(obj, np.ufunc):
            raise ValueError(f"{_dotted(node['path'])} is not a numpy ufunc")
        return obj

    def decode_method(self, node):
        name = node["name"]
        method = getattr(self.decode(node["self"]), name, None)
        if name.startswith("__") or not isinstance(method, types.MethodType):
            raise ValueError(f"{name!r} is not a method")
        return method

    def decode_tensor(self, node):
        # A copy: safetensors' tensors view a read-only buffer.
        tensor = self.tensors[node["key"]].clone().to(self.device(node["device"]))
        if node["parameter"]:
            tensor = nn.Parameter(tensor, requires_grad=node["requires_grad"])
        elif node["requires_grad"]:
            tensor.requires_grad_()
        return self.keep(node, tensor)

    def decode_array(self, node):
        dtype = _dtype_of(node["dtype"])
        data = self.arrays[node["key"]]
        if node["raw"]:
            data = np.frombuffer(data.tobytes(), dtype=dtype)
        elif data.dtype != dtype:
            raise ValueError(f"array {node['key']} is {data.dtype}, not {dtype}")
        out = np.array(data.reshape(node["shape"]), order=node["order"], copy=True)
        return self.keep(node, out)

    def decode_objects(self, node):
        out = self.keep(node, np.empty(len(node["items"]), dtype=object))
        for i, item in enumerate(node["items"]):
            out[i] = self.decode(item)
        return out.reshape(node["shape"])

    def decode_object(self, node):
        args = [self.decode(a) for a in node["args"]]
        if "new" in node:
            cls = self.decode_type({"path": node["new"]})
            kwargs = self.decode(node["kwargs"]) if "kwargs" in node else {}
            obj = cls.__new__(cls, *args, **kwargs)
        elif "call" in node:
            obj = self.decode_type({"path": node["call"]})(*args)
        else:
            obj = self.decode_function({"path": node["reduce"]})(*args)
        self.keep(node, obj)
        if "state" in node:
            state = self.decode(node["state"])
            if node.get("raw"):
                obj.__dict__.update(state)
            elif hasattr(obj, "__setstate__"):
                obj.__setstate__(state)
            else:
                if isinstance(state, tuple) and len(state) == 2:
                    state, slots = state
                    for name, value in (slots or {}).items():
                        setattr(obj, name, value)
                if state:
                    obj.__dict__.update(state)
        for item in node.get("listitems", ()):
            obj.append(self.decode(item))
        for key, value in node.get("dictitems", ()):
            obj[self.decode(key)] = self.decode(value)
        if isinstance(obj, NeuralNet) and isinstance(obj.device, str):
            # As skorch's unpickling does: a GPU this machine lacks becomes the CPU.
            obj.device = str(self.device(obj.device))
        return obj


def _safetensors():
    try:
        import safetensors.numpy
        import safetensors.torch
    except ImportError as exc:
        raise ImportError(
            "sktransfer.save and sktransfer.load need the safetensors package: "
            "pip install sktransfer[io] (or pip install safetensors)."
        ) from exc
    return safetensors


def save(estimator, file):
    """Save an estimator to one file that `load` reads without pickle.

    The file is a zip archive: the estimator's parameters and fitted
    attributes as JSON (``schema.json``), its torch tensors (network weights,
    adapted parameters, optimiser state) in ``tensors.safetensors`` and its
    numpy arrays in ``arrays.safetensors``. Tensors are written from the CPU,
    with the device they were on, so that a model trained on a GPU loads on a
    machine without one. Needs the ``safetensors`` package
    (``pip install sktransfer[io]``).

    Parameters
    ----------
    estimator : object
        The estimator to save, fitted or not, adapted or not; also a
        `~sklearn.pipeline.Pipeline` or any object made of classes,
        functions, containers, numpy arrays and torch tensors.
    file : str, path-like or file-like object
        Where to write: a path, or a binary file object open for writing.

    Raises
    ------
    TypeError
        If part of the estimator cannot be saved by name: a lambda, a class or
        function defined inside a function, or an object pickle refuses.
        Nothing is written then.

    See Also
    --------
    load : Read the file back.
    get_untrusted_types : The classes and functions `load` would not trust.

    Examples
    --------
    >>> import io
    >>> import sktransfer
    >>> from sktransfer import MetaRidgeRegressor
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=20, random_state=0)
    >>> est = MetaRidgeRegressor(k_shot=5, max_iter=50, random_state=0)
    >>> est = est.fit(X, y, task_ids=t)
    >>> file = io.BytesIO()
    >>> sktransfer.save(est, file)
    >>> loaded = sktransfer.load(io.BytesIO(file.getvalue()))
    >>> bool((loaded.predict(X[:5]) == est.predict(X[:5])).all())
    True
    """
    st = _safetensors()
    import sklearn
    import skorch

    import sktransfer

    writer = _Writer()
    root = writer.encode(estimator, type(estimator).__name__)
    schema = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "versions": {
            "sktransfer": sktransfer.__version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "skorch": skorch.__version__,
            "numpy": np.__version__,
        },
        "references": sorted({_dotted(p) for p, _ in _references(root)}),
        "root": root,
    }
    tensors = st.torch.save(writer.tensors)
    arrays = st.numpy.save(writer.arrays)
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr(_SCHEMA, json.dumps(schema), zipfile.ZIP_DEFLATED)
        archive.writestr(_TENSORS, tensors)
        archive.writestr(_ARRAYS, arrays)


def _read(file):
    """The schema and the raw members of a file written by `save`."""
    try:
        with zipfile.ZipFile(file) as archive:
            schema = json.loads(archive.read(_SCHEMA))
            tensors = archive.read(_TENSORS)
            arrays = archive.read(_ARRAYS)
    except (zipfile.BadZipFile, EOFError, OSError, *_DAMAGED) as exc:
        raise ValueError(
            f"{_name(file)} is not a file written by sktransfer.save "
            f"(or it is damaged): {exc}"
        ) from exc
    if not isinstance(schema, dict) or schema.get("format") != _FORMAT:
        raise ValueError(f"{_name(file)} is not a file written by sktransfer.save.")
    version = schema.get("format_version")
    if not isinstance(version, int) or version > _FORMAT_VERSION:
        raise ValueError(
            f"{_name(file)} has format version {version!r}; this sktransfer reads "
            f"up to version {_FORMAT_VERSION}: upgrade sktransfer."
        )
    return schema, tensors, arrays


def _name(file):
    return (
        repr(str(file))
        if isinstance(file, (str, bytes)) or hasattr(file, "__fspath__")
        else "The file"
    )


def _untrusted(schema, file):
    try:
        refs = set(_references(schema["root"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{_name(file)} is damaged: {exc}") from exc
    return {_dotted(path) for path, role in refs if not _default_trusted(path, role)}


def get_untrusted_types(file):
    """List the classes and functions in a saved file that `load` won't trust.

    Trusted by default: the classes of sktransfer, skorch, scikit-learn,
    ``torch.nn`` (built-in layers) and ``torch.optim``, numpy's types and
    random states, the functions of sktransfer, skorch, scikit-learn and
    ``torch.nn``, numpy's ufuncs and a few builtins (containers, ``print``).
    Anything else, such as a custom ``nn.Module`` class passed as
    ``module=``, a callback or a scikit-learn estimator from another package,
    is listed here and must be passed to `load` as ``trusted`` to be
    imported.

    Parameters
    ----------
    file : str, path-like or file-like object
        A file written by `save`.

    Returns
    -------
    untrusted : list of str
        Dotted names (``"package.module.Name"``), sorted.

    See Also
    --------
    load : Read the file, trusting what you name.
    """
    schema, _, _ = _read(file)
    return sorted(_untrusted(schema, file))


def load(file, trusted=None):
    """Load an estimator saved by `save`, without executing any pickle.

    Classes and functions are imported by their dotted names only when they
    are trusted: sktransfer's own, torch's built-in layers and optimisers,
    skorch's and scikit-learn's are trusted by default (see
    `get_untrusted_types`); any other, such as a custom ``nn.Module`` class,
    must be named in ``trusted``, since importing it runs its code. Tensors go
    back to the device they were saved from, or to the CPU when this machine
    does not have it. Needs the ``safetensors`` package
    (``pip install sktransfer[io]``).

    Parameters
    ----------
    file : str, path-like or file-like object
        A file written by `save`: a path, or a binary file object.
    trusted : list of (type, function or str), default=None
        Classes and functions to trust beyond the defaults, as objects or
        dotted names (``"mypackage.models.Net"``), for instance the output
        of `get_untrusted_types` after checking it.

    Returns
    -------
    estimator : object
        The estimator as it was saved: it predicts the same to the bit, and
        `adapt` and `partial_fit` go on from the same weights and optimiser
        state.

    Raises
    ------
    ValueError
        If the file holds untrusted classes or functions (they are listed),
        is not a file written by `save`, or is damaged.

    See Also
    --------
    save : Write the file.
    get_untrusted_types : The names that need ``trusted``.

    Examples
    --------
    >>> import io
    >>> import sktransfer
    >>> from sktransfer import MAMLRegressor
    >>> from sktransfer.datasets import make_sinusoid_tasks
    >>> X, y, t = make_sinusoid_tasks(n_tasks=20, random_state=0)
    >>> est = MAMLRegressor(max_iter=20, random_state=0).fit(X, y, task_ids=t)
    >>> file = io.BytesIO()
    >>> sktransfer.save(est, file)
    >>> sktransfer.get_untrusted_types(io.BytesIO(file.getvalue()))
    []
    >>> loaded = sktransfer.load(io.BytesIO(file.getvalue()))
    >>> loaded.adapt(X[:10], y[:10]).predict(X[10:12]).shape
    (2,)
    """
    names = _trusted_names(trusted)
    st = _safetensors()
    schema, tensors, arrays = _read(file)
    untrusted = sorted(_untrusted(schema, file) - names)
    if untrusted:
        raise ValueError(
            f"{_name(file)} holds classes or functions that are not trusted by "
            f"default: {untrusted}. Loading imports them, which runs their code: "
            "if you trust the file, pass them to load as trusted=[...]."
        )
    try:
        reader = _Reader(st.torch.load(tensors), st.numpy.load(arrays))
        return reader.decode(schema["root"])
    except (st.SafetensorError, *_DAMAGED) as exc:
        raise ValueError(
            f"{_name(file)} is damaged, or was written by an incompatible version "
            f"(versions at save: {schema.get('versions')}): {exc}"
        ) from exc
