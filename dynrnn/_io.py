"""Saving and loading: one `.npz` file (a zip of `.npy` arrays) with a JSON header.

Pickle-free by construction (`np.load(allow_pickle=False)`), versioned, written to a
temporary file in the target folder and moved into place with `os.replace`, so a crash
mid-save never leaves a truncated file where the old one was.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from ._errors import fmt_shape
from ._params import LookupParameters, ParameterCollection, Parameters

FORMAT = "dynrnn"
VERSION = 1
_HEADER = "__dynrnn_header__"


# Temporary files are named .dynrnn-<host>-<pid>-<random>.tmp, so that the next save to the
# same folder can tell a killed save's leftover (its process is gone) from a save running now.
_TMP_PREFIX = ".dynrnn-"
_TMP_SUFFIX = ".tmp"
# A leftover from another host (a shared folder) is removed once it is this old.
_STALE_SECONDS = 24 * 3600


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(folder: str) -> list[str]:
    """Deletes the temporary files that killed saves left in `folder`: those of this host
    whose process has ended, and any older than a day. Returns the paths removed."""
    removed = []
    host, now = _host(), time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)):
            continue
        path = os.path.join(folder, name)
        parts = name[len(_TMP_PREFIX):-len(_TMP_SUFFIX)].rsplit("-", 2)
        try:
            old = now - os.path.getmtime(path) > _STALE_SECONDS
            mine_dead = len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _pid_alive(int(parts[1]))
            if old or mine_dead:
                os.unlink(path)
                removed.append(path)
        except OSError:  # gone already, or not ours to delete
            continue
    return removed


def _write(path: str, header: dict, arrays: dict[str, np.ndarray], where: str) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{where}: the folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{where}: {path!r} is a folder; give a file name.")
    remove_stale_temporaries(folder)
    payload: dict[str, Any] = dict(arrays)
    payload[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{_host()}-{os.getpid()}-", suffix=_TMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path: str, kind: str, where: str) -> tuple[dict, dict[str, np.ndarray]]:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: no file at {path!r}.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise ValueError(f"{where}: {path!r} is not a readable dynrnn file (a .npz archive with a JSON "
                         f"header); it may be truncated or corrupt: {e}") from None
    if _HEADER not in arrays:
        raise ValueError(f"{where}: {path!r} is an .npz file but not one written by dynrnn (no header).")
    try:
        header = json.loads(arrays.pop(_HEADER).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: {path!r} has a corrupt header: {e}") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{where}: {path!r} is not a dynrnn file (format {header.get('format')!r}).")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise ValueError(f"{where}: {path!r} has format version {header.get('version')!r}; this dynrnn "
                         f"reads versions up to {VERSION}. Upgrade dynrnn to read it.")
    if header.get("kind") != kind:
        other = {"collection": "ParameterCollection.save (read it with pc.populate)",
                 "objects": "dynrnn.save (read it with dynrnn.load)"}.get(header.get("kind"), repr(header.get("kind")))
        raise ValueError(f"{where}: {path!r} was written by {other}.")
    _check_records(where, path, header, kind, arrays)
    return header, arrays


def _check_records(where: str, path: str, header: dict, kind: str, arrays: dict[str, np.ndarray]) -> None:
    """The header must list its records completely and each must match an array in the
    file, so that nothing is built from a shape that the file does not hold."""
    field = "params" if kind == "collection" else "objects"
    records = header.get(field)
    if not isinstance(records, list):
        raise ValueError(f"{where}: {path!r} is not a complete dynrnn file: its header has no list {field!r} "
                         f"(given {type(records).__name__}).")
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise ValueError(f"{where}: record {i} of {path!r} is a {type(r).__name__}, not a JSON object.")
        if kind == "collection" and not isinstance(r.get("name"), str):
            raise ValueError(f"{where}: record {i} of {path!r} has no parameter name (corrupt file).")
        keys = [r.get("array")] if kind == "collection" else r.get("arrays")
        shapes = [r.get("shape")] if kind == "collection" or r.get("type") not in ("builder", "object") \
            else r.get("shapes")
        if not isinstance(keys, list) or not isinstance(shapes, list) or len(keys) != len(shapes):
            raise ValueError(f"{where}: record {i} of {path!r} does not list its arrays and their shapes.")
        for k, shape in zip(keys, shapes):
            a = arrays.get(k) if isinstance(k, str) else None
            if a is None:
                raise ValueError(f"{where}: record {i} of {path!r} names an array {k!r} that the file does not "
                                 f"hold (corrupt file).")
            if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)) \
                    or tuple(shape) != a.shape:
                raise ValueError(f"{where}: record {i} of {path!r} gives shape {shape!r} for array {k!r}, which "
                                 f"has shape {fmt_shape(a.shape)} (corrupt file).")
            if a.dtype.kind not in "fiu":
                raise ValueError(f"{where}: array {k!r} of {path!r} has dtype {a.dtype}; expected numbers.")


def _param_record(p: Any, key: str, name: str) -> dict:
    return {"name": name, "kind": type(p).__name__, "shape": list(p.shape()), "dtype": str(p.dtype), "array": key}


def _relative(pc: ParameterCollection, p: Any) -> str:
    return p.name()[len(pc.name()):]


def _save_named(where: str, path: str, named: list, collection: str, append: bool, metadata: Any = None) -> None:
    """Writes `named` ((parameter, stored name) pairs) as a collection file; with `append`,
    into the file's parameters (replacing those of the same names, keeping its metadata
    unless new metadata is given)."""
    if metadata is not None:
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}: metadata must be JSON data (dicts, lists, strings, finite numbers, "
                            f"booleans, None); {e}") from None
    records, arrays, old_meta = [], {}, None
    if append and os.path.exists(os.fspath(path)):
        header, arrays = _read(path, "collection", where)
        names = {name for _, name in named}
        records = [r for r in header["params"] if r["name"] not in names]
        old_meta = header.get("metadata")
    for p, name in named:
        k = f"a{len(arrays)}"
        while k in arrays:
            k += "_"
        arrays[k] = p.as_array()
        records.append(_param_record(p, k, name))
    header = {"format": FORMAT, "version": VERSION, "kind": "collection", "collection": collection, "params": records}
    meta = metadata if metadata is not None else old_meta
    if meta is not None:
        header["metadata"] = meta
    _write(path, header, arrays, where)


def _check_key(where: str, key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{where}: key must be a string (a name prefix such as '/encoder'); given "
                        f"{type(key).__name__}.")
    return key.strip("/")


def save_collection(pc: ParameterCollection, path: str, metadata: Any = None, key: str = "",
                    append: bool = False) -> None:
    """`key` (DyNet's): the parameters are stored under `key/` + their names in `pc` (read
    them with `populate(path, key)`); `append`: added to the file's parameters (replacing any
    of the same name) instead of a new file."""
    where = "ParameterCollection.save"
    prefix = _check_key(where, key)
    named = [(p, f"{prefix}/{_relative(pc, p)}" if prefix else _relative(pc, p)) for p in pc.all_parameters()]
    _save_named(where, path, named, pc.name(), append, metadata)


def load_metadata(path: str) -> Any:
    """The `metadata` stored by `pc.save(path, metadata=...)` (None if none): vocabularies
    and hyperparameters, read as JSON, so a model can be rebuilt before `populate`."""
    header, _ = _read(path, "collection", "load_metadata")
    return header.get("metadata")


def _assign(where: str, p: Any, record: dict, arrays: dict) -> None:
    a = arrays.get(record.get("array"))
    if a is None:
        raise ValueError(f"{where}: the file lists {record.get('name')!r} but holds no array for it (corrupt file).")
    if tuple(a.shape) != p.shape():
        raise ValueError(f"{where}: {p.name()!r} has shape {fmt_shape(p.shape())} here but "
                         f"{fmt_shape(a.shape)} in the file.")
    if record.get("kind") != type(p).__name__:
        raise ValueError(f"{where}: {p.name()!r} is a {type(p).__name__} here but a {record.get('kind')} in the file.")
    p.set_value(a)


def populate_collection(pc: ParameterCollection, path: str, key: str = "") -> None:
    where = "ParameterCollection.populate"
    header, arrays = _read(path, "collection", where)
    records = {}
    prefix = key.strip("/")
    for r in header["params"]:
        name = r["name"]
        if prefix:
            if not name.startswith(prefix + "/"):
                continue
            name = name[len(prefix) + 1:]
        records[name] = r
    mine = {_relative(pc, p): p for p in pc.all_parameters()}
    missing = sorted(set(mine) - set(records))
    extra = sorted(set(records) - set(mine))
    if missing or extra:
        raise ValueError(f"{where}: {path!r} does not match this collection: missing from the file: "
                         f"{missing or 'none'}; in the file but not here: {extra or 'none'}.")
    checked = []
    for name, p in mine.items():  # check everything before changing anything
        a = arrays.get(records[name]["array"])
        if a is None or tuple(a.shape) != p.shape() or records[name]["kind"] != type(p).__name__:
            _assign(where, p, records[name], arrays)  # raises with the precise message
        checked.append((p, a))
    for p, a in checked:
        p.set_value(a)


def save_parameter(p: Any, path: str, key: str = "", append: bool = False) -> None:
    """DyNet's `p.save(fname, key="", append=False)`: one parameter under `key` (default its
    name) in a collection file; `append=True` adds it to (or replaces it in) an existing file."""
    where = f"{type(p).__name__}.save"
    _save_named(where, path, [(p, _check_key(where, key) or p.name().strip("/"))], "/", append)


def _saved_record(where: str, path: str, name: str) -> tuple[dict, dict]:
    """(the record of the parameter saved as `name` in a collection file, the file's arrays)."""
    header, arrays = _read(path, "collection", where)
    found = [r for r in header["params"] if r["name"] == name]
    if not found:
        raise ValueError(f"{where}: {path!r} holds no parameter {name!r}; it holds "
                         f"{sorted(r['name'] for r in header['params'])[:10]}.")
    return found[0], arrays


def populate_parameter(p: Any, path: str, key: str = "") -> None:
    """DyNet's `p.populate(fname, key)`: reads the parameter saved under `key` (default
    this parameter's name) into `p`."""
    where = f"{type(p).__name__}.populate"
    record, arrays = _saved_record(where, path, (key or p.name()).strip("/"))
    _assign(where, p, record, arrays)


def saved_parameter(path: str, key: str, kind: str, where: str) -> tuple[str, np.ndarray]:
    """(name, value) of the parameter of `kind` ("Parameters" or "LookupParameters") saved
    under `key` in a collection file: what DyNet's `pc.load_param(fname, key)` and
    `load_lookup_param` add to a collection."""
    name = _check_key(where, key)
    r, arrays = _saved_record(where, path, name)
    if r.get("kind") != kind:
        other = "load_lookup_param" if r.get("kind") == "LookupParameters" else "load_param"
        raise ValueError(f"{where}: {name!r} is a {r.get('kind')} in {path!r}; read it with {other}.")
    a = arrays.get(r.get("array"))
    if a is None:
        raise ValueError(f"{where}: the file lists {name!r} but holds no array for it (corrupt file).")
    return name.rsplit("/", 1)[-1], a


class Savable(Protocol):
    """What `save` asks of a builder, and `load` of its class, registered with `savable`:
    `cls(*args, pc, **kwargs)` rebuilds it from `save_config()`; its dropout settings come
    back through `restore_dropout`; `saved_parameters()` lists its parameters in a fixed
    order (their values are stored in that order)."""

    def save_config(self) -> tuple[list, dict]: ...

    def dropout_settings(self) -> list[list[float]]: ...

    def restore_dropout(self, settings: list) -> None: ...

    def saved_parameters(self) -> list: ...


_SAVABLE: dict[str, type] = {}


def savable(cls: type) -> type:
    """Class decorator: `save` writes instances of `cls` (a `Savable`) and `load` rebuilds
    them by class name. The builders register themselves where they are defined."""
    _SAVABLE[cls.__name__] = cls
    return cls


def _builder_registry() -> dict[str, type]:
    return dict(_SAVABLE)


# -- DyNet's interface for the user's own objects: `spec`, `param_collection()`, `from_spec` --
# DyNet pickles an object's class and spec; here the spec is JSON (numbers, strings,
# booleans, None, lists, tuples, dicts with string keys) with functions and classes stored by
# name ("module:qualname"). Loading looks names up in modules already imported, never
# imports one, and takes functions only from the object's own module, the program's
# (`__main__`) and dynrnn, numpy, jax and math, so a file cannot make it run other code.
_SAFE_MODULES = ("dynrnn", "numpy", "jax", "math")


def _user_object(obj: Any) -> bool:
    """Has DyNet's interface, and is not one of dynrnn's builders (those not registered, as
    a builder with the user's own cell, cannot be rebuilt from a spec)."""
    return (hasattr(obj, "spec") and callable(getattr(obj, "param_collection", None))
            and callable(getattr(type(obj), "from_spec", None)) and not hasattr(obj, "saved_parameters"))


def _name_of(where: str, what: str, f: Any) -> str:
    module, qual = getattr(f, "__module__", None), getattr(f, "__qualname__", None)
    # dynrnn's public operations wrap the function whose name they carry: look in dynrnn too
    for m in (module, "dynrnn"):
        if isinstance(m, str) and isinstance(qual, str):
            try:
                if _lookup(m, qual) is f:
                    return f"{m}:{qual}"
            except LookupError:
                pass
    raise TypeError(f"{where}: {what} is {f!r}, which cannot be found again by its name (a lambda, or a function "
                    f"or class defined inside another); use a function or class defined at the top of a module.")


def _lookup(module: str, qual: str) -> Any:
    m = sys.modules.get(module)
    if m is None:
        raise LookupError(module)
    obj: Any = m
    for part in qual.split("."):
        if part.startswith("<"):
            raise LookupError(qual)
        obj = getattr(obj, part, None)
        if obj is None:
            raise LookupError(qual)
    return obj


def _encode_spec(where: str, v: Any, at: str) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            raise TypeError(f"{where}: {at} is {v!r}; a saved spec holds finite numbers only.")
        return float(v)
    if isinstance(v, (list, tuple)):
        return {"tuple" if isinstance(v, tuple) else "list": [_encode_spec(where, x, f"{at}[{i}]")
                                                               for i, x in enumerate(v)]}
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError(f"{where}: {at} is a dict with keys that are not strings; a saved spec's dicts have "
                            f"string keys.")
        return {"dict": {k: _encode_spec(where, x, f"{at}[{k!r}]") for k, x in v.items()}}
    if callable(v):
        return {"ref": _name_of(where, at, v)}
    raise TypeError(f"{where}: {at} is a {type(v).__name__}; a saved spec holds numbers, strings, booleans, None, "
                    f"lists, tuples, dicts with string keys, and functions or classes defined at the top of a module.")


def _decode_spec(where: str, v: Any, home: str) -> Any:
    if not isinstance(v, dict):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise ValueError(f"{where}: the file's spec holds a {type(v).__name__} (corrupt file).")
    if len(v) != 1:
        raise ValueError(f"{where}: the file's spec holds an unknown item {v!r:.80} (corrupt file).")
    (tag, x), = v.items()
    if tag in ("list", "tuple") and isinstance(x, list):
        items = [_decode_spec(where, y, home) for y in x]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and isinstance(x, dict):
        return {k: _decode_spec(where, y, home) for k, y in x.items()}
    if tag == "ref" and isinstance(x, str) and x.count(":") == 1:
        module, qual = x.split(":")
        if module not in (home, "__main__") and module.split(".")[0] not in _SAFE_MODULES:
            raise ValueError(f"{where}: the file's spec names {x!r}; a spec may name functions of the object's own "
                             f"module, the program's, or {', '.join(_SAFE_MODULES)} only.")
        try:
            return _lookup(module, qual)
        except LookupError:
            raise ValueError(f"{where}: the file's spec names {x!r}, which no imported module defines (loading "
                             f"never imports a module; import it first).") from None
    raise ValueError(f"{where}: the file's spec holds an unknown item {v!r:.80} (corrupt file).")


def _object_class(where: str, name: str) -> Any:
    module, _, qual = name.partition(":")
    for m in (module, "__main__"):
        try:
            cls = _lookup(m, qual)
        except LookupError:
            continue
        if isinstance(cls, type) and callable(getattr(cls, "from_spec", None)):
            return cls, m
    raise ValueError(f"{where}: the file holds an object of class {qual!r} (module {module!r}), which is not defined "
                     f"here with a from_spec method; define or import it before loading (loading never imports a "
                     f"module).")


def save(basename: str, objects: Sequence[Any]) -> None:
    """Saves builders and parameters to the file `basename`, to be rebuilt by `load`.

    Args:
      basename: the file to write (any name; `.npz` is conventional).
      objects: builders (`VanillaLSTMBuilder`, ..., `BiRNNBuilder`), `Parameters`,
        `LookupParameters`, and objects of your own classes with DyNet's interface, in the
        order `load` will return them. Such an object has a `spec` (what its class's
        `from_spec(spec, pc)` needs to build it again: numbers, strings, booleans, None,
        lists, tuples, dicts with string keys, functions and classes defined at the top of
        a module) and a `param_collection()` holding its parameters; `load` finds its class
        among the modules already imported (or in the program) and calls `from_spec`.
    """
    where = "dynrnn.save"
    registry = _builder_registry()
    records, arrays = [], {}

    def add_array(p: Any) -> str:
        k = f"a{len(arrays)}"
        arrays[k] = p.as_array()
        return k

    if not isinstance(objects, (list, tuple)) and hasattr(objects, "__next__"):
        objects = list(objects)  # a generator, as DyNet allows
    if not isinstance(objects, (list, tuple)):
        raise TypeError(f"{where}: objects must be a list of builders and parameters; given {type(objects).__name__}.")
    for i, obj in enumerate(objects):
        if isinstance(obj, (Parameters, LookupParameters)):
            records.append({"type": type(obj).__name__, "name": obj.name().rsplit("/", 1)[-1],
                            "shape": list(obj.shape()), "arrays": [add_array(obj)]})
        elif type(obj).__name__ in registry and isinstance(obj, registry[type(obj).__name__]):
            args, kwargs = obj.save_config()
            records.append({"type": "builder", "class": type(obj).__name__, "args": args, "kwargs": kwargs,
                            "dropouts": obj.dropout_settings(),
                            "shapes": [list(p.shape()) for p in obj.saved_parameters()],
                            "arrays": [add_array(p) for p in obj.saved_parameters()]})
        elif _user_object(obj):
            sub = obj.param_collection()
            if not isinstance(sub, ParameterCollection):
                raise TypeError(f"{where}: objects[{i}].param_collection() returned a {type(sub).__name__}; expected "
                                f"a ParameterCollection.")
            params = sub.all_parameters()
            records.append({"type": "object", "class": _name_of(where, f"the class of objects[{i}]", type(obj)),
                            "spec": _encode_spec(where, obj.spec, f"objects[{i}].spec"),
                            "params": [{"name": _relative(sub, p), "kind": type(p).__name__} for p in params],
                            "shapes": [list(p.shape()) for p in params], "arrays": [add_array(p) for p in params]})
        else:
            raise TypeError(f"{where}: objects[{i}] is a {type(obj).__name__}; expected one of "
                            f"{', '.join(sorted(registry))}, Parameters, LookupParameters, or an object with DyNet's "
                            f"interface (a spec, a param_collection() method and a from_spec(spec, pc) class method). "
                            f"For a builder with your own cell, save its collection with pc.save and read it with "
                            f"pc.populate.")
    header = {"format": FORMAT, "version": VERSION, "kind": "objects", "objects": records}
    _write(basename, header, arrays, where)


def _build(where: str, basename: str, i: int, r: dict, registry: dict[str, type], pc: ParameterCollection) -> Any:
    cls = registry[r["class"]]
    args, kwargs = r.get("args"), r.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ValueError(f"{where}: object {i} ({r['class']}) in {basename!r} has no constructor arguments "
                         f"(corrupt file).")
    kwargs = dict(kwargs)
    if "builder_class" in kwargs:
        if kwargs["builder_class"] not in registry:
            raise ValueError(f"{where}: object {i} names an unknown builder class {kwargs['builder_class']!r}.")
        kwargs["builder_class"] = registry[kwargs["builder_class"]]
    try:
        obj = cls(*args, pc, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: object {i} ({r['class']}) in {basename!r} cannot be rebuilt from "
                         f"args={args!r}, kwargs={r.get('kwargs')!r}: {e}") from None
    settings = r.get("dropouts")
    if settings is None and r.get("dropout"):  # files written before BiRNN dropout was kept
        settings = [r["dropout"]] * len(obj.dropout_settings())
    if settings is not None:
        ok = isinstance(settings, list) and len(settings) == len(obj.dropout_settings()) and all(
            isinstance(x, list) and len(x) == 2 for x in settings)
        if not ok:
            raise ValueError(f"{where}: object {i} ({r['class']}) in {basename!r} has malformed dropout settings "
                             f"{settings!r}.")
        try:
            obj.restore_dropout(settings)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: object {i} ({r['class']}) in {basename!r}: {e}") from None
    return obj


def load_generator(basename: str, pc: ParameterCollection) -> Iterator[Any]:
    """DyNet's `load_generator`: the objects of `load(basename, pc)`, one at a time (all are
    read and checked before the first is given)."""
    yield from load(basename, pc)


def load(basename: str, pc: ParameterCollection) -> list[Any]:
    """Rebuilds the objects saved by `save` inside `pc` and returns them in order."""
    where = "dynrnn.load"
    header, arrays = _read(basename, "objects", where)
    registry = _builder_registry()
    made, assignments = [], []
    if not isinstance(pc, ParameterCollection):
        raise TypeError(f"{where}: pc must be a ParameterCollection; given {type(pc).__name__}.")
    for i, r in enumerate(header["objects"]):
        t = r.get("type")
        if t in ("Parameters", "LookupParameters"):
            add = pc.add_parameters if t == "Parameters" else pc.add_lookup_parameters
            name = r.get("name", "")
            if not isinstance(name, str):
                raise ValueError(f"{where}: object {i} in {basename!r} has a name that is not a string: {name!r}.")
            obj = add(tuple(r["shape"]), init=0.0, name=name)
            params = [obj]
        elif t == "builder" and r.get("class") in registry:
            obj = _build(where, basename, i, r, registry, pc)
            params = obj.saved_parameters()
        elif t == "object" and isinstance(r.get("class"), str):
            cls, home = _object_class(f"{where}: object {i} in {basename!r}", r["class"])
            spec = _decode_spec(f"{where}: object {i} in {basename!r}", r.get("spec"), home)
            try:
                obj = cls.from_spec(spec, pc)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{where}: object {i} in {basename!r}: {cls.__name__}.from_spec({spec!r:.200}, pc) "
                                 f"failed: {e}") from e
            if not callable(getattr(obj, "param_collection", None)):
                raise TypeError(f"{where}: object {i} in {basename!r}: {cls.__name__}.from_spec returned a "
                                f"{type(obj).__name__}, which has no param_collection().")
            params = obj.param_collection().all_parameters()
            records = r.get("params")
            if isinstance(records, list) and len(records) == len(params) and all(isinstance(q, dict) for q in records):
                for p, q in zip(params, records):
                    if q.get("kind") != type(p).__name__:
                        raise ValueError(f"{where}: object {i} ({r['class']}): {p.name()!r} is a {type(p).__name__} "
                                         f"here but a {q.get('kind')} ({q.get('name')!r}) in the file.")
        else:
            raise ValueError(f"{where}: object {i} in {basename!r} has an unknown type {t!r} / "
                             f"class {r.get('class')!r}.")
        keys = r.get("arrays", [])
        if len(keys) != len(params):
            raise ValueError(f"{where}: object {i} ({r.get('class', t)}) has {len(params)} parameters here but "
                             f"{len(keys)} in the file.")
        for p, k in zip(params, keys):
            assignments.append((p, {"array": k, "kind": type(p).__name__, "name": p.name()}))
        made.append(obj)
    for p, rec in assignments:
        _assign(where, p, rec, arrays)
    return made
