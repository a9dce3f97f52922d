"""Saving and loading estimators without pickle: a JSON description plus tensors in safetensors.

A file written by :func:`save` is a `safetensors <https://github.com/huggingface/safetensors>`_
file. Its header holds one JSON document (under the metadata key ``"skrec"``) that records
the skrec version, the file format version and the estimator: its class (by its public
name), its parameters and its fitted attributes. Every tensor, ``numpy`` array and the parts
of every ``scipy.sparse`` matrix are stored as tensors of the file, which the document refers
to by key, and a SHA-256 digest of the tensor data detects corruption.

``nn.Module`` attributes are described structurally, the way ``pickle`` describes an object,
but only with data: the module's class (which must be a module class of ``torch.nn`` or of
skrec), its plain attributes (numbers, strings, tuples, ...), its parameters and buffers, and
its sub-modules. Loading builds an empty instance of the class and restores that state
without running code from the file, so a new model's module needs nothing written for it.

Loading never unpickles, never imports a name taken from the file and only creates objects
of a fixed set of types, so a file from an untrusted source cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ._torch import resolve_device
from .base import BaseRecommender, all_estimators
from .utils.validation import raise_invalid

__all__ = ["save", "load", "FORMAT_VERSION"]

FORMAT_VERSION = 1
"""Version of the file layout; a file of a newer version is refused with an upgrade hint."""

_HEADER_KEY = "skrec"
_SPARSE_PARTS = {"csr": ("data", "indices", "indptr"), "csc": ("data", "indices", "indptr"),
                 "coo": ("data", "row", "col")}
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
_MODULE_INTERNALS = frozenset(vars(nn.Module()))  # what nn.Module.__init__ sets
_MODULE_DATA = ("training", "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set")


class _Unreadable(ValueError):
    """A file whose content does not describe an estimator (the caller adds the path)."""


def _check(condition, message):
    if not condition:
        raise _Unreadable(message)


def _device(text):
    """``torch.device(text)`` for a device string read from a file."""
    try:
        return torch.device(text)
    except (RuntimeError, TypeError) as exc:
        raise _Unreadable(f"invalid device {text!r}") from exc


def _estimator_classes():
    """The registered estimators by public name: the only classes :func:`load` creates."""
    return {cls.__name__: cls for cls in all_estimators()}


def _module_classes():
    """Module classes :func:`load` may rebuild: the layers of ``torch.nn`` and skrec's modules.

    Found in the namespaces of ``torch.nn`` and of skrec's already imported modules; nothing
    is imported.
    """
    namespaces = [torch.nn] + [m for name, m in list(sys.modules.items())
                               if m is not None and (name == "skrec" or name.startswith("skrec."))]
    return {f"{obj.__module__}.{obj.__qualname__}": obj for ns in namespaces for obj in list(vars(ns).values())
            if isinstance(obj, type) and issubclass(obj, nn.Module)
            and obj.__module__.startswith(("torch.nn.modules.", "skrec."))}


def _tensor_digest(tensors):
    """SHA-256 over the keys, dtypes, shapes and bytes of ``tensors`` (CPU, contiguous)."""
    digest = hashlib.sha256()
    for key in sorted(tensors, key=int):
        t = tensors[key]
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


# ------------------------------------------------------------------------------- writing
class _Writer:
    """Turns an estimator into a JSON-able document and a ``{key: tensor}`` dict."""

    def __init__(self):
        self.tensors = {}
        self.memo = {}  # id(object) -> its number: an object met again is written as a reference
        self.alive = []  # keeps the objects of ``memo`` alive, so that their ids stay unique
        self.storages = set()
        self.module_classes = _module_classes()

    def _remember(self, obj):
        self.memo[id(obj)] = n = len(self.memo)
        self.alive.append(obj)
        return n

    def _tensor(self, t, where):
        if t.layout != torch.strided:
            raise TypeError(f"Cannot save {where}: a {t.layout} tensor (only dense tensors can be saved).")
        n = self._remember(t)
        data = t.detach().to("cpu").contiguous()
        if data.numel() and data.untyped_storage().data_ptr() in self.storages:
            data = data.clone()  # safetensors stores each storage once
        if data.numel():
            self.storages.add(data.untyped_storage().data_ptr())
        self.tensors[str(n)] = data
        out = {"id": n}
        if isinstance(t, nn.Parameter):
            out["parameter"] = True
        if t.requires_grad:
            out["requires_grad"] = True
        return {"$tensor": out}

    def _array(self, a, where):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"Cannot save {where}: a numpy array of dtype {a.dtype} (only boolean, integer "
                            "and floating-point arrays can be saved).")
        n = self._remember(a)
        self.tensors[str(n)] = torch.from_numpy(np.ascontiguousarray(a).copy())
        return {"$ndarray": {"id": n}}

    def encode(self, value, where):
        if value is None or type(value) in (bool, int, float, str):
            return value
        if id(value) in self.memo:
            return {"$ref": self.memo[id(value)]}
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {"$tuple": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) is dict:
            if all(type(k) is str and not k.startswith("$") for k in value):
                return {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}
            return {"$dict": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                              for k, v in value.items()]}
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return {"$scalar": [value.dtype.name, value.item()]}
        if isinstance(value, torch.Tensor):
            return self._tensor(value, where)
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if sp.issparse(value) and value.format in _SPARSE_PARTS:
            parts = {p: self.encode(getattr(value, p), f"{where}.{p}") for p in _SPARSE_PARTS[value.format]}
            return {"$sparse": dict(parts, format=value.format, shape=list(value.shape),
                                    array=isinstance(value, sp.sparray))}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, torch.dtype):
            return {"$torch_dtype": str(value).removeprefix("torch.")}
        if type(value) is np.random.RandomState:
            return {"$random_state": self.encode(value.get_state(), f"{where}.get_state()")}
        if type(value) is np.random.Generator and type(value.bit_generator).__name__ in _BIT_GENERATORS:
            return {"$generator": self.encode(value.bit_generator.state, f"{where}.bit_generator.state")}
        if isinstance(value, nn.Module):
            return self._module(value, where)
        if isinstance(value, BaseRecommender):
            return self._estimator(value, where)
        raise TypeError(f"Cannot save {where}: values of type {type(value).__module__}.{type(value).__qualname__} "
                        "have no safe representation (pickle or joblib can store them, but they run code "
                        "on load).")

    def _module(self, module, where):
        cls = type(module)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if self.module_classes.get(name) is not cls:
            raise TypeError(f"Cannot save {where}: its class {name} is neither a torch.nn module nor a "
                            "module class defined in skrec.")
        state = vars(module)
        for key in _MODULE_INTERNALS.difference(_MODULE_DATA):
            if state.get(key):
                raise TypeError(f"Cannot save {where}: it has hooks registered ({key}), which cannot be saved.")
        n = self._remember(module)
        return {"$module": {
            "id": n, "class": name, "training": module.training,
            "attrs": {k: self.encode(v, f"{where}.{k}") for k, v in state.items() if k not in _MODULE_INTERNALS},
            "parameters": {k: self.encode(v, f"{where}.{k}") for k, v in module._parameters.items()},
            "buffers": {k: self.encode(v, f"{where}.{k}") for k, v in module._buffers.items()},
            "non_persistent": sorted(module._non_persistent_buffers_set),
            "modules": {k: self.encode(v, f"{where}.{k}") for k, v in module._modules.items()},
        }}

    def _estimator(self, est, where):
        cls = type(est)
        if _estimator_classes().get(cls.__name__) is not cls:
            raise TypeError(f"Cannot save {where}: {cls.__qualname__} is not a registered skrec estimator "
                            "(pickle or joblib can store it, but they run code on load).")
        n = self._remember(est)
        state = est.__getstate__()  # CPU copies of tensors and modules, no optimizer or generator
        self.alive.append(state)
        return {"$estimator": {"id": n, "class": cls.__name__,
                               "state": {k: self.encode(v, f"{where}.{k}") for k, v in state.items()}}}


# ------------------------------------------------------------------------------- reading
class _Reader:
    """Rebuilds the objects a document describes; only the types :class:`_Writer` writes."""

    def __init__(self, tensors, device):
        self.tensors, self.device, self.memo = tensors, device, {}
        self.module_classes = _module_classes()

    def _tensor_at(self, spec):
        _check(isinstance(spec, dict) and type(spec.get("id")) is int, f"invalid tensor reference {spec!r}")
        key = str(spec["id"])
        _check(key in self.tensors, f"the tensor {key} it refers to is missing")
        return spec["id"], self.tensors[key]

    def decode(self, value):
        if value is None or type(value) in (bool, int, float, str):
            return value
        if type(value) is list:
            return [self.decode(v) for v in value]
        _check(type(value) is dict, f"unexpected JSON value {value!r}")
        if len(value) != 1 or not next(iter(value)).startswith("$"):
            return {k: self.decode(v) for k, v in value.items()}
        (tag, body), = value.items()
        if tag == "$tuple":
            _check(type(body) is list, "invalid $tuple")
            return tuple(self.decode(v) for v in body)
        if tag == "$dict":
            _check(type(body) is list and all(type(kv) is list and len(kv) == 2 for kv in body), "invalid $dict")
            return {self.decode(k): self.decode(v) for k, v in body}
        if tag == "$ref":
            _check(type(body) is int and body in self.memo, f"a reference to an unknown object {body!r}")
            return self.memo[body]
        if tag == "$scalar":
            _check(type(body) is list and len(body) == 2 and type(body[0]) is str, "invalid $scalar")
            dtype = np.dtype(body[0])
            _check(dtype.kind in "biuf" and type(body[1]) in (bool, int, float), "invalid $scalar")
            return dtype.type(body[1])
        if tag == "$tensor":
            n, t = self._tensor_at(body)
            if body.get("parameter"):
                t = nn.Parameter(t, requires_grad=bool(body.get("requires_grad")))
            elif body.get("requires_grad"):
                t = t.requires_grad_(True)
            self.memo[n] = t
            return t
        if tag == "$ndarray":
            n, t = self._tensor_at(body)
            self.memo[n] = a = t.numpy()
            return a
        if tag == "$sparse":
            return self._sparse(body)
        if tag == "$device":
            _check(type(body) is str, "invalid $device")
            return _device(body)
        if tag == "$torch_dtype":
            dtype = getattr(torch, body, None) if type(body) is str else None
            _check(isinstance(dtype, torch.dtype), f"unknown torch dtype {body!r}")
            return dtype
        if tag == "$random_state":
            rs = np.random.RandomState()
            rs.set_state(self.decode(body))
            return rs
        if tag == "$generator":
            state = self.decode(body)
            name = state.get("bit_generator") if type(state) is dict else None
            _check(name in _BIT_GENERATORS, f"unknown bit generator {name!r}")
            bits = getattr(np.random, name)()
            bits.state = state
            return np.random.Generator(bits)
        if tag == "$module":
            return self._module(body)
        if tag == "$estimator":
            return self._estimator(body)
        raise _Unreadable(f"unknown value type {tag!r} (skrec writes no such value)")

    def _sparse(self, body):
        _check(type(body) is dict and body.get("format") in _SPARSE_PARTS, "invalid $sparse")
        fmt = body["format"]
        parts = [self.decode(body.get(p)) for p in _SPARSE_PARTS[fmt]]
        _check(all(isinstance(p, np.ndarray) for p in parts), "invalid $sparse")
        shape = tuple(body.get("shape", ()))
        cls = {"csr": (sp.csr_matrix, sp.csr_array), "csc": (sp.csc_matrix, sp.csc_array),
               "coo": (sp.coo_matrix, sp.coo_array)}[fmt][bool(body.get("array"))]
        if fmt == "coo":
            return cls((parts[0], (parts[1], parts[2])), shape=shape)
        return cls(tuple(parts), shape=shape)

    def _module(self, body):
        _check(type(body) is dict and type(body.get("id")) is int, "invalid $module")
        name = body.get("class")
        cls = self.module_classes.get(name) if type(name) is str else None
        _check(cls is not None, f"the module class {name!r} is neither a torch.nn module nor a module class "
                                "defined in skrec")
        module = cls.__new__(cls)
        nn.Module.__init__(module)  # the internals (hook dicts) only; cls.__init__ is not run
        self.memo[body["id"]] = module
        sections = {k: body.get(k) for k in ("attrs", "parameters", "buffers", "modules")}
        _check(all(type(s) is dict for s in sections.values()), f"invalid description of a {name} module")
        attrs = {k: self.decode(v) for k, v in sections["attrs"].items()}
        _check(all(k.isidentifier() and not k.startswith("__") and k not in _MODULE_INTERNALS for k in attrs),
               f"invalid attribute names of a {name} module")
        params = {k: self.decode(v) for k, v in sections["parameters"].items()}
        buffers = {k: self.decode(v) for k, v in sections["buffers"].items()}
        children = {k: self.decode(v) for k, v in sections["modules"].items()}
        _check(all(v is None or isinstance(v, nn.Parameter) for v in params.values())
               and all(v is None or isinstance(v, torch.Tensor) for v in buffers.values())
               and all(v is None or isinstance(v, nn.Module) for v in children.values()),
               f"invalid parameters, buffers or sub-modules of a {name} module")
        non_persistent = body.get("non_persistent", [])
        _check(type(non_persistent) is list and set(non_persistent) <= set(buffers),
               f"invalid buffer names of a {name} module")
        module.__setstate__(dict(attrs, training=bool(body.get("training")), _parameters=params,
                                 _buffers=buffers, _modules=children,
                                 _non_persistent_buffers_set=set(non_persistent)))
        return module

    def _estimator(self, body):
        _check(type(body) is dict and type(body.get("id")) is int and type(body.get("state")) is dict,
               "invalid $estimator")
        name = body.get("class")
        cls = _estimator_classes().get(name) if type(name) is str else None
        _check(cls is not None, f"{name!r} is not a registered skrec estimator")
        est = cls.__new__(cls)
        self.memo[body["id"]] = est
        state = {k: self.decode(v) for k, v in body["state"].items()}
        _check(all(type(k) is str and k.isidentifier() and not k.startswith("__") for k in state),
               f"invalid attribute names of a {name}")
        missing = [p for p in cls._get_param_names() if p not in state]
        _check(not missing, f"the {name} has no value for the parameters {missing}")
        if self.device is not None and "device_" in state:
            state["device_"] = str(self.device)
        _check(state.get("device_") is None or type(state["device_"]) is str, f"invalid device_ of a {name}")
        if state.get("device_") is not None:
            _device(state["device_"])
        est.__setstate__(state)  # the base moves tensors to device_ (or to the CPU when it is absent)
        return est


# ---------------------------------------------------------------------------- public API
def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise_invalid("path", "a str or os.PathLike file path", path, TypeError)
    return os.fspath(path)


def save(estimator, path):
    """Write an estimator to ``path`` in a format that is safe to load: JSON plus safetensors.

    The file records the skrec version, the file format version (:data:`FORMAT_VERSION`),
    the estimator's class, its parameters (``get_params``) and, when it is fitted, every
    fitted attribute: the module's tensors, statistics, ``history_``, the optimizer state a
    ``warm_start`` fit continues from, nested estimators. Tensors are written from CPU
    copies, so a model fitted on a GPU loads on a machine without one. An unfitted estimator
    is saved too (its parameters only). ``estimator`` is not changed.

    The file is a valid `safetensors <https://github.com/huggingface/safetensors>`_ file;
    it is written to a temporary file beside ``path`` and then renamed, so an interrupted
    save never leaves a truncated file at ``path``.

    Parameters
    ----------
    estimator : skrec estimator
        An instance of a registered skrec estimator class (:func:`skrec.base.all_estimators`),
        fitted or not.
    path : str or os.PathLike
        Where to write (replaced if it exists), e.g. ``"model.safetensors"``.

    Raises
    ------
    TypeError
        When ``estimator`` is not a registered skrec estimator, or holds a value that has no
        safe representation (such a model can still be pickled).

    See Also
    --------
    load : Read the file back.

    Notes
    -----
    ``pickle`` and ``joblib`` keep working for every estimator (scikit-learn's tools rely on
    them), but unpickling a file **executes code** that the file names: never unpickle a
    file from a source you do not trust. A file written by :func:`save` contains data only.

    Examples
    --------
    >>> import os, tempfile
    >>> import skrec
    >>> from skrec import MFRegressor
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(100, 40, kind="explicit", density=0.2, random_state=0).X
    >>> model = MFRegressor(n_factors=4, max_iter=5, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "mf.safetensors")
    >>> skrec.save(model, path)
    >>> same = skrec.load(path, expected=MFRegressor)
    >>> bool((same.predict(X[:3]) == model.predict(X[:3])).all())
    True
    """
    from safetensors.torch import save_file

    from . import __version__

    if not (isinstance(estimator, BaseRecommender) and _estimator_classes().get(type(estimator).__name__)
            is type(estimator)):
        raise_invalid("estimator", "an instance of a registered skrec estimator class", estimator, TypeError)
    path = _check_path(path)
    writer = _Writer()
    described = writer.encode(estimator, type(estimator).__name__)
    doc = {"format": "skrec", "format_version": FORMAT_VERSION, "skrec_version": __version__,
           "torch_version": torch.__version__, "estimator": described,
           "sha256": _tensor_digest(writer.tensors)}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(writer.tensors, tmp, metadata={_HEADER_KEY: json.dumps(doc)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _open(path):
    """A ``safe_open`` handle on ``path`` (a context manager); every failure names ``path``."""
    from safetensors import SafetensorError, safe_open

    with open(path, "rb"):  # missing file, a folder, no permission: the OSError names the path
        pass
    try:
        return safe_open(path, framework="pt", device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a file written by skrec.save (it is not a valid safetensors file, "
                         f"or it is truncated or corrupt): {exc}") from exc


def _header(path, handle, expected):
    """The JSON document of the file, checked for its format version and estimator class."""
    from . import __version__

    text = (handle.metadata() or {}).get(_HEADER_KEY)
    if text is None:
        raise ValueError(f"{path} is a safetensors file without skrec's header; it was not written by skrec.save.")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path} is corrupt: its skrec header is not valid JSON ({exc}).") from exc
    if not (type(doc) is dict and doc.get("format") == "skrec" and type(doc.get("format_version")) is int
            and doc["format_version"] >= 1):
        raise ValueError(f"{path} is corrupt: its skrec header has no valid format version.")
    written_by = doc.get("skrec_version")
    if doc["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path} was written by skrec {written_by} in file format version "
                         f"{doc['format_version']}; this skrec ({__version__}) reads format versions up to "
                         f"{FORMAT_VERSION}. Upgrade skrec to load it.")
    top = doc.get("estimator")
    body = top.get("$estimator") if type(top) is dict else None
    name = body.get("class") if type(body) is dict else None
    classes = _estimator_classes()
    if name not in classes:
        raise ValueError(f"{path} does not hold a registered skrec estimator (class {name!r}); known classes: "
                         f"{', '.join(classes)}.")
    if expected is not None and not issubclass(classes[name], expected):
        raise ValueError(f"{path} holds an estimator of class {name} (written by skrec {written_by}), "
                         f"not the expected {expected.__name__}.")
    return doc


def load(path, *, expected=None, device=None):
    """Read an estimator written by :func:`save`, without running any code from the file.

    Only data is read: the estimator's class is looked up among skrec's registered
    estimators by name, modules among the module classes of ``torch.nn`` and skrec, and
    every other value is a number, string, list, dict, tensor, array or sparse matrix. No
    ``pickle``, ``torch.load`` or ``numpy.load(allow_pickle=True)`` is involved, and the
    tensor data is checked against the digest the file records.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    expected : type, optional
        The estimator class the file must hold (a subclass passes; ``BaseRecommender``
        accepts any). Checked before anything is built.
    device : str or torch.device, optional
        Where to put the fitted tensors (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``),
        as the fitted ``device_``; the ``device`` parameter is kept as saved. By default the
        device the model was fitted on; a model fitted on CUDA that is loaded where CUDA is
        not available lands on the CPU with a ``RuntimeWarning``, as an unpickled one does.

    Returns
    -------
    estimator
        Equal to the saved one: same parameters, same fitted state, same predictions.

    Raises
    ------
    ValueError
        Naming ``path``: when the file is not a skrec file, is truncated or corrupt, was
        written in a newer format version than this skrec reads, or holds another class
        than ``expected``.
    OSError
        When the file cannot be opened (e.g. ``FileNotFoundError``).

    See Also
    --------
    save : Write the file.

    Notes
    -----
    ``pickle.load`` and ``joblib.load`` **execute code** named by the file; use them only
    for files you trust. :func:`load` is the way to read a model from an untrusted source.

    Examples
    --------
    >>> import os, tempfile
    >>> import skrec
    >>> from skrec import EASE, ItemKNN
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(100, 40, density=0.1, random_state=0).X
    >>> path = os.path.join(tempfile.mkdtemp(), "ease.safetensors")
    >>> skrec.save(EASE(alpha=10.0).fit(X), path)
    >>> skrec.load(path, device="cpu").recommend(X[:2], k=3)[0].shape
    (2, 3)
    >>> skrec.load(path, expected=ItemKNN)
    Traceback (most recent call last):
    ...
    ValueError: .../ease.safetensors holds an estimator of class EASE (written by skrec ...), not the expected ItemKNN.
    """
    from safetensors import SafetensorError

    path = _check_path(path)
    if expected is not None and not (isinstance(expected, type) and issubclass(expected, BaseRecommender)):
        raise_invalid("expected", "None or a skrec estimator class (e.g. skrec.MFRegressor)", expected, TypeError)
    target = resolve_device(device) if device is not None else None
    with _open(path) as handle:
        doc = _header(path, handle, expected)  # checked before any tensor is read
        try:
            # Own, aligned memory (not views of the file): kernels then compute exactly as before.
            tensors = {key: handle.get_tensor(key).clone() for key in handle.keys()}
        except SafetensorError as exc:
            raise ValueError(f"{path} is corrupt: its tensors cannot be read ({exc}).") from exc
    try:
        _check(all(k.isdigit() for k in tensors), "unexpected tensor names")
        _check(_tensor_digest(tensors) == doc.get("sha256"), "its tensor data does not match the digest "
                                                              "recorded at save time")
        return _Reader(tensors, target).decode(doc["estimator"])
    except (_Unreadable, KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a valid skrec file (corrupt or not written by skrec.save): {exc}") from exc
