"""Save and load trained models as self-describing folders.

A model folder holds::

    manifest.json        format, kind, constructor config, labels (class order), the exact
                         PdfParams and preprocessing, training description (preset, settings,
                         dataset source / counts / n), metrics, weight files with sha256,
                         pdfsg version, created
    weights-<i>.npz      networks: one state dict per ensemble member, parameter name ->
                         array (np.savez, read back with allow_pickle=False; no torch needed).
                         Folders written by earlier versions hold weights-<i>.pt instead
                         (torch.save of tensors only), still read with
                         torch.load(weights_only=True)
    coef.npz             logistic regression: coef (K, n_features), intercept (K,)
    history.json         learning curves (networks; optional)
    training_ids.txt.gz  what the model saw: one hashed structure id per line, sorted
                         (:func:`structure_id_hash`; augmented copies ``mp-1#aug2`` count as
                         their parent ``mp-1``), so ``evaluate`` can warn when test rows
                         overlap the training data (optional: older models lack it)

Nothing is pickled and nothing depends on the working directory: :func:`load_model` takes a
folder path or the name of a model shipped in ``pdfsg/pretrained/<name>/``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from pdfsg.errors import DatasetError, ModelError, ParamsError
from pdfsg.params import PdfParams

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "check_compatible",
    "convert_weights",
    "copy_model",
    "load_history",
    "load_model",
    "load_weights",
    "pretrained_dir",
    "read_manifest",
    "read_training_ids",
    "resolve_model_dir",
    "save_model",
    "save_weights",
    "structure_id_hash",
    "write_training_ids",
]

FORMAT = "pdfsg-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HISTORY = "history.json"
TRAINING_IDS = "training_ids.txt.gz"
DEFAULT_MODEL = "default"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PREPROCESSING = {
    "input": "X",
    "normalization": "minmax",
    "equation": "X = (G - min G) / (max G - min G), paper eq. 4, over the covered grid points",
    "function": "pdfsg.preprocess.prepare_input",
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version() -> str:
    from pdfsg import __version__

    return __version__


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_model(
    folder: str | os.PathLike[str],
    classifier: Any,
    *,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    history: dict[str, Any] | None = None,
    name: str | None = None,
) -> Path:
    """Write ``classifier`` (a :class:`~pdfsg.models.LogRegClassifier` or
    :class:`~pdfsg.models.NetClassifier`) into ``folder``.

    Parameters
    ----------
    folder : path
        Created if needed; files of the same names are replaced (the manifest last).
    training : dict, optional
        Preset, settings and dataset description (see :func:`pdfsg.train.train`).
    metrics : dict, optional
        E.g. ``{"split": "test", "n": ..., "top_k_accuracy": {"1": ..., ...}}``.
    history : dict, optional
        Learning curves, written to ``history.json``.
    name : str, optional
        A display name (default: the folder's name).

    Returns
    -------
    Path
        The folder.
    """
    from pdfsg.models import NET_KINDS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, str]] = []
    if classifier.kind == "logreg":
        path = folder / "coef.npz"
        np.savez(
            path,
            coef=np.asarray(classifier.coef, dtype=np.float32),
            intercept=np.asarray(classifier.intercept, dtype=np.float32),
        )
        files.append({"file": path.name, "sha256": _sha256(path), "role": "coefficients"})
    elif classifier.kind in NET_KINDS:
        for i, state in enumerate(classifier.state_dicts()):
            path = folder / f"weights-{i}.npz"
            save_weights(path, state)
            files.append({"file": path.name, "sha256": _sha256(path), "role": f"member {i}"})
    else:
        raise ModelError(f"cannot save a model of unknown kind {classifier.kind!r}")
    if history is not None:
        _atomic_write_text(folder / HISTORY, json.dumps(history, indent=1) + "\n")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name or folder.resolve().name,
        "kind": classifier.kind,
        "config": classifier.config,
        "labels": [int(v) for v in classifier.labels],
        "label_set": (training or {}).get("dataset", {}).get("label_set"),
        # a model of every group (pdfsg.train.select_groups): the fewest training structures
        # a group needed to be a class
        **{k: v for k, v in (training or {}).get("dataset", {}).items() if k == "min_per_group"},
        "params": classifier.params.to_dict(),
        "npoints": classifier.params.npoints,
        "variable_length": bool(classifier.variable_length),
        "preprocessing": PREPROCESSING,
        "ensemble": len(files) if classifier.kind != "logreg" else 1,
        "weights": files,
        "training": training or {},
        "metrics": metrics or {},
        "pdfsg_version": _version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return folder


def save_weights(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write one network's state dict (parameter name -> array) as an uncompressed ``.npz``
    of plain arrays (nothing pickled); written to a temporary name, then renamed."""
    path = Path(path)
    arrays = {k: np.asarray(v, order="C") for k, v in state.items()}  # 0-d stays 0-d
    bad = [k for k, v in arrays.items() if v.dtype == object]
    if bad:
        raise ModelError(f"cannot save non-numeric weights {bad[:3]}")
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """One network's state dict as NumPy arrays from a ``.npz`` (``allow_pickle=False``) or,
    for folders written by older pdfsg versions, a ``.pt`` file (``torch.load`` with
    ``weights_only=True``; needs torch).

    Raises
    ------
    ModelError
        One line, for a file that cannot be read as plain arrays.
    """
    path = Path(path)
    try:
        if path.suffix == ".pt":
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ValueError("not a state dict")
            return {str(k): v.detach().cpu().numpy() for k, v in state.items()}
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except ModuleNotFoundError:
        raise ModelError(f"{path}: reading old .pt weights needs torch") from None
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:100]
        raise ModelError(f"{path}: weight file is corrupted ({first})") from None


def pretrained_dir(name: str) -> Path:
    """Folder of the shipped model ``name`` inside the installed package (may not exist)."""
    from importlib import resources

    return Path(str(resources.files("pdfsg") / "pretrained" / name))


def resolve_model_dir(path_or_name: str | os.PathLike[str]) -> Path:
    """A model folder from a path (a folder holding ``manifest.json``) or a shipped name.

    An existing folder wins; otherwise a plain name (letters, digits, ``-_.``) is looked up
    in ``pdfsg/pretrained/``.

    Raises
    ------
    ModelError
        When neither exists.
    """
    p = Path(path_or_name)
    if p.is_dir():
        return p
    if p.is_file() and p.name == MANIFEST:
        return p.parent
    text = str(path_or_name)
    if _NAME_RE.match(text):
        d = pretrained_dir(text)
        if d.is_dir():
            return d
        from importlib import resources

        root = Path(str(resources.files("pdfsg") / "pretrained"))
        shipped = sorted(x.name for x in root.iterdir() if x.is_dir()) if root.is_dir() else []
        listing = ", ".join(shipped) if shipped else "none installed"
        raise ModelError(
            f"no model folder {text!r} and no pretrained model of that name (pretrained: {listing})"
        )
    raise ModelError(f"{text}: model folder not found")


def read_manifest(path_or_name: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked manifest of a model folder (no weights are read)."""
    folder = resolve_model_dir(path_or_name)
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelError(f"{folder}: no {MANIFEST}; not a pdfsg model folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: manifest is corrupted ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path}: not a pdfsg model manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format_version {manifest.get('format_version')!r} is not supported"
        )
    for key in ("kind", "config", "labels", "params", "weights"):
        if key not in manifest:
            raise ModelError(f"{path}: manifest lacks {key!r}")
    manifest["_folder"] = str(folder)
    return manifest


def _weight_path(folder: Path, entry: Any, verify: bool) -> Path:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise ModelError(f"{folder / MANIFEST}: malformed 'weights' entry")
    name = entry["file"]
    if "/" in name or "\\" in name or name.startswith("."):
        raise ModelError(f"{folder / MANIFEST}: weight file name {name!r} is not allowed")
    path = folder / name
    if not path.is_file():
        raise ModelError(f"{path}: weight file missing")
    if verify and entry.get("sha256") and _sha256(path) != entry["sha256"]:
        raise ModelError(f"{path}: weight file is corrupted (sha256 differs from the manifest)")
    return path


def load_model(
    path_or_name: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str = "cpu",
    verify: bool = True,
):
    """Rebuild a trained classifier from its folder (or shipped name).

    Parameters
    ----------
    path_or_name : path or str
        A model folder, or a name in ``pdfsg/pretrained/`` (default ``"default"``).
    device : str
        ``"cpu"``: networks predict with their NumPy forward (torch is not imported);
        another torch device (``"cuda"``...): with torch modules on it.
    verify : bool
        Check every weight file's sha256 against the manifest.

    Returns
    -------
    LogRegClassifier or NetClassifier
        With ``labels``, ``params``, ``manifest`` and ``predict_proba(X)``.

    Raises
    ------
    ModelError
        Missing or corrupted manifest or weights, unknown kind, inconsistent shapes.
    """
    from pdfsg.models import NET_KINDS, LogRegClassifier, NetClassifier

    manifest = read_manifest(path_or_name)
    folder = Path(manifest["_folder"])
    kind = manifest["kind"]
    try:
        params = PdfParams.from_dict(manifest["params"])
        labels = tuple(int(v) for v in manifest["labels"])
    except (ParamsError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder / MANIFEST}: invalid params or labels ({exc})") from None
    if kind == "ensemble":
        return _load_ensemble(folder, manifest, params, labels, device=device, verify=verify)
    weights = manifest["weights"]
    if not isinstance(weights, list) or not weights:
        raise ModelError(f"{folder / MANIFEST}: no weight files listed")
    config = manifest["config"]
    if kind == "logreg":
        path = _weight_path(folder, weights[0], verify)
        try:
            with np.load(path, allow_pickle=False) as z:
                coef, intercept = np.asarray(z["coef"]), np.asarray(z["intercept"])
        except Exception as exc:
            raise ModelError(
                f"{path}: coefficient file is corrupted ({type(exc).__name__})"
            ) from None
        from pdfsg.models.logreg import feature_dim

        try:
            d = feature_dim(params.npoints, str(config.get("feature")))
        except ValueError as exc:
            raise ModelError(f"{folder / MANIFEST}: {exc}") from None
        if config.get("multiclass", "multinomial") not in ("multinomial", "ovr"):
            raise ModelError(
                f"{folder / MANIFEST}: unknown multiclass {config.get('multiclass')!r} "
                "(expected 'multinomial' or 'ovr')"
            )
        if coef.shape != (len(labels), d) or intercept.shape != (len(labels),):
            raise ModelError(
                f"{path}: coefficient shape {coef.shape} does not match {len(labels)} labels "
                f"x {d} features"
            )
        return LogRegClassifier(
            labels=labels,
            params=params,
            coef=coef,
            intercept=intercept,
            config=config,
            manifest=manifest,
        )
    if kind not in NET_KINDS:
        raise ModelError(f"{folder / MANIFEST}: unknown model kind {kind!r}")
    if not device.startswith("cpu"):
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"device {device!r} requested but CUDA is not available")

    from pdfsg.models.numpy_net import network_config, numpy_network

    try:
        net_cfg = network_config(kind, config)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{folder / MANIFEST}: invalid {kind} config ({exc})") from None
    if net_cfg.n_classes != len(labels):
        raise ModelError(
            f"{folder / MANIFEST}: config has {net_cfg.n_classes} classes but {len(labels)} labels"
        )
    states = []
    for entry in weights:
        path = _weight_path(folder, entry, verify)
        state = load_weights(path)
        try:
            numpy_network(kind, config, state)  # every weight present, of the right shape
        except ValueError as exc:
            first = (str(exc).splitlines() or [""])[0][:100]
            raise ModelError(f"{path}: weights do not fit the {kind} config ({first})") from None
        states.append(state)
    return NetClassifier(
        kind=kind,
        labels=labels,
        params=params,
        config=config,
        states=states,
        manifest=manifest,
        device=device,
    )


def _load_ensemble(folder: Path, manifest: dict, params, labels, *, device: str, verify: bool):
    """An ``ensemble`` folder: its members are other model folders, named relative to it
    (``"../pdfsg-v2-r30"``), loaded and checked against the ensemble's grid; a member may
    rank a subset of the ensemble's labels (see :class:`pdfsg.models.EnsembleClassifier`)."""
    from pdfsg.models import EnsembleClassifier

    names = manifest.get("members")
    if not isinstance(names, list) or not names:
        raise ModelError(f"{folder / MANIFEST}: an ensemble lists no members")
    members = []
    for name in names:
        sub = (folder / str(name)).resolve()
        if not (sub / MANIFEST).is_file():
            raise ModelError(f"{folder / MANIFEST}: member {name!r} not found at {sub}")
        member = load_model(sub, device=device, verify=verify)
        nested = bool(set(map(int, member.labels)) & set(map(int, labels)))
        if not nested or not member.params.same_grid_and_physics(params):
            raise ModelError(
                f"{sub}: no group in common with, or another grid than, the ensemble {folder}"
            )
        members.append(member)
    return EnsembleClassifier(members, manifest)


def copy_model(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], name: str | None = None
) -> Path:
    """Copy a model folder's artifact files (manifest, weights, history; not the training
    checkpoint) into ``dst``, e.g. to ship it as ``src/pdfsg/pretrained/<name>/``.  The
    weights are verified first; the manifest's ``name`` becomes ``name`` (default: the
    destination folder's name)."""
    import shutil

    manifest = read_manifest(src)
    folder = Path(manifest.pop("_folder"))
    entries = manifest["weights"]
    paths = [_weight_path(folder, e, verify=True) for e in entries]
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copyfile(p, dst / p.name)
    from pdfsg.composition_memory import FILENAME as MEMORY

    for extra in (HISTORY, TRAINING_IDS, MEMORY):
        if (folder / extra).is_file():
            shutil.copyfile(folder / extra, dst / extra)
    manifest["name"] = name or dst.resolve().name
    _atomic_write_text(dst / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return dst


def structure_id_hash(structure_id: str) -> str:
    """The hash recorded for a structure id: the first 16 hex digits of the SHA-256 of its
    parent id (the id before any ``#``, so ``mp-1#aug2`` hashes as ``mp-1``)."""
    parent = str(structure_id).split("#", 1)[0].strip()
    return hashlib.sha256(parent.encode("utf-8")).hexdigest()[:16]


def write_training_ids(folder: str | os.PathLike[str], ids: Any, hashed: Any = None) -> Path:
    """Write the hashed ids of the structures a model was trained on beside its manifest
    (``training_ids.txt.gz``, one hash per line, sorted, unique), with ``hashed`` (ids
    already hashed, e.g. a fine-tuned model's start model's) added; returns the path."""
    import gzip

    hashes = sorted({structure_id_hash(i) for i in ids} | set(hashed or ()))
    path = Path(folder) / TRAINING_IDS
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="ascii", compresslevel=6) as fh:
        fh.write("".join(h + "\n" for h in hashes))
    os.replace(tmp, path)
    return path


def read_training_ids(path_or_name: str | os.PathLike[str]) -> set[str] | None:
    """The hashed training ids recorded beside a model (see :func:`write_training_ids`), or
    None when the model folder has none (models saved before pdfsg recorded them)."""
    import gzip

    path = resolve_model_dir(path_or_name) / TRAINING_IDS
    if not path.is_file():
        return None
    try:
        with gzip.open(path, "rt", encoding="ascii") as fh:
            return {line.strip() for line in fh if line.strip()}
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: training ids are corrupted ({type(exc).__name__})") from None


def convert_weights(path_or_name: str | os.PathLike[str]) -> list[Path]:
    """Rewrite a model folder's ``weights-<i>.pt`` files (older pdfsg versions; needs torch)
    as ``weights-<i>.npz`` in place: the manifest's weight entries get the new names and
    sha256, the .pt files are removed.  Returns the new files (empty: nothing to convert).
    """
    manifest = read_manifest(path_or_name)
    folder = Path(manifest.pop("_folder"))
    written = []
    old = []
    for entry in manifest["weights"]:
        path = _weight_path(folder, entry, verify=True)
        if path.suffix != ".pt":
            continue
        new = save_weights(path.with_suffix(".npz"), load_weights(path))
        entry.update(file=new.name, sha256=_sha256(new))
        written.append(new)
        old.append(path)
    if written:
        _atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        for path in old:
            path.unlink()
    return written


def load_history(path_or_name: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The learning curves saved beside a model (``history.json``), or None."""
    folder = resolve_model_dir(path_or_name)
    path = folder / HISTORY
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: history is corrupted ({type(exc).__name__})") from None
    return data if isinstance(data, dict) else None


def _describe_params_diff(a: PdfParams, b: PdfParams) -> str:
    da, db = a.to_dict(), b.to_dict()
    diffs = []
    for k in da:
        same = da[k] == db[k] if isinstance(da[k], str) else abs(da[k] - db[k]) <= 1e-9
        if not same:
            diffs.append(f"{k} {db[k]} vs {da[k]}")
    return ", ".join(diffs)


def check_compatible(
    classifier: Any,
    params: PdfParams,
    labels: tuple[int, ...] | list[int],
    *,
    what: str = "dataset",
    allow_physics_mismatch: bool = False,
) -> None:
    """Refuse data a model was not trained for.

    The r grid (rmin, rstep, npoints) must match always; the other PdfParams (Qmax, Qdamp,
    Uiso...) must match unless ``allow_physics_mismatch``; every label of the data must be
    one of the model's labels.

    Raises
    ------
    DatasetError
        One line naming what differs.
    """
    mp = classifier.params
    if not mp.same_grid_and_physics(params):
        diff = _describe_params_diff(mp, params)
        grid_differs = (
            mp.npoints != params.npoints
            or abs(mp.rmin - params.rmin) > 1e-9
            or abs(mp.rstep - params.rstep) > 1e-9
        )
        if grid_differs or not allow_physics_mismatch:
            raise DatasetError(
                f"{what} was built with other PdfParams than the model ({diff}; {what} vs model)"
            )
    extra = sorted(set(int(v) for v in labels) - set(classifier.labels))
    if extra:
        shown = ", ".join(str(v) for v in extra[:8]) + (" ..." if len(extra) > 8 else "")
        raise DatasetError(
            f"label set mismatch: {what} has {len(extra)} space group(s) the model does not "
            f"know ({shown})"
        )
