"""``save`` / ``load``: a fitted estimator in a file that runs no code when it is loaded.

The file is a zip archive of three members:

* ``weights.safetensors`` (deflated): the network as compact tensors: per prunable weight
  the kept values of the union of the ticket masks, the union as a bitmap and every
  ticket's mask restricted to the union (:func:`~sklearn_rtl._compact.compact_arrays`),
  the dense parameters and the buffers (batch-norm statistics);
* ``estimator.skops``: the estimator without its network (parameters, classes, router,
  diagnostics), written by :mod:`skops.io`, which rebuilds only types on an explicit
  trusted list;
* ``manifest.json``: format version, the network's description (plain data, validated)
  and the SHA-256 of both other members.

Loading checks the archive, the manifest and both hashes, refuses any type outside the
trusted list, and rebuilds the fitted estimator from the data: pickle is never used.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import zipfile
import zlib

import numpy as np
import torch

from ._compact import compact_arrays, compact_fitted_net, compact_router, restore_arrays

__all__ = ["FORMAT_VERSION", "load", "save", "trusted_types"]

FORMAT_VERSION = 1
_FORMAT = "sklearn-rtl"
_MEMBERS = ("manifest.json", "estimator.skops", "weights.safetensors")
_NETWORK_CLASSES = ("TicketNetwork", "TicketBatchNormNetwork")


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
    """A shallow copy of ``estimator`` without ``net_`` and with a compact router copy."""
    if isinstance(estimator.module, torch.nn.Module):
        raise ValueError(
            "save() stores the architecture as data and cannot store a module instance: "
            "fit with module=<your nn.Module class> and module_params={...} instead, or "
            "use pickle/joblib (which run code on load)."
        )
    stripped = copy.copy(estimator)
    vars(stripped).pop("net_")
    router = getattr(stripped, "router_", None)
    if router is not None:
        router = copy.copy(router)
        vars(router).pop("model_", None)  # a router bound to the fitted network
        stripped.router_ = copy.deepcopy(router)
        compact_router(stripped.router_)
    return stripped


def _network_tensors(network) -> tuple[dict, dict]:
    """Every tensor of the network for safetensors, and their description."""
    arrays, meta = compact_arrays(network)
    tensors = {f"param/{key}": torch.as_tensor(value) for key, value in arrays.items()}
    buffers = {}
    for key, value in network.state_dict().items():
        if key.startswith(("weights.", "masks.")):
            continue
        tensors[f"buffer/{key}"] = value.detach().cpu()
        buffers[key] = list(value.shape)
    tensors = {key: value.contiguous() for key, value in tensors.items()}
    return tensors, {"compact": meta, "buffers": buffers}


def _history(net) -> list:
    """The skorch history without per-batch records, if it is plain JSON data."""
    records = [{k: v for k, v in epoch.items() if k != "batches"} for epoch in net.history]
    try:
        json.dumps(records)
    except (TypeError, ValueError):
        return []
    return records


def save(estimator, path) -> None:
    """Save a fitted estimator to ``path`` in a format that runs no code on load.

    Parameters
    ----------
    estimator : RTLClassifier or RTLRegressor
        Fitted; ``module`` must be ``None`` or an ``nn.Module`` class (an instance cannot
        be stored as data).
    path : str or path-like
        Destination file (conventionally ``*.rtl``); overwritten.

    See Also
    --------
    load

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
    check_is_fitted(estimator, "net_")
    network = estimator.net_.module_
    tensors, network_meta = _network_tensors(network)
    was_training = network.training
    network.eval()
    with torch.no_grad():
        probe = torch.zeros((1, *estimator.input_shape_), device=estimator.net_.device)
        network_meta["n_outputs"] = int(network.forward_ticket(probe, 0).shape[-1])
    network.train(was_training)
    network_meta["class"] = type(network).__name__
    weights = st.save(tensors)
    skops_bytes = sio.dumps(_estimator_without_network(estimator), compression=zipfile.ZIP_DEFLATED)
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
    with zipfile.ZipFile(os.fspath(path), "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest), zipfile.ZIP_DEFLATED)
        archive.writestr("estimator.skops", skops_bytes, zipfile.ZIP_DEFLATED)
        archive.writestr("weights.safetensors", weights, zipfile.ZIP_DEFLATED)


def _tampered(path, why: str) -> ValueError:
    return ValueError(
        f"{os.fspath(path)!r} is not a valid sklearn-rtl file or was tampered with: {why}. "
        f"Refusing to load it."
    )


def _read_archive(path) -> dict[str, bytes]:
    """The three members, their hashes checked."""
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
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


def _check_manifest(path, manifest) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise _tampered(path, "manifest.json does not describe an sklearn-rtl model")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written in sklearn-rtl file format {version!r} "
            f"(sklearn-rtl {manifest.get('sklearn_rtl_version')!r}); this version reads "
            f"format {FORMAT_VERSION}."
        )
    network = manifest.get("network")
    hashes = manifest.get("sha256")
    ok = (
        manifest.get("estimator") in ("RTLClassifier", "RTLRegressor")
        and isinstance(network, dict)
        and network.get("class") in _NETWORK_CLASSES
        and isinstance(network.get("n_outputs"), int)
        and isinstance(network.get("compact"), dict)
        and isinstance(network.get("buffers"), dict)
        and isinstance(manifest.get("history"), list)
        and isinstance(hashes, dict)
        and sorted(hashes) == ["estimator.skops", "weights.safetensors"]
        and all(isinstance(h, str) for h in hashes.values())
    )
    if not ok:
        raise _tampered(path, "manifest.json has missing or invalid entries")


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
            f"{os.fspath(path)!r} names types outside the trusted list: {untrusted}. "
            f"Loading them could run their code. If you trust this file and these types, "
            f"pass load(path, trusted={untrusted!r})."
        ) from error
    expected = {"RTLClassifier": RTLClassifier, "RTLRegressor": RTLRegressor}
    if type(estimator) is not expected[manifest["estimator"]]:
        raise _tampered(path, f"estimator.skops holds a {type(estimator).__name__}")
    return estimator


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
    """The fitted ticket network, from the estimator's architecture and the tensors."""
    from . import TicketBatchNormNetwork, TicketNetwork

    compact = meta["compact"]
    network_class = {
        "TicketNetwork": TicketNetwork,
        "TicketBatchNormNetwork": TicketBatchNormNetwork,
    }
    with torch.random.fork_rng(devices=[]):
        template = _template(estimator, meta["n_outputs"])
        network = network_class[meta["class"]](
            template, int(compact["n_tickets"]), list(compact["prunable"])
        )
    arrays = {k[len("param/") :]: v for k, v in tensors.items() if k.startswith("param/")}
    try:
        restore_arrays(network, arrays, compact)
        own = network.state_dict()
        for key, shape in meta["buffers"].items():
            value = tensors[f"buffer/{key}"]
            if key not in own or not tuple(shape) == tuple(value.shape) == tuple(own[key].shape):
                raise ValueError(f"buffer {key!r} does not fit the network")
            network.get_buffer(key).copy_(value)
    except (KeyError, ValueError, RuntimeError) as error:
        raise _tampered(path, f"the weights do not fit the architecture ({error})") from None
    n_stored = sum(k.startswith("buffer/") for k in tensors)
    if n_stored != len(meta["buffers"]):
        raise _tampered(path, "weights.safetensors holds tensors the manifest does not list")
    return network.eval()


def _attach_net(estimator, network, history) -> None:
    """Give ``estimator`` a fitted skorch net around ``network``."""
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
            device=estimator.device,
        ).initialize()
    net.history = History(history)
    compact_fitted_net(net)
    network.eval()
    estimator.net_ = net
    router = getattr(estimator, "router_", None)
    if hasattr(router, "bind") and hasattr(estimator, "_model"):
        router.bind(estimator._model())  # routers that route by the network's outputs


def load(path, trusted=None):
    """Load an estimator written by :func:`save`; runs no code from the file.

    Parameters
    ----------
    path : str or path-like
    trusted : list of str, default=None
        Further type names to rebuild (e.g. your own module class, ``"mypkg.MyNet"``), on
        top of :func:`trusted_types` and skops' defaults. Only name types you trust:
        rebuilding an object can run its code.

    Returns
    -------
    estimator : RTLClassifier or RTLRegressor
        Fitted; its ``predict_proba`` / ``predict`` are bit-identical to the saved one's.

    Raises
    ------
    ValueError
        If the file is damaged or was tampered with (hash mismatch, invalid manifest,
        weights that do not fit), was written in another format version, or names a
        type outside the trusted list.

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
