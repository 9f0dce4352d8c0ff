"""The compact fitted state: a fitted model keeps only what prediction needs.

Three things made a pickled :class:`~sklearn_rtl.RTLClassifier` about twice the size of its
dense float32 weights, whatever its sparsity:

* skorch pickles the net's ``module`` parameter (our :class:`TicketNetwork` instance) in
  the outer pickle and ``module_`` / ``optimizer_`` in a separate inner blob
  (``NeuralNet.__getstate__``), so the same network was stored twice;
* the optimizer's ``param_groups`` reference the weight tensors (a third copy once the
  network itself stores only its kept weights);
* the weights were stored dense, and the positions that no ticket keeps held their
  (rewound) initial values, so not even a compressor saw the sparsity.

:func:`compact_fitted_net` fixes the first two and zeroes every unused weight in memory;
:func:`compact_arrays` describes a :class:`TicketNetwork` by the values of the union of the
ticket masks, the union as a bitmap (1 bit per weight) and every ticket's mask restricted to
the union (``|union|`` bits per ticket).

One codec stores a fitted network, for pickle and for ``save`` alike:
:func:`encode_network` gives those arrays plus the other buffers (batch-norm statistics) as
tensors and a plain description (validated by :func:`check_network_meta`);
:func:`decode_network` loads them into a network of the same architecture. A pickle holds
them zlib-compressed next to the network's skeleton (:func:`network_getstate`); ``save``
writes them as safetensors and the description into its manifest.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import nn

__all__ = [
    "COMPACT_FORMAT",
    "NETWORK_CLASSES",
    "available_device",
    "check_network_meta",
    "compact_arrays",
    "compact_fitted_net",
    "decode_network",
    "encode_network",
    "is_count",
    "network_getstate",
    "network_setstate",
    "restore_arrays",
    "zero_unused_weights",
]

COMPACT_FORMAT = 1


def _key(name: str) -> str:
    return name.replace(".", "__")


def _as_array(tensor: torch.Tensor):
    """A numpy array (small to pickle) where numpy has the dtype, else the CPU tensor."""
    tensor = tensor.detach().cpu().contiguous()
    try:
        return tensor.numpy()
    except TypeError:  # e.g. bfloat16
        return tensor


def _as_tensor(value) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))


@torch.no_grad()
def zero_unused_weights(network) -> None:
    """Zero, in place, every prunable weight that no ticket reading it keeps.

    With one shared weight copy that is every position outside the union of the masks;
    with one copy per ticket (``share_weights=False``), copy ``k`` keeps only ticket
    ``k``'s mask. Predictions do not change: those positions are multiplied by a zero mask.

    Parameters
    ----------
    network : TicketNetwork
    """
    masks = network.get_masks()
    for name in network.prunable:
        weight = network.weights[_key(name)]
        mask = masks[name].to(weight.device)
        keep = mask.any(0, keepdim=True) if weight.shape[0] == 1 else mask
        weight.copy_(torch.where(keep, weight, torch.zeros((), dtype=weight.dtype)))


def compact_arrays(network) -> tuple[dict, dict]:
    """The network's weights and masks as compact arrays plus plain metadata.

    Parameters
    ----------
    network : TicketNetwork

    Returns
    -------
    arrays : dict of str to ndarray (or Tensor for dtypes numpy lacks)
        Per prunable weight ``name``: ``name/union`` (the union of the masks as a
        bit-packed bitmap over the flat weight), ``name/masks`` (every ticket's mask
        restricted to the union, ``n_tickets * |union|`` bits, packed) and
        ``name/values`` (the kept values: the union's with one shared copy, else every
        copy's own kept values one after the other). Per other parameter,
        ``name/dense`` of shape ``(n_copies, *shape)``.
    meta : dict
        ``format``, ``n_tickets``, ``n_copies``, ``param_names``, ``prunable`` and
        ``shapes`` (JSON-able).
    """
    weights, masks = network.get_weights(), network.get_masks()
    n_tickets, n_copies = int(network.n_tickets), int(network.n_copies)
    arrays: dict = {}
    for name in network.param_names:
        weight = weights[name].detach().cpu()
        if name not in network.prunable:
            arrays[f"{name}/dense"] = _as_array(weight)
            continue
        mask = masks[name].cpu().reshape(n_tickets, -1)
        union = mask.any(0)
        flat = weight.reshape(n_copies, -1)
        if n_copies == 1:
            values = flat[0][union]
        else:
            values = torch.cat([flat[k][mask[k]] for k in range(n_tickets)])
        arrays[f"{name}/union"] = np.packbits(union.numpy())
        arrays[f"{name}/masks"] = np.packbits(mask[:, union].numpy().ravel())
        arrays[f"{name}/values"] = _as_array(values)
    meta = {
        "format": COMPACT_FORMAT,
        "n_tickets": n_tickets,
        "n_copies": n_copies,
        "param_names": list(network.param_names),
        "prunable": list(network.prunable),
        "shapes": {name: list(weights[name].shape[1:]) for name in network.param_names},
    }
    return arrays, meta


def _unpack(bits, count: int, what: str) -> torch.Tensor:
    bits = np.asarray(bits, dtype=np.uint8).ravel()
    if len(bits) != -(-count // 8):
        raise ValueError(f"{what} holds {len(bits)} bytes, expected {-(-count // 8)}.")
    return torch.from_numpy(np.unpackbits(bits, count=count).astype(bool))


def _restore_prunable(arrays, name, shape, n_tickets, n_copies):
    """Dense ``(n_copies, *shape)`` weight and ``(n_tickets, *shape)`` mask of ``name``."""
    size = int(np.prod(shape))
    union = _unpack(arrays[f"{name}/union"], size, f"the union bitmap of {name!r}")
    n_union = int(union.sum())
    restricted = _unpack(arrays[f"{name}/masks"], n_tickets * n_union, f"the masks of {name!r}")
    restricted = restricted.reshape(n_tickets, n_union)
    mask = torch.zeros((n_tickets, size), dtype=torch.bool)
    mask[:, union] = restricted
    values = _as_tensor(arrays[f"{name}/values"]).reshape(-1)
    expected = n_union if n_copies == 1 else int(mask.sum())
    if len(values) != expected:
        raise ValueError(f"{name!r} holds {len(values)} kept values, expected {expected}.")
    weight = torch.zeros((n_copies, size), dtype=values.dtype)
    if n_copies == 1:
        weight[0, union] = values
    else:
        for k, part in enumerate(torch.split(values, mask.sum(1).tolist())):
            weight[k, mask[k]] = part
    return weight.reshape(n_copies, *shape), mask.reshape(n_tickets, *shape)


@torch.no_grad()
def restore_arrays(network, arrays: dict, meta: dict, device=None) -> None:
    """Load the output of :func:`compact_arrays` into ``network`` (weights and masks).

    ``network`` must have the same parameter names, prunable names and shapes; its weights
    are replaced (build any optimizer afterwards) and its mask buffers registered anew.

    Raises
    ------
    ValueError
        If the arrays do not fit the network.
    """
    if meta.get("format") != COMPACT_FORMAT:
        raise ValueError(
            f"Unknown compact network format {meta.get('format')!r}; this version of "
            f"sklearn-rtl reads format {COMPACT_FORMAT}."
        )
    if list(meta["param_names"]) != list(network.param_names) or list(meta["prunable"]) != list(
        network.prunable
    ):
        raise ValueError("The stored weights do not match the network's parameters.")
    n_tickets, n_copies = int(meta["n_tickets"]), int(meta["n_copies"])
    if n_tickets != network.n_tickets:
        raise ValueError(f"Stored {n_tickets} tickets, the network has {network.n_tickets}.")
    weights, holder = nn.ParameterDict(), nn.Module()
    own = dict(network.weights.items())  # empty in a pickled skeleton
    for name in network.param_names:
        shape = tuple(int(s) for s in meta["shapes"][name])
        if own and tuple(own[_key(name)].shape[1:]) != shape:
            raise ValueError(
                f"{name!r} was stored with shape {shape}, the network's is "
                f"{tuple(own[_key(name)].shape[1:])}."
            )
        if name in network.prunable:
            weight, mask = _restore_prunable(arrays, name, shape, n_tickets, n_copies)
            holder.register_buffer(_key(name), mask.to(device))
        else:
            weight = _as_tensor(arrays[f"{name}/dense"]).clone()
            if tuple(weight.shape) != (n_copies, *shape):
                raise ValueError(
                    f"{name!r} has shape {tuple(weight.shape)}, expected {(n_copies, *shape)}."
                )
        if own and weight.dtype != own[_key(name)].dtype:
            raise ValueError(
                f"{name!r} was stored as {weight.dtype}, the network's is {own[_key(name)].dtype}."
            )
        weights[_key(name)] = nn.Parameter(weight.to(device))
    network._modules["weights"] = weights
    network._modules["masks"] = holder


def _deflate(arrays: dict) -> dict:
    """Every array as ``(dtype name, shape, zlib-compressed bytes)``: the union bitmaps
    and the values' exponent bytes compress by 10-25 %."""
    out = {}
    for key, value in arrays.items():
        tensor = _as_tensor(value).contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        out[key] = (
            str(tensor.dtype).removeprefix("torch."),
            tuple(tensor.shape),
            zlib.compress(raw),
        )
    return out


def _inflate(encoded: dict) -> dict:
    """Inverse of :func:`_deflate`."""
    out = {}
    for key, (dtype, shape, data) in encoded.items():
        dtype = getattr(torch, dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"Unknown dtype for the stored array {key!r}.")
        raw = bytearray(zlib.decompress(data))
        out[key] = torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)
    return out


def available_device(device) -> torch.device:
    """``device``, or the CPU where torch cannot use that device on this machine (a model
    fitted on a GPU loads on a CPU-only machine, as skorch does for pickles)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count():
            return torch.device("cpu")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return torch.device("cpu")
    return device


def _stored_buffers(network) -> dict[str, torch.Tensor]:
    """The network's state besides its weights and masks (e.g. batch-norm statistics),
    named as ``state_dict`` names it."""
    state = network.state_dict(keep_vars=True)
    return {k: v for k, v in state.items() if not k.startswith(("weights.", "masks."))}


def encode_network(network) -> tuple[dict, dict]:
    """The fitted ticket network as tensors plus a plain description: what ``save`` writes
    and what a pickle of the network holds.

    Parameters
    ----------
    network : TicketNetwork

    Returns
    -------
    tensors : dict of str to Tensor
        ``param/<key>`` for every array of :func:`compact_arrays` and ``buffer/<name>``
        for every other entry of the network's ``state_dict`` (batch-norm statistics);
        contiguous, on the CPU.
    meta : dict
        JSON-able: ``class`` (the network's class name), ``compact`` (the description of
        :func:`compact_arrays`), ``buffers`` (``{name: shape}``) and ``device`` (where the
        weights live). :func:`check_network_meta` validates it.
    """
    arrays, compact = compact_arrays(network)
    tensors = {f"param/{key}": _as_tensor(value) for key, value in arrays.items()}
    buffers = {}
    for name, value in _stored_buffers(network).items():
        tensors[f"buffer/{name}"] = value.detach().cpu()
        buffers[name] = list(value.shape)
    weights = network.get_weights()
    device = next(iter(weights.values())).device if weights else torch.device("cpu")
    meta = {
        "class": type(network).__name__,
        "compact": compact,
        "buffers": buffers,
        "device": str(device),
    }
    return {key: value.contiguous() for key, value in tensors.items()}, meta


NETWORK_CLASSES = ("TicketNetwork", "TicketBatchNormNetwork")


def is_count(value, minimum: int = 0) -> bool:
    """A real ``int`` of at least ``minimum`` (a bool is not a count, though ``True == 1``)."""
    return type(value) is int and value >= minimum


def _is_shape(value) -> bool:
    return isinstance(value, list) and len(value) <= 8 and all(is_count(s) for s in value)


def _is_names(value) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(n, str) for n in value)
        and len(set(value)) == len(value)
    )


def _meta_problem(meta) -> str | None:
    """What is wrong with a network description, or None."""
    if not isinstance(meta, dict) or not {"class", "compact", "buffers"} <= set(meta):
        return "it is not a dict with class, compact and buffers"
    if set(meta) - {"class", "compact", "buffers", "device"}:
        return f"unknown entries {sorted(set(meta) - {'class', 'compact', 'buffers', 'device'})}"
    if meta["class"] not in NETWORK_CLASSES:
        return f"class {meta['class']!r} is not one of {list(NETWORK_CLASSES)}"
    compact = meta["compact"]
    keys = {"format", "n_tickets", "n_copies", "param_names", "prunable", "shapes"}
    if not isinstance(compact, dict) or set(compact) != keys:
        return f"compact must hold exactly {sorted(keys)}"
    if not (is_count(compact["format"]) and compact["format"] == COMPACT_FORMAT):
        return f"compact format {compact['format']!r} is not {COMPACT_FORMAT}"
    n_tickets, n_copies = compact["n_tickets"], compact["n_copies"]
    if not is_count(n_tickets, 1) or not (is_count(n_copies, 1) and n_copies in (1, n_tickets)):
        return f"n_tickets={n_tickets!r}, n_copies={n_copies!r} (positive ints, 1 or n_tickets)"
    names, shapes = compact["param_names"], compact["shapes"]
    if not (_is_names(names) and _is_names(compact["prunable"])):
        return "param_names and prunable must be lists of distinct names"
    if not set(compact["prunable"]) <= set(names):
        return "prunable names parameters that param_names lacks"
    if not isinstance(shapes, dict) or set(shapes) != set(names):
        return "shapes must give the shape of every parameter"
    buffers = meta["buffers"]
    if not all(_is_shape(s) for s in shapes.values()) or not isinstance(buffers, dict):
        return "a shape is not a list of non-negative ints"
    if not all(isinstance(k, str) and _is_shape(s) for k, s in buffers.items()):
        return "buffers must map names to shapes (lists of non-negative ints)"
    try:
        torch.device(meta.get("device", "cpu"))
    except (RuntimeError, TypeError):
        return f"device {meta['device']!r} is not a torch device"
    return None


def check_network_meta(meta) -> None:
    """Validate the description of :func:`encode_network`: every entry's type and range.

    Raises
    ------
    ValueError
        Naming the first invalid entry.
    """
    problem = _meta_problem(meta)
    if problem is not None:
        raise ValueError(f"The stored network description is invalid: {problem}.")


def _param_keys(compact: dict) -> set[str]:
    keys = set()
    for name in compact["param_names"]:
        parts = ("union", "masks", "values") if name in compact["prunable"] else ("dense",)
        keys.update(f"param/{name}/{part}" for part in parts)
    return keys


@torch.no_grad()
def decode_network(network, tensors: dict, meta: dict, device=None) -> None:
    """Load the output of :func:`encode_network` into ``network``, in place.

    ``network`` has the stored architecture: a freshly built network of the same class,
    template, ticket count and prunable names (``load``), or the skeleton a pickle holds.
    Its current weights, masks and buffers are replaced; where it has them, their shapes
    and dtypes must match the stored ones.

    Parameters
    ----------
    network : TicketNetwork
    tensors, meta : dict
        As :func:`encode_network` returns them.
    device : str or torch.device, default=None
        Where to put the tensors; by default the stored device, or the CPU where that
        device is not available here.

    Raises
    ------
    ValueError
        If the description is invalid or the tensors do not fit the network.
    """
    check_network_meta(meta)
    if meta["class"] != type(network).__name__:
        raise ValueError(f"A {meta['class']} was stored, not a {type(network).__name__}.")
    device = available_device(meta.get("device", "cpu") if device is None else device)
    buffers = {f"buffer/{name}" for name in meta["buffers"]}
    if set(tensors) != _param_keys(meta["compact"]) | buffers:
        raise ValueError("The stored tensors are not the ones the description lists.")
    arrays = {k.removeprefix("param/"): v for k, v in tensors.items() if k.startswith("param/")}
    restore_arrays(network, arrays, meta["compact"], device=device)
    own = _stored_buffers(network)
    if set(own) != set(meta["buffers"]):
        raise ValueError(
            f"The network has buffers {sorted(own)}, {sorted(meta['buffers'])} were stored."
        )
    for name, shape in meta["buffers"].items():
        value = tensors[f"buffer/{name}"]
        if not tuple(shape) == tuple(value.shape) == tuple(own[name].shape):
            raise ValueError(
                f"Buffer {name!r} has shape {tuple(value.shape)}, the network's "
                f"{tuple(own[name].shape)}."
            )
        if value.dtype != own[name].dtype:
            raise ValueError(f"Buffer {name!r} is {value.dtype}, the network's {own[name].dtype}.")
        prefix, _, attr = name.rpartition(".")
        network.get_submodule(prefix).register_buffer(attr, value.to(device).clone())


def _hollow(module: nn.Module, names: set, prefix: str = "") -> nn.Module:
    """A shallow copy of ``module`` in which every buffer in ``names`` (``state_dict``
    names) is a meta tensor of the same shape and dtype: the skeleton a pickle holds."""
    clone = object.__new__(type(module))
    vars(clone).update(_hollow_state(module, names, prefix))
    return clone


def _hollow_state(module: nn.Module, names: set, prefix: str = "") -> dict:
    state = dict(vars(module))
    state["_buffers"] = {
        attr: torch.empty_like(value, device="meta") if f"{prefix}{attr}" in names else value
        for attr, value in module._buffers.items()
    }
    state["_modules"] = {
        name: child if child is None else _hollow(child, names, f"{prefix}{name}.")
        for name, child in module._modules.items()
    }
    return state


def network_getstate(network) -> dict:
    """Pickle state of a :class:`TicketNetwork`: :func:`encode_network`'s tensors
    (zlib-compressed) and description under ``"_codec"``, and the network's skeleton (its
    attributes, without weights and masks, its other buffers as shape-only meta tensors).

    Call it from ``TicketNetwork.__getstate__``.
    """
    tensors, meta = encode_network(network)
    state = _hollow_state(network, set(meta["buffers"]))
    state["_modules"]["weights"] = nn.ParameterDict()
    state["_modules"]["masks"] = nn.Module()
    state.pop("_packed_masks", None)
    state.pop("_union_cache", None)  # a per-step cache of the training masks
    state["_codec"] = (_deflate(tensors), meta)
    return state


def network_setstate(network, state: dict) -> None:
    """Inverse of :func:`network_getstate`; call it from ``TicketNetwork.__setstate__``.

    The tensors go to the device they were on, or the CPU where it is not available. Also
    reads the states that sklearn-rtl 0.2 (``"_compact"``: compact arrays, buffers in the
    module tree) and 0.1.0 (dense weights, masks bit-packed under ``"_packed_masks"``)
    pickled, so models pickled by those versions load.
    """
    state = dict(state)
    codec = state.pop("_codec", None)
    compact = state.pop("_compact", None)
    packed = state.pop("_packed_masks", None)
    nn.Module.__setstate__(network, state)
    if codec is not None:
        tensors, meta = codec
        decode_network(network, _inflate(tensors), meta)
    elif compact is not None:  # sklearn-rtl 0.2
        arrays, meta = compact
        if meta.get("encoding") == "zlib":
            arrays = _inflate(arrays)
        device = available_device(meta.get("device", "cpu"))
        restore_arrays(network, arrays, meta, device=device)
    elif packed is not None:  # sklearn-rtl 0.1.0
        holder = nn.Module()
        device = next(iter(network.weights.values())).device
        for name, (shape, bits) in packed[0].items():
            count = int(np.prod(shape))
            mask = torch.from_numpy(np.unpackbits(bits, count=count).astype(bool))
            holder.register_buffer(_key(name), mask.reshape(tuple(shape)).to(device))
        network._modules["masks"] = holder


def compact_fitted_net(net, keep_batches: bool = False) -> None:
    """Make a fitted skorch net store only what prediction needs; call at the end of fit.

    Zeroes every weight that no ticket keeps (:func:`zero_unused_weights`), drops the
    optimizer (its ``param_groups`` would pickle the weight tensors again;
    ``net.initialize_optimizer()`` builds a fresh one), stores skorch's ``module``
    parameter in the same inner pickle as ``module_`` (they are one object; skorch
    pickled it twice) and, unless ``keep_batches``, drops the per-batch records of the
    history (epoch records stay).

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialized, with a :class:`TicketNetwork` as ``module_``.
    keep_batches : bool, default=False
    """
    zero_unused_weights(net.module_)
    net.optimizer_ = None
    attrs = list(getattr(net, "cuda_dependent_attributes_", []))
    if net.__dict__.get("module") is net.module_ and "module" not in attrs:
        net.cuda_dependent_attributes_ = [*attrs, "module"]
    if not keep_batches and getattr(net, "history", None) is not None:
        for epoch in net.history:
            if "batches" in epoch:
                epoch["batches"] = []
