"""``save`` / ``load``: a fitted estimator in a file that runs no code when it is loaded.

The file is a zip archive of three members:

* ``weights.safetensors`` (deflated): the network as the tensors of
  :func:`~sklearn_rtl._compact.encode_network` (the same a pickle holds): per prunable
  weight the kept values of the union of the ticket masks, the union as a bitmap and every
  ticket's mask restricted to the union, the dense parameters and the buffers (batch-norm
  statistics);
* ``estimator.skops``: the estimator without its network (parameters, classes, router,
  diagnostics), written by :mod:`skops.io`, which rebuilds only types on an explicit
  trusted list;
* ``manifest.json``: format version, the network's description (plain data, validated)
  and the SHA-256 of both other members.

Loading checks the archive, the manifest (every value's type and range, and that it
agrees with the estimator's fitted attributes) and both hashes, refuses any type outside
the trusted list, and rebuilds the fitted estimator from the data: pickle is never used.
The hashes catch damage, not a deliberate rewrite: the manifest carries no signature, so
whoever rewrites a member can rewrite its hash too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import types
import zipfile
import zlib

import numpy as np
import torch

from ._compact import (
    available_device,
    check_network_meta,
    compact_fitted_net,
    decode_network,
    encode_network,
    is_count,
)

__all__ = ["FORMAT_VERSION", "load", "save", "trusted_types"]

FORMAT_VERSION = 1
_FORMAT = "sklearn-rtl"
_MEMBERS = ("manifest.json", "estimator.skops", "weights.safetensors")
_MANIFEST_KEYS = {
    "format",
    "format_version",
    "sklearn_rtl_version",
    "estimator",
    "network",
    "history",
    "sha256",
}


def _import_safe_libraries():
    try:
        import safetensors.torch
        import skops.io
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sklearn_rtl.save/load need safetensors and skops: pip install 'sklearn-rtl[io]' "
            "(or pip install safetensors skops)."
        ) from error
    return safetensors.torch, skops.io


def _type_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def trusted_types() -> list[str]:
    """Types that :func:`load` rebuilds without being told to (besides skops' defaults).

    The estimators and routers of this package and the optimizer classes of
    ``torch.optim`` (stored as references, e.g. the ``optimizer`` parameter).

    Returns
    -------
    names : list of str
        Full type names, as :func:`skops.io.get_untrusted_types` spells them.
    """
    from . import _routing
    from ._classifier import RTLClassifier
    from ._regressor import RTLRegressor

    names = [_type_name(RTLClassifier), _type_name(RTLRegressor)]
    names += [_type_name(getattr(_routing, n)) for n in _routing.__all__ if n[0].isupper()]
    try:  # the task objects of the estimators, where they have them
        from . import _tasks

        names += [_type_name(getattr(_tasks, n)) for n in _tasks.__all__ if n[0].isupper()]
    except ImportError:
        pass
    for value in vars(torch.optim).values():
        if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
            names.append(_type_name(value))
    return sorted(set(names))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _estimator_without_network(estimator):
    """A shallow copy of ``estimator`` without ``net_`` (the router stores as it is)."""
    if isinstance(estimator.module, torch.nn.Module):
        raise ValueError(
            "save() stores the architecture as data and cannot store a module instance: "
            "fit with module=<your nn.Module class> and module_params={...} instead, or "
            "use pickle/joblib (which run code on load)."
        )
    stripped = copy.copy(estimator)
    vars(stripped).pop("net_")
    return stripped


def _history(net) -> list:
    """The skorch history without per-batch records, if it is plain JSON data."""
    records = [{k: v for k, v in epoch.items() if k != "batches"} for epoch in net.history]
    try:
        json.dumps(records)
    except (TypeError, ValueError):
        return []
    return records


def _as_path(path) -> str:
    """``path`` as a ``str`` (``bytes`` paths decoded), or a ``TypeError`` naming it."""
    try:
        return os.fsdecode(path)
    except TypeError:
        raise TypeError(
            f"path must be a str, bytes or os.PathLike, got {type(path).__name__}."
        ) from None


def _is_function(value) -> bool:
    return isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType))


def _skops_round_trip(sio, value):
    """``value`` written by skops and read back (trusting every type it names)."""
    data = sio.dumps(value)
    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


def _check_storable(estimator, sio) -> None:
    """Refuse every parameter that skops cannot store as data, naming it.

    skops stores a function or a class as its import path, so a lambda, a function
    defined inside another function or a bound method of a local object would be written
    and never read back; each parameter is written and read back here, and a function
    must come back as the very same object.
    """
    for name, value in estimator.get_params(deep=False).items():
        try:
            back = _skops_round_trip(sio, value)
        except Exception as error:  # skops raises many error types on what it cannot read
            why = f"{type(error).__name__}: {error}"
        else:
            if not _is_function(value) or back is value:
                continue
            why = "it reads back as another object"
        hint = ""
        if callable(value):
            hint = (
                " skops stores a function as its import path, which a lambda or a function "
                "defined inside another function does not have: pass a function defined "
                "at the top level of a module"
                + (" or a list of parameter names" if name == "prunable" else "")
                + " instead."
            )
        raise ValueError(
            f"save() cannot store {name}={value!r} as data ({why}), so load() could not "
            f"read the file back.{hint} Or use pickle/joblib (which run code on load)."
        )


def _check_readable(estimator_bytes: bytes, sio) -> None:
    """Read the estimator part back once before writing it: never write an unloadable file."""
    try:
        sio.loads(estimator_bytes, trusted=sio.get_untrusted_types(data=estimator_bytes))
    except Exception as error:  # skops raises many error types on what it cannot read
        raise ValueError(
            f"save() cannot store this estimator as data: skops cannot read its fitted "
            f"state back ({type(error).__name__}: {error}). Use pickle/joblib (which run "
            f"code on load)."
        ) from error


def _n_outputs(network, estimator) -> int:
    """The width of the network's output, from one probe row."""
    was_training = network.training
    network.eval()
    with torch.no_grad():
        probe = torch.zeros((1, *estimator.input_shape_), device=estimator.net_.device)
        n_outputs = int(network.forward_ticket(probe, 0).shape[-1])
    network.train(was_training)
    return n_outputs


def save(estimator, path) -> None:
    """Save a fitted estimator to ``path`` in a format that runs no code on load.

    Parameters
    ----------
    estimator : RTLClassifier or RTLRegressor
        Fitted; ``module`` must be ``None`` or an ``nn.Module`` class (an instance cannot
        be stored as data), and every parameter must be storable as data by skops (a
        function must be importable by its name: no lambda, no local function).
    path : str, bytes or path-like
        Destination file (conventionally ``*.rtl``); overwritten.

    Raises
    ------
    ValueError
        If a parameter cannot be stored as data, naming it; nothing is written then.

    See Also
    --------
    load

    Notes
    -----
    The manifest holds the SHA-256 of the other members but no signature: ``load``
    detects a damaged file, not one someone rewrote on purpose (hashes included). Load
    files only from sources you trust to have written them with ``save``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_rtl import RTLClassifier, load, save
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RTLClassifier(hidden_layer_sizes=(8,), n_clusters=2, n_prune_rounds=1,
    ...                     max_epochs=1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "iris.rtl")
    >>> save(clf, path)
    >>> np.array_equal(load(path).predict_proba(X), clf.predict_proba(X))
    True
    """
    from sklearn.utils.validation import check_is_fitted

    st, sio = _import_safe_libraries()
    path = _as_path(path)
    check_is_fitted(estimator, "net_")
    stripped = _estimator_without_network(estimator)
    _check_storable(estimator, sio)
    skops_bytes = sio.dumps(stripped, compression=zipfile.ZIP_DEFLATED)
    _check_readable(skops_bytes, sio)
    network = estimator.net_.module_
    tensors, network_meta = encode_network(network)
    network_meta["n_outputs"] = _n_outputs(network, estimator)
    weights = st.save(tensors)
    from . import __version__

    manifest = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "sklearn_rtl_version": __version__,
        "estimator": type(estimator).__name__,
        "network": network_meta,
        "history": _history(estimator.net_),
        "sha256": {
            "estimator.skops": _sha256(skops_bytes),
            "weights.safetensors": _sha256(weights),
        },
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest), zipfile.ZIP_DEFLATED)
        archive.writestr("estimator.skops", skops_bytes, zipfile.ZIP_DEFLATED)
        archive.writestr("weights.safetensors", weights, zipfile.ZIP_DEFLATED)


def _tampered(path, why: str) -> ValueError:
    return ValueError(
        f"{path!r} is not a valid sklearn-rtl file or was tampered with: {why}. "
        f"Refusing to load it."
    )


def _read_archive(path: str) -> dict[str, bytes]:
    """The three members, the manifest validated and the hashes checked."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a file written by save().")
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(archive.namelist())
            if names != sorted(_MEMBERS):
                raise _tampered(path, f"it holds {names}, expected {sorted(_MEMBERS)}")
            members = {name: archive.read(name) for name in _MEMBERS}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise _tampered(path, f"the archive is damaged ({error})") from None
    try:
        manifest = json.loads(members["manifest.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _tampered(path, f"manifest.json is not valid JSON ({error})") from None
    _check_manifest(path, manifest)
    for name, expected in manifest["sha256"].items():
        if _sha256(members[name]) != expected:
            raise _tampered(path, f"the SHA-256 of {name} does not match the manifest")
    members["manifest.json"] = manifest
    return members


def _manifest_problem(manifest: dict) -> str | None:
    """What is wrong with a manifest of the current format version, or None."""
    if set(manifest) != _MANIFEST_KEYS:
        return f"its entries are {sorted(manifest)}, expected {sorted(_MANIFEST_KEYS)}"
    if not isinstance(manifest["sklearn_rtl_version"], str):
        return "sklearn_rtl_version is not a string"
    if manifest["estimator"] not in ("RTLClassifier", "RTLRegressor"):
        return f"estimator {manifest['estimator']!r} is not RTLClassifier or RTLRegressor"
    history = manifest["history"]
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        return "history is not a list of epoch records"
    hashes = manifest["sha256"]
    if not isinstance(hashes, dict) or sorted(hashes) != ["estimator.skops", "weights.safetensors"]:
        return "sha256 does not list estimator.skops and weights.safetensors"
    if not all(isinstance(h, str) and re.fullmatch("[0-9a-f]{64}", h) for h in hashes.values()):
        return "a SHA-256 is not 64 hexadecimal digits"
    network = manifest["network"]
    if not isinstance(network, dict) or not is_count(network.get("n_outputs"), 1):
        return "network.n_outputs is not a positive integer"
    try:
        check_network_meta({k: v for k, v in network.items() if k != "n_outputs"})
    except ValueError as error:
        return str(error).rstrip(".")
    return None


def _check_manifest(path, manifest) -> None:
    """Every value's type and range; the one place a manifest is validated."""
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise _tampered(path, "manifest.json does not describe an sklearn-rtl model")
    version = manifest.get("format_version")
    if not is_count(version, 1):
        raise _tampered(path, f"format_version {version!r} is not a positive integer")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written in sklearn-rtl file format {version!r} "
            f"(sklearn-rtl {manifest.get('sklearn_rtl_version')!r}); this version reads "
            f"format {FORMAT_VERSION}."
        )
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise _tampered(path, f"manifest.json has missing or invalid entries: {problem}")


def _load_estimator(path, data: bytes, manifest: dict, trusted):
    _, sio = _import_safe_libraries()
    from skops.io.exceptions import UntrustedTypesFoundException

    from ._classifier import RTLClassifier
    from ._regressor import RTLRegressor

    allowed = trusted_types() + list(trusted or [])
    try:
        estimator = sio.loads(data, trusted=allowed)
    except UntrustedTypesFoundException as error:
        untrusted = sio.get_untrusted_types(data=data)
        untrusted = [name for name in untrusted if name not in allowed]
        raise ValueError(
            f"{path!r} names types outside the trusted list: {untrusted}. "
            f"Loading them could run their code. If you trust this file and these types, "
            f"pass load(path, trusted={untrusted!r})."
        ) from error
    expected = {"RTLClassifier": RTLClassifier, "RTLRegressor": RTLRegressor}
    if type(estimator) is not expected[manifest["estimator"]]:
        raise _tampered(path, f"estimator.skops holds a {type(estimator).__name__}")
    return estimator


def _implied_n_outputs(estimator) -> int:
    """The network's output width that the estimator's fitted attributes imply (the rule
    of its task: the number of classes, 1 per detector under label routing, the number of
    regression targets)."""
    if hasattr(estimator, "classes_"):
        y_train = np.arange(len(estimator.classes_))
    else:
        y_train = np.zeros((1, int(estimator.n_outputs_)))
    return int(estimator._make_task().n_outputs(y_train))


def _check_against_estimator(path, estimator, meta: dict) -> None:
    """The manifest's network agrees with the estimator's fitted attributes (before any
    tensor of the sizes it gives is allocated)."""
    try:
        n_tickets, n_outputs = int(estimator.n_tickets_), _implied_n_outputs(estimator)
    except (AttributeError, TypeError, ValueError) as error:
        raise _tampered(path, f"estimator.skops lacks fitted attributes ({error})") from None
    if meta["compact"]["n_tickets"] != n_tickets:
        raise _tampered(
            path,
            f"the manifest stores {meta['compact']['n_tickets']} tickets, the estimator "
            f"has n_tickets_={n_tickets}",
        )
    if meta["n_outputs"] != n_outputs:
        raise _tampered(
            path,
            f"the manifest stores n_outputs={meta['n_outputs']}, the estimator's fitted "
            f"attributes imply {n_outputs}",
        )


def _hidden(estimator) -> tuple:
    hidden = estimator.hidden_layer_sizes
    return (int(hidden),) if isinstance(hidden, (int, np.integer)) else tuple(hidden)


def _template(estimator, n_outputs: int):
    """The estimator's untrained template network (the same builder as ``fit``)."""
    from ._models import build_template

    return build_template(
        estimator.module,
        estimator.module_params,
        estimator.input_shape_,
        _hidden(estimator),
        n_outputs,
    )


def _build_network(path, estimator, meta: dict, tensors: dict):
    """The fitted ticket network: built as ``fit`` builds it (template, ticket network
    class) from the estimator's parameters, then the stored tensors decoded into it."""
    from ._network import make_ticket_network

    _check_against_estimator(path, estimator, meta)
    compact = meta["compact"]
    with torch.random.fork_rng(devices=[]):
        template = _template(estimator, meta["n_outputs"])
    codec_meta = {k: v for k, v in meta.items() if k != "n_outputs"}
    try:
        network = make_ticket_network(
            template, compact["n_tickets"], compact["prunable"], estimator.ticket_batchnorm
        )
        decode_network(network, tensors, codec_meta, device="cpu")
    except (KeyError, ValueError, RuntimeError) as error:
        raise _tampered(path, f"the weights do not fit the architecture ({error})") from None
    return network.eval()


def _attach_net(estimator, network, history) -> None:
    """Give ``estimator`` a fitted skorch net around ``network``, on the estimator's
    device, or on the CPU where that device is not available here."""
    from skorch.history import History

    if hasattr(estimator, "_make_net"):  # sklearn-rtl 0.1.0
        net = estimator._make_net(network, np.random.default_rng(0))
    else:
        from skorch import NeuralNet

        net = NeuralNet(
            network,
            criterion=torch.nn.Identity,
            optimizer=estimator.optimizer,
            lr=estimator.lr,
            max_epochs=estimator.max_epochs,
            batch_size=estimator.batch_size,
            train_split=None,
            device=str(available_device(estimator.device)),
        ).initialize()
    net.history = History(history)
    compact_fitted_net(net)
    network.eval()
    estimator.net_ = net


def load(path, trusted=None):
    """Load an estimator written by :func:`save`; runs no code from the file.

    Parameters
    ----------
    path : str, bytes or path-like
    trusted : list of str, default=None
        Further type names to rebuild (e.g. your own module class, ``"mypkg.MyNet"``), on
        top of :func:`trusted_types` and skops' defaults. Only name types you trust:
        rebuilding an object can run its code.

    Returns
    -------
    estimator : RTLClassifier or RTLRegressor
        Fitted; its ``predict_proba`` / ``predict`` are bit-identical to the saved one's.
        A model fitted on a GPU loads on the CPU where no GPU is available (its ``device``
        parameter is kept; ``net_.device`` says where it runs).

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` does not exist or is a directory.
    TypeError
        If ``path`` is not a str, bytes or path-like.
    ValueError
        If the file is damaged or was tampered with (hash mismatch, invalid manifest,
        weights that do not fit), was written in another format version, or names a
        type outside the trusted list.

    Notes
    -----
    Every member's SHA-256 is checked against the manifest and every manifest value
    against its type, its range and the estimator's fitted attributes. This detects
    damage, not a deliberate rewrite: the manifest itself is not signed, so whoever
    rewrites a member can rewrite its hash too. What keeps such a file from running code
    is that nothing in it is executed: only types on the trusted list are rebuilt.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_rtl import load
    >>> path = os.path.join(tempfile.mkdtemp(), "not-a-model.rtl")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"anything")
    >>> load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    st, _ = _import_safe_libraries()
    path = _as_path(path)
    members = _read_archive(path)
    manifest = members["manifest.json"]
    estimator = _load_estimator(path, members["estimator.skops"], manifest, trusted)
    try:
        tensors = st.load(members["weights.safetensors"])
    except Exception as error:  # safetensors raises its own error types
        raise _tampered(path, f"weights.safetensors cannot be read ({error})") from None
    network = _build_network(path, estimator, manifest["network"], tensors)
    _attach_net(estimator, network, manifest["history"])
    return estimator
