"""Start a model from pretrained weights (`model.init_from`): a run's or a weights file's.

Every neural family shares this one function, called by the generated `train.py` after the
model is built. Weights are matched by network and layer name, read from Keras' weights
files directly (h5py): each weight-carrying object of a `.weights.h5` file is a group whose
`vars` subgroup holds its arrays and its name, under the model attribute of its network
(`encoder/layers/dense_1/vars`) or the model's own layer list (`layers/functional/...`).
The child's fresh weights are written in the same format, the matching arrays replaced by
the parent's, and the result loaded back with Keras, so Keras alone maps arrays to
variables.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import yaml

from gencompile.errors import RunError
from gencompile.files import atomic_write_json
from gencompile.parent_runs import WEIGHTS, InitFromError, run_problem, weights_problem
from gencompile.provenance import INIT_REPORT, parent_hashes
from gencompile.runtime import ema
from gencompile.runtime.contract import InitializedFromData

REPORT = INIT_REPORT  # beside metrics.json in the run folder
EMA_PREFIX = "ema_"  # an EMA copy of a network (a GAN's generator) follows its network


@dataclass(frozen=True)
class Unit:
    """One weight-carrying object of a weights file: its arrays' paths and shapes."""

    network: str
    layer: str  # names below the network, "/"-joined; "" for the network's own arrays
    paths: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def label(self) -> str:
        return f"{self.network}.{self.layer}" if self.layer else self.network


@dataclass(frozen=True)
class Mismatch:
    unit: str
    why: str


def load_pretrained(
    model: keras.Model, data: Any, config: dict[str, Any], run_dir: Path, spec: Path
) -> None:
    """Replace the model's fresh weights by the parent's where network and layer names
    match; raise a located RunError listing every mismatch when the config is strict, else
    leave mismatched layers fresh. Writes what was taken, what was left fresh and what of
    the parent was left behind to `run_dir/init_from.json`.

    A model initialised from data (actnorm, k-means) is initialised first, so that layers
    left fresh start as they would have; `fit` then skips that step.
    """
    if isinstance(model, InitializedFromData):
        model.initialize(data)
    model.initialized_from_parent = True  # read by training.fit: no second initialisation
    config = {**config, "where": spec_location(spec, ("model", "init_from"))}
    source = parent_weights_file(config)
    tokens = token_mapping(config, spec.parent)
    with tempfile.TemporaryDirectory() as scratch:
        parent_file = readable_weights(source, Path(scratch), config)
        child_file = Path(scratch) / "child.weights.h5"
        model.save_weights(child_file)
        merged = merge(parent_file, child_file, config, tokens)
        model.load_weights(child_file)
    for name in merged.averages:  # an average taken whole keeps averaging from there
        ema.started_from_average(getattr(model, name))
    record = {
        "source": {key: config[key] for key in ("run", "weights") if key in config},
        "taken": merged.taken,
        "fresh": [{"layer": m.unit, "why": m.why} for m in merged.fresh],
        "left_behind": [{"layer": m.unit, "why": m.why} for m in merged.left_behind],
        "parent": parent_hashes(config),
    }
    if tokens is not None:  # a language model on another vocabulary
        record["vocabulary"] = {"known": len(tokens.child_ids), "new": tokens.new}
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / REPORT, record)


def spec_location(spec: Path, path: tuple[str, ...]) -> str:
    """`spec.yaml:line:column` of a key of the spec, or the file alone (a key given with
    --set, or from a base spec)."""
    try:
        node = yaml.compose(spec.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return str(spec)
    mark = None
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return str(spec)
        found = [(k, v) for k, v in node.value if getattr(k, "value", None) == key]
        if not found:
            return str(spec)
        mark, node = found[0][0].start_mark, found[0][1]
    return str(spec) if mark is None else f"{spec}:{mark.line + 1}:{mark.column + 1}"


def parent_weights_file(config: dict[str, Any]) -> Path:
    """The weights file `init_from` names (a run's model.weights.h5), checked to exist (as
    the spec's checks do before training: gencompile.parent_runs)."""
    where = f"{config['where']}: model.init_from"
    if "run" in config:
        found = run_problem(str(config["run"]), str(config["family"]))
        if found is not None:
            raise RunError(f"{where}.run: {found[0]}: {found[1]}")
        return Path(config["run"]).expanduser() / WEIGHTS
    found = weights_problem(str(config["weights"]))
    if found is not None:
        raise RunError(f"{where}.weights: {found[0]}: {found[1]}")
    return Path(config["weights"]).expanduser()


def readable_weights(source: Path, scratch: Path, config: dict[str, Any]) -> Path:
    """A `.weights.h5` file that HDF5 opens: the source itself, or the weights inside a
    `.keras` archive. A damaged one is an InitFromError naming the source, so that `train`
    locates it at init_from and removes the run folder it built."""
    weights = source
    if source.name.endswith(".keras"):
        try:
            with zipfile.ZipFile(source) as archive:
                archive.extract("model.weights.h5", scratch)
        except (zipfile.BadZipFile, KeyError) as err:
            raise damaged(source, f"not a Keras archive with weights ({err})", config) from err
        weights = scratch / "model.weights.h5"
    try:
        h5py.File(weights, "r").close()
    except OSError as err:
        reason = f"not a Keras weights file (HDF5: {hdf5_reason(err)})"
        raise damaged(source, reason, config) from err
    return weights


def damaged(source: Path, what: str, config: dict[str, Any]) -> InitFromError:
    """The parent's weights file cannot be read: say which and what to do."""
    key = "run" if "run" in config else "weights"
    advice = (
        f"the run's weights are damaged: restore its {WEIGHTS} from a copy, or name another run"
        if key == "run"
        else "give a .weights.h5 or .keras file saved by Keras"
    )
    return InitFromError(
        str(config["where"]), [f"model.init_from.{key}: {source} is {what}"], advice
    )


def hdf5_reason(error: OSError) -> str:
    """HDF5's reason without h5py's wrapping: `file signature not found` out of
    `Unable to synchronously open file (file signature not found)`."""
    text = " ".join(str(error).split())
    inner = re.search(r"\((.+)\)$", text)
    return inner.group(1) if inner else text


def read_units(weights: h5py.File, own_weights: str | None) -> dict[tuple[str, str], Unit]:
    """Every weight-carrying object of a weights file by (network, layer). A network is the
    model attribute that holds it (`encoder`, `ema_generator`), or, for the model's own
    layer list, the layer's name (`network`, `coupling_1`). The model's own variables form
    the unit `own_weights` (a mixture's parameters), or are left out (settings)."""
    units: dict[tuple[str, str], Unit] = {}
    for chain, group in _named_groups(weights, (), top=True):
        unit = _unit(chain[0], "/".join(chain[1:]), group["vars"])
        if unit is not None:
            units[(unit.network, unit.layer)] = unit
    if own_weights and "vars" in weights:
        unit = _unit(own_weights, "", weights["vars"], scalars=False)
        if unit is not None:
            units[(own_weights, "")] = unit
    return units


def _named_groups(
    group: h5py.Group, chain: tuple[str, ...], top: bool
) -> Iterator[tuple[tuple[str, ...], h5py.Group]]:
    for key in sorted(group):
        child = group[key]
        if key == "vars" or not isinstance(child, h5py.Group):
            continue
        if key.endswith("optimizer"):
            continue  # optimizer state is the child's own (a VQ-VAE prior's has its own too)
        if "vars" in child:  # a Keras object: named by its attribute at the top
            name = child["vars"].attrs.get("name", key)
            label = key if top else (name.decode() if isinstance(name, bytes) else str(name))
            yield (*chain, label), child
            yield from _named_groups(child, (*chain, label), top=False)
        else:  # a container (`layers`)
            yield from _named_groups(child, chain, top=False)


def _unit(network: str, layer: str, variables: h5py.Group, scalars: bool = True) -> Unit | None:
    """The arrays of one object in Keras' order (vars/0, vars/1, ...); None without any.
    `scalars=False` leaves out 0-d values: a mixture's EM bookkeeping (the previous
    log-likelihood, a step count), which belongs to the new fit."""
    keys = sorted((k for k in variables if k.isdigit()), key=int)
    datasets = [variables[k] for k in keys if isinstance(variables[k], h5py.Dataset)]
    if not scalars:
        datasets = [d for d in datasets if d.shape != ()]
    if not datasets:
        return None
    return Unit(
        network, layer, tuple(d.name for d in datasets), tuple(tuple(d.shape) for d in datasets)
    )


@dataclass(frozen=True)
class Merged:
    """What `merge` did: the child's units taken, the child's units and networks left
    fresh, and the parent's units and networks this model has no place for."""

    taken: list[str]
    fresh: list[Mismatch]
    left_behind: list[Mismatch]
    averages: list[str]  # the EMA copies taken whole: the parent's average goes on


def merge(
    parent_file: Path,
    child_file: Path,
    config: dict[str, Any],
    tokens: TokenMapping | None = None,
) -> Merged:
    """Copy the parent's matching arrays into the child's weights file, in place. Raises
    RunError on a strict mismatch: a layer of a chosen network that does not match, or a
    layer (a network) of the parent this model lacks, whose successors would start from
    weights trained on its output. The child's networks the parent lacks start fresh."""
    where = str(config["where"])
    with h5py.File(parent_file, "r") as parent_h5, h5py.File(child_file, "r+") as child_h5:
        parent = read_units(parent_h5, config.get("own_weights"))
        child = read_units(child_h5, config.get("own_weights"))
        networks = chosen_networks(parent, child, config, where)
        taken, fresh = copy_matching(parent, child, networks, tokens, config, (parent_h5, child_h5))
    left = left_behind(parent, child, networks, config)
    if config["strict"] and (fresh or left):
        lines = [f"model.init_from: {m.unit}: {m.why}" for m in fresh + left]
        advice = (
            "make these layers match the parent's, rename them so that they start fresh, "
            "or set model.init_from.strict: false to start every mismatched layer fresh"
            + (" and leave the parent's extra layers behind" if left else "")
        )
        raise InitFromError(where, lines, advice)
    if not taken:
        nothing = "model.init_from: no layer of the parent matches this model's: nothing to take"
        raise InitFromError(where, [nothing])
    fresh += fresh_networks(parent, child, networks, config)
    return Merged(taken, fresh, left, averages_taken(child, taken))


def copy_matching(
    parent: dict[tuple[str, str], Unit],
    child: dict[tuple[str, str], Unit],
    networks: set[str],
    tokens: TokenMapping | None,
    config: dict[str, Any],
    files: tuple[h5py.File, h5py.File],
) -> tuple[list[str], list[Mismatch]]:
    """Copy each unit of the chosen networks from the parent's file into the child's; the
    units taken and the child's units that do not match."""
    parent_h5, child_h5 = files
    taken: list[str] = []
    fresh: list[Mismatch] = []
    for key, unit in child.items():
        if unit.network not in networks:
            continue
        axes = token_axes(config, unit) if tokens is not None else None
        if axes is not None and key in parent and tokens is not None:
            problem = remap_tokens(unit, parent[key], axes, tokens, parent_h5, child_h5)
        else:
            problem = compare(unit, parent.get(key), parent)
            if problem is None:
                for path, source in zip(unit.paths, parent[key].paths, strict=True):
                    child_h5[path][...] = np.asarray(parent_h5[source])
        if problem is not None:
            fresh.append(problem)
            continue
        taken.append(unit.label)
    return taken, fresh


def left_behind(
    parent: dict[tuple[str, str], Unit],
    child: dict[tuple[str, str], Unit],
    networks: set[str],
    config: dict[str, Any],
) -> list[Mismatch]:
    """The parent's layers of the chosen networks this model lacks, and (no `networks:`
    named) the parent's networks this model lacks: nothing takes their weights."""
    left = [
        Mismatch(
            unit.label,
            f"this model's {unit.network} has no layer '{unit.layer}' (the parent's has "
            f"shapes {_shapes(unit.shapes)}): the layers after it would start from weights "
            "trained on its output",
        )
        for key, unit in parent.items()
        if unit.network in networks and key not in child
    ]
    if config.get("networks") is None:
        left += [
            Mismatch(name, f"this model has no network '{name}' (the parent's is left behind)")
            for name in _networks(parent)
            if name not in _networks(child)
        ]
    return left


def fresh_networks(
    parent: dict[tuple[str, str], Unit],
    child: dict[tuple[str, str], Unit],
    networks: set[str],
    config: dict[str, Any],
) -> list[Mismatch]:
    """The child's networks that take nothing because the parent lacks them: all of them
    when no `networks:` are named, else the EMA copies of the named ones."""
    named = config.get("networks")
    candidates = (
        _networks(child)
        if named is None
        else [EMA_PREFIX + name for name in named if EMA_PREFIX + name in _networks(child)]
    )
    return [
        Mismatch(name, f"the parent has no network '{name}'")
        for name in candidates
        if name not in networks and name not in _networks(parent)
    ]


def averages_taken(child: dict[tuple[str, str], Unit], taken: list[str]) -> list[str]:
    """The child's EMA copies every unit of which was taken from the parent: they go on
    averaging from the parent's average (a copy partly fresh warms up as a new one)."""
    done = set(taken)
    return [
        name
        for name in _networks(child)
        if name.startswith(EMA_PREFIX)
        and all(unit.label in done for unit in child.values() if unit.network == name)
    ]


def _networks(units: dict[tuple[str, str], Unit]) -> list[str]:
    return list(dict.fromkeys(unit.network for unit in units.values()))


def chosen_networks(
    parent: dict[tuple[str, str], Unit],
    child: dict[tuple[str, str], Unit],
    config: dict[str, Any],
    where: str,
) -> set[str]:
    """The networks to take: those named (and their EMA copies), or every one both have.
    `where`: the location of model.init_from, for the errors."""
    in_child, in_parent = _networks(child), _networks(parent)
    named = config.get("networks")
    if named is None:
        common = {name for name in in_child if name in in_parent}
        if not common:
            line = (
                f"model.init_from: the parent's networks ({', '.join(in_parent) or 'none'}) "
                f"are not this model's ({', '.join(in_child)}): start from a model of this family"
            )
            raise InitFromError(where, [line])
        return common
    for i, name in enumerate(named):
        for side, names in (("this model", in_child), ("the parent", in_parent)):
            if name not in names:
                line = (
                    f"model.init_from.networks[{i}]: {side} has no network '{name}'; it has "
                    f"{', '.join(names) or 'none'} (name one of those)"
                )
                raise InitFromError(where, [line])
    ema = {EMA_PREFIX + name for name in named if EMA_PREFIX + name in in_child}
    return set(named) | {name for name in ema if name in in_parent}


@dataclass(frozen=True)
class TokenMapping:
    """The tokens both vocabularies hold, by their ids in each; the child's new tokens."""

    child_ids: tuple[int, ...]
    parent_ids: tuple[int, ...]
    new: list[str]


def token_mapping(config: dict[str, Any], project: Path) -> TokenMapping | None:
    """How a language model's vocabulary maps onto its parent run's, when they differ
    (None: the same vocabulary, or a parent without one, whose shapes must then match)."""
    vocabulary = config.get("vocabulary")
    if not vocabulary or "run" not in config:
        return None
    found = sorted(Path(config["run"]).expanduser().glob("*/vocabulary.json"))
    if not found:
        return None
    child = _tokens(project / vocabulary["file"])
    parent = _tokens(found[0])
    if child == parent:
        return None
    index = {token: i for i, token in enumerate(parent)}
    known = [(i, index[token]) for i, token in enumerate(child) if token in index]
    return TokenMapping(
        tuple(i for i, _ in known),
        tuple(j for _, j in known),
        [token for token in child if token not in index],
    )


def _tokens(path: Path) -> list[str]:
    return [str(token) for token in json.loads(path.read_text(encoding="utf-8"))["tokens"]]


def token_axes(config: dict[str, Any], unit: Unit) -> list[int] | None:
    """The token axis of each array of a token-indexed layer (the embedding, the logits)."""
    axes = config["vocabulary"]["axes"].get(unit.layer)
    return None if axes is None or len(axes) != len(unit.paths) else list(axes)


def remap_tokens(
    unit: Unit,
    match: Unit,
    axes: list[int],
    tokens: TokenMapping,
    parent_h5: h5py.File,
    child_h5: h5py.File,
) -> Mismatch | None:
    """Copy the parent's rows (or columns) of the tokens both vocabularies hold into the
    child's arrays; the child's new tokens keep their fresh rows."""
    for shape, other, axis in zip(unit.shapes, match.shapes, axes, strict=True):
        if _without(shape, axis) != _without(other, axis):
            return Mismatch(
                unit.label,
                f"the parent's weights have shapes {_shapes(match.shapes)}, this model's "
                f"{_shapes(unit.shapes)} (beyond the vocabulary's axis)",
            )
    for path, source, axis in zip(unit.paths, match.paths, axes, strict=True):
        values = np.asarray(child_h5[path])
        known = np.take(np.asarray(parent_h5[source]), tokens.parent_ids, axis=axis)
        index: list[Any] = [slice(None)] * values.ndim
        index[axis] = list(tokens.child_ids)
        values[tuple(index)] = known
        child_h5[path][...] = values
    return None


def _without(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1 :]


def compare(unit: Unit, match: Unit | None, parent: dict[tuple[str, str], Unit]) -> Mismatch | None:
    """Why the child's unit cannot take the parent's arrays, or None when it can."""
    if match is None:
        layers = sorted(u.layer for u in parent.values() if u.network == unit.network)
        return Mismatch(
            unit.label,
            f"the parent's {unit.network} has no layer '{unit.layer}' with weights (its "
            f"layers: {', '.join(layers) or 'none'}); this model's has shapes "
            f"{_shapes(unit.shapes)}",
        )
    if match.shapes != unit.shapes:
        return Mismatch(
            unit.label,
            f"the parent's weights have shapes {_shapes(match.shapes)}, this model's "
            f"{_shapes(unit.shapes)}",
        )
    return None


def _shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return " and ".join(str(tuple(shape)) for shape in shapes)
