"""Rank space groups for a measured (or simulated) PDF with a trained model.

``Predictor.load()`` loads the shipped model family (``pdfsg/pretrained/``) or a model folder;
``predict(r, g)`` / ``predict_file(path)`` return a :class:`PredictionResult`: the space groups
ranked by probability with symbols and crystal systems, crystal-system probabilities, what
the model is least sure about, and one-line warnings.

A family holds models for different r ranges (e.g. 1.5–30 Å and 1.5–20 Å).  For each curve
the model with the longest r range that the data cover is used; data that stop before every
model's rmax are answered by the variable-length model of the shortest range when the family
has one, on the points they cover, with a warning.  Nothing is zero-filled.

A composition (``composition="La0.72Ca0.28MnO3"``, or the one in the file's header) is
passed to models that use one (``uses_composition``); the result's ``data_settings`` say
which composition was used and where it came from, and ``notes`` say when the ranking
rests on G(r) alone.

``label_set="paper45"`` ranks only the model's groups inside that set (their probabilities
renormalised to sum to 1; the crystal-system, Bravais and Laue probabilities, the sentence
and the prediction set follow from the restricted ones, with the model's own conformal
threshold); ``None`` or ``"all"`` ranks every group of the model.  The result's
``label_set`` says which was used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from pdfsg.errors import CompositionError, ModelError, PdfFileError, PdfsgError
from pdfsg.params import PdfParams

DEFAULT_MODEL = "default"
#: a top-1 probability below this is reported as a low-confidence answer
LOW_CONFIDENCE = 0.25
#: |G| beyond this r, relative to the signal at short r, below which the sample is said to
#: have no long-range order (nanoparticle, cluster, glass)
COHERENCE_THRESHOLD = 0.08


@dataclass(frozen=True)
class RankedGroup:
    space_group: int
    symbol: str
    crystal_system: str
    probability: float


@dataclass
class PredictionResult:
    """What :meth:`Predictor.predict` returns; ``to_dict()`` is the JSON form."""

    file: str | None
    predictions: list[RankedGroup]
    crystal_systems: dict[str, float]
    uncertainty: str
    warnings: list[str] = field(default_factory=list)
    model: str = ""
    data_settings: dict[str, Any] = field(default_factory=dict)
    #: plain remarks, not problems (e.g. that the ranking used G(r) alone)
    notes: list[str] = field(default_factory=list)
    r: np.ndarray | None = field(default=None, repr=False)
    x: np.ndarray | None = field(default=None, repr=False)
    #: every class's probability, in the order of ``labels`` (not in ``to_dict``)
    probabilities: np.ndarray | None = field(default=None, repr=False)
    labels: tuple[int, ...] = field(default=(), repr=False)
    #: Bravais-lattice and Laue-class probabilities (sums over the groups)
    bravais_lattices: dict[str, float] = field(default_factory=dict)
    laue_classes: dict[str, float] = field(default_factory=dict)
    #: the smallest set of groups holding the truth at ``level`` ("space_groups", "symbols",
    #: "level", "method"): conformal when the model is calibrated
    prediction_set: dict[str, Any] = field(default_factory=dict)
    #: the groups ranked: ``name`` (``"all"``: the model's own, or e.g. ``"paper45"``),
    #: ``n_groups`` (how many were ranked), ``model_groups`` (how many the model has)
    label_set: dict[str, Any] = field(default_factory=dict)
    #: spherical-particle diameter from the envelope of G(r) [nm]; None for bulk (or larger
    #: than the data can tell) and when the data cannot tell
    #: (:func:`pdfsg.particle_size.estimate_diameter`)
    particle_diameter_nm: float | None = None
    #: that estimate in full: diameter_nm, low_nm, high_nm (10–90 %), bulk, method; {} when
    #: there is none
    particle_size: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "predictions": [asdict(p) for p in self.predictions],
            "crystal_systems": self.crystal_systems,
            "bravais_lattices": self.bravais_lattices,
            "laue_classes": self.laue_classes,
            "prediction_set": dict(self.prediction_set),
            "label_set": dict(self.label_set),
            "uncertainty": self.uncertainty,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "model": self.model,
            "data_settings": dict(self.data_settings),
            "particle_diameter_nm": self.particle_diameter_nm,
            "particle_size": dict(self.particle_size),
        }


def pretrained_root() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(files("pdfsg") / "pretrained"))


def example_files() -> list[Path]:
    """The example PDFs shipped with the package (simulated by pdfsg, see their headers)."""
    folder = Path(str(files("pdfsg") / "examples"))
    return sorted(folder.glob("*.gr"))


#: other names of the shipped family ``default``
SHIPPED_ALIASES = ("shipped",)


def shipped_model_names() -> dict[str, list[str]]:
    """Every name that :func:`resolve_model_paths` takes for a shipped model: family files
    (``default``), their aliases (``shipped``), the family's own name (``pdfsg-v2``: the
    members' common name without the ``-r30`` / ``-r20`` range suffix) and each member."""
    import re

    root = pretrained_root()
    out: dict[str, list[str]] = {}
    for family in sorted(root.glob("*.json")):
        try:
            members = [str(n) for n in json.loads(family.read_text())["models"]]
        except (ValueError, KeyError, TypeError):
            continue
        out[family.stem] = members
        if family.stem == DEFAULT_MODEL:
            out.update({alias: members for alias in SHIPPED_ALIASES})
        stems = {re.sub(r"-r\d+$", "", n) for n in members}
        if len(stems) == 1 and stems != set(members):
            out.setdefault(stems.pop(), members)
    for folder in sorted(root.iterdir()):
        if (folder / "manifest.json").is_file():
            out.setdefault(folder.name, [folder.name])
    return out


def resolve_model_paths(name_or_path: str | Path = DEFAULT_MODEL) -> list[Path]:
    """Model folders of a family name (``pretrained/<name>.json`` lists them, also by
    :func:`shipped_model_names`' aliases), a shipped model name, or a folder path (a model
    folder, or a folder of model folders)."""
    path = Path(name_or_path)
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return [path]
        subs = sorted(p for p in path.iterdir() if (p / "manifest.json").is_file())
        if subs:
            return subs
        raise ModelError(f"{path}: no manifest.json in the folder or its subfolders")
    root = pretrained_root()
    family = root / f"{name_or_path}.json"
    if family.is_file():
        try:
            names = json.loads(family.read_text())["models"]
        except (ValueError, KeyError) as exc:
            raise ModelError(f"{family}: not a model family file ({exc})") from exc
        return [root / n for n in names]
    if (root / str(name_or_path) / "manifest.json").is_file():
        return [root / str(name_or_path)]
    shipped = shipped_model_names()
    if str(name_or_path) in shipped:
        return [root / n for n in shipped[str(name_or_path)]]
    raise ModelError(
        f"model {name_or_path!r} not found: not a folder, and not a shipped model "
        f"(shipped: {', '.join(shipped)})"
    )


def coherence_length_warning(
    r: np.ndarray, g: np.ndarray, source: str, diameter: Any = None
) -> str | None:
    """A warning when G(r) dies out (no long-range order): a nanoparticle, a cluster or a
    glass, for which a space group is ill-defined or poorly determined.  ``diameter`` (a
    :class:`pdfsg.particle_size.DiameterEstimate`) adds the particle's estimated size."""
    from pdfsg.particle_size import rms_between

    r = np.asarray(r)
    g = np.asarray(g)
    if not np.any((r >= 1.5) & (r <= 8.0)) or r[-1] < 18.0:
        return None
    ref = rms_between(r, g, 1.5, 8.0)
    far = rms_between(r, g, r[-1] - 6.0, r[-1])
    if ref > 0 and far / ref < COHERENCE_THRESHOLD:
        size = ""
        if diameter is not None and not diameter.bulk:
            size = f": {diameter.text()}"
        return (
            f"{source}: G(r) has almost died out by r = {r[-1] - 6.0:.0f}–{r[-1]:.0f} Å "
            f"({far / ref:.0%} of its short-range amplitude){size}: the sample has little "
            "long-range order (nanoparticle, cluster or amorphous); space-group answers are "
            "unreliable"
        )
    return None


def check_options(
    *,
    qmax: float | None = None,
    qdamp: float | None = None,
    top: int | None = None,
    min_top: int = 0,
) -> None:
    """Refuse out-of-range prediction options: ``qmax`` [1/Å] must be > 0, ``qdamp`` [1/Å]
    >= 0 (both finite), ``top`` >= ``min_top`` (the API's ``top = 0`` means every group; the
    CLI asks for ``min_top = 1``).  Raises :class:`~pdfsg.errors.ParamsError` whose ``field``
    names the option."""
    import math

    from pdfsg.errors import ParamsError

    if qmax is not None and not (math.isfinite(qmax) and qmax > 0):
        raise ParamsError(f"qmax must be > 0 [1/Å], got {qmax:g}", field="qmax")
    if qdamp is not None and not (math.isfinite(qdamp) and qdamp >= 0):
        raise ParamsError(f"qdamp must be >= 0 [1/Å], got {qdamp:g}", field="qdamp")
    if top is not None and top < min_top:
        raise ParamsError(
            f"top must be >= {min_top} (how many space groups to list), got {top}", field="top"
        )


def composition_input(
    model: Any, composition: dict[str, float] | None, origin: str, source: str
) -> tuple[np.ndarray | None, dict[str, Any], str]:
    """What a model gets for a composition, and how the result reports it.

    Returns the ``comp`` row for ``model.predict_proba`` ((1, COMPOSITION_DIM), or None:
    unknown, or a model without composition input), the ``data_settings`` entries
    (``composition``: the formula as given, compact; ``composition_from``: ``"option"``,
    ``"header"``, ``"title"`` (a sample title that is just the material's name, e.g.
    ``#S 1 silicon``) or ``"none"``; ``composition_used``: whether the model took it) and a
    note.
    """
    from pdfsg.composition import format_composition, fractions

    formula = format_composition(composition) if composition else None
    uses = bool(getattr(model, "uses_composition", False))
    manifest = getattr(model, "manifest", None) or {}
    name = str(manifest.get("name", "the model"))
    settings = {
        "composition": formula,
        "composition_from": origin if formula else "none",
        "composition_used": bool(uses and formula),
    }
    if not uses:
        given = f"; {formula} from the {origin} was not used" if formula else ""
        return None, settings, f"ranked from G(r) alone ({name} does not use composition{given})"
    if not formula or composition is None:
        note = "ranked from G(r) alone: no composition known (the model can use one)"
        return None, settings, note
    from pdfsg.composition_vector import encode

    try:
        comp = np.asarray(encode(fractions(composition)), dtype=np.float32)[None, :]
    except ValueError as exc:
        raise CompositionError(f"{source}: composition {formula}: {exc}") from exc
    note = f"ranked from G(r) and the composition {formula} (from the {origin})"
    if origin == "title":
        note += "; --composition replaces it, --no-composition ranks from G(r) alone"
    return comp, settings, note


@dataclass(frozen=True)
class PredictionError:
    """An input of :meth:`Predictor.predict_many` that could not be answered."""

    file: str | None
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "error": self.error}


@dataclass
class _Pending:
    """A curve prepared for its model, waiting for the network's probabilities."""

    model: Any
    prepared: Any  # pdfsg.preprocess.PreparedInput
    warnings: list[str]
    comp: np.ndarray | None
    comp_settings: dict[str, Any]
    comp_note: Any
    source: str | None
    name: str
    #: the particle-size estimate of the prepared curve (None: cannot tell)
    size: Any = None

    @property
    def diameter_nm(self) -> float:
        """The particle diameter [nm] the PDF memory compares with; NaN for bulk."""
        d = None if self.size is None else self.size.diameter_nm
        return float("nan") if d is None else float(d)


@dataclass
class _FileInput:
    """A file read for :meth:`Predictor.predict_file`, with the settings used."""

    path: str | Path
    data: Any  # pdfsg.io.MeasuredPDF
    settings: dict[str, Any]
    composition: Any

    def curve_options(self, top: int) -> dict[str, Any]:
        """The keyword arguments of :meth:`Predictor.predict` for this file's curve."""
        if self.composition is False:  # the caller said: G(r) alone, whatever the header
            composition, origin = None, "none"
        elif self.composition is not None:
            composition, origin = self.composition, "option"
        else:
            composition = self.data.composition
            origin = self.data.composition_from or "header"
        return {
            "qmax": self.settings.get("qmax"),
            "source": str(self.path),
            "top": top,
            "composition": composition,
            "composition_from": origin,
        }


class Predictor:
    """Space-group ranking with a family of trained models.

    Examples
    --------
    >>> p = Predictor.load()                       # doctest: +SKIP
    >>> p.predict(r, g).predictions[0].symbol      # doctest: +SKIP
    'Fm-3m'
    """

    def __init__(self, models: list[Any], name: str = "") -> None:
        if not models:
            raise ModelError("a Predictor needs at least one model")
        labels = {tuple(m.labels) for m in models}
        if len(labels) != 1:
            raise ModelError("the models of a family must share one label set")
        # longest r range first
        self.models = sorted(models, key=lambda m: -m.params.rmax)
        self.name = name
        self.labels: tuple[int, ...] = tuple(self.models[0].labels)

    @classmethod
    def load(cls, name_or_path: str | Path = DEFAULT_MODEL, device: str = "cpu") -> Predictor:
        from pdfsg.artifact import load_model

        paths = resolve_model_paths(name_or_path)
        return cls([load_model(p, device=device) for p in paths], name=str(name_or_path))

    @property
    def params(self) -> PdfParams:
        """Settings of the main (longest-range) model."""
        return self.models[0].params

    def choose_model(self, r_last: float) -> tuple[Any, bool]:
        """The model that answers data ending at ``r_last`` [Å]: the first (longest) whose
        grid they cover, else the variable-length one with the shortest grid on the points
        they cover (the least of its grid missing: on the mpts52 test rows cut at 8–18 Å
        the r ≤ 20 Å model beats the r ≤ 30 Å one at every cut, `benchmarks/short_range.py`);
        and whether the data cover only part of its grid."""
        for m in self.models:
            if r_last >= m.params.r_grid()[-1] - 0.5 * m.params.rstep:
                return m, False
        partial = [m for m in self.models if m.variable_length]
        if partial:
            return min(partial, key=lambda m: m.params.r_grid()[-1]), True
        return self.models[-1], True

    def predict(
        self,
        r: np.ndarray,
        g: np.ndarray,
        *,
        qmax: float | None = None,
        source: str | None = None,
        top: int = 6,
        composition: str | Mapping[str, float] | None = None,
        composition_from: str = "option",
        label_set: str | None = None,
    ) -> PredictionResult:
        """Rank the space groups for one curve G(r).

        Parameters
        ----------
        r : np.ndarray  [Å], strictly increasing
        g : np.ndarray  [Å⁻²]
        qmax : float or None  [1/Å], Qmax of the measurement when known
        source : name used in messages (the file name)
        composition : formula (``"La0.72Ca0.28MnO3"``, ``"Cd Se"``) or element -> amount;
            None when unknown.  Used by models with ``uses_composition``, reported in
            ``data_settings`` either way; one that cannot be read raises
            :class:`~pdfsg.errors.CompositionError` naming ``source``.
        composition_from : where the composition came from, for ``data_settings``
            (``"option"``, ``"header"`` or ``"title"``)
        top : how many space groups to return (0: all of them)
        label_set : ``"paper45"`` / ``"all230"`` ranks only the model's groups in that set,
            renormalised (see the module docstring); None or ``"all"``: every group

        Raises
        ------
        ParamsError
            ``qmax`` <= 0 or ``top`` < 0 (:func:`check_options`); an unknown ``label_set``
            or one that holds none of the model's groups (``field="label_set"``).
        PdfFileError
            The curve cannot be classified (too short, too coarse, not increasing...).
        """
        keep = self.restriction(label_set)
        pending = self._prepare_curve(
            r, g, qmax=qmax, source=source, top=top, composition=composition,
            composition_from=composition_from,
        )  # fmt: skip
        return self._finish_curve(pending, self._run([pending])[0], top, keep, label_set)

    def restriction(self, label_set: str | None) -> np.ndarray | None:
        """Class indices of the model's groups inside ``label_set`` (None: every group);
        :class:`~pdfsg.errors.ParamsError` (``field="label_set"``) for an unknown name or
        a set without any of the model's groups."""
        from pdfsg.hierarchy import restriction

        return restriction(self.labels, label_set)

    def _prepare_curve(
        self,
        r: np.ndarray,
        g: np.ndarray,
        *,
        qmax: float | None,
        source: str | None,
        top: int,
        composition: str | Mapping[str, float] | None,
        composition_from: str,
    ) -> _Pending:
        """Everything :meth:`predict` does before the network: checks, model choice,
        preprocessing, composition vector."""
        from pdfsg.composition import as_composition
        from pdfsg.preprocess import prepare_input
        from pdfsg.quality import noise_warning

        check_options(qmax=qmax, top=top)
        name = source or "data"
        amounts = None
        if composition is not None:
            amounts = as_composition(_plain(composition), f"{name}: composition")
        r = np.asarray(r, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if r.size == 0:
            raise PdfFileError(f"{name}: no data points")
        model, partial = self.choose_model(float(r[-1]))
        prepared = prepare_input(r, g, model.params, qmax_data=qmax, source=name)
        warnings = list(prepared.warnings)
        noise = noise_warning(r, g, qmax or model.params.qmax, name)
        if noise:
            warnings.append(noise)
        if partial and not model.variable_length:
            raise PdfFileError(
                f"{name}: data end at r = {r[-1]:.2f} Å, short of every model's range "
                f"(shortest ends at {self.models[-1].params.r_grid()[-1]:.2f} Å)"
            )
        if not partial:
            warnings = [w for w in warnings if "before the model grid's last point" not in w]
            if model is not self.models[0]:
                warnings.append(
                    f"{name}: data end at r = {r[-1]:.2f} Å; answered by the model trained "
                    f"for r up to {model.params.rmax:g} Å"
                )
        comp, comp_settings, comp_note = composition_input(model, amounts, composition_from, name)
        from pdfsg.particle_size import estimate_diameter

        size = estimate_diameter(prepared.r, prepared.g)
        return _Pending(
            model, prepared, warnings, comp, comp_settings, comp_note, source, name, size
        )

    def _run(self, pending: list[_Pending], batch_size: int = 256) -> list[np.ndarray]:
        """Class probabilities of prepared curves, in order: curves with the same model and
        the same grid points go through the network together, ``batch_size`` at a time."""
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, p in enumerate(pending):
            key = (id(p.model), p.prepared.start_index, p.prepared.n_covered)
            groups.setdefault(key, []).append(i)
        out: list[np.ndarray] = [np.empty(0)] * len(pending)
        for rows in groups.values():
            model = pending[rows[0]].model
            start = pending[rows[0]].prepared.start_index
            uses_comp = getattr(model, "uses_composition", False)
            sized = getattr(model, "pdf_memory", None) is not None
            for j in range(0, len(rows), batch_size):
                chunk = rows[j : j + batch_size]
                x = np.stack([pending[i].prepared.x for i in chunk])
                size = {"diameters": [pending[i].diameter_nm for i in chunk]} if sized else {}
                if uses_comp:
                    comps = [pending[i].comp for i in chunk]
                    comp = None
                    if any(c is not None for c in comps):
                        dim = model.composition_dim
                        comp = np.stack(
                            [np.zeros(dim, np.float32) if c is None else np.ravel(c) for c in comps]
                        )
                    proba = model.predict_proba(x, start=start, comp=comp, **size)
                else:
                    proba = model.predict_proba(x, start=start, **size)
                for i, row in zip(chunk, proba, strict=True):
                    out[i] = row
        return out

    def _finish_curve(
        self,
        pending: _Pending,
        proba: np.ndarray,
        top: int,
        keep: np.ndarray | None = None,
        label_set: str | None = None,
    ) -> PredictionResult:
        """Everything :meth:`predict` does after the network: the restriction to ``keep``
        (:meth:`restriction`), ranking, warnings, result."""
        from pdfsg.hierarchy import OWN_LABEL_SET, restrict
        from pdfsg.mixture import mixture_warning
        from pdfsg.spacegroups import get

        model_groups = len(pending.model.labels)
        labels, proba = restrict(pending.model.labels, proba, keep)
        model, prepared, warnings = pending.model, pending.prepared, list(pending.warnings)
        name, source = pending.name, pending.source
        comp_settings, comp_note = pending.comp_settings, pending.comp_note
        size = pending.size
        coherence = coherence_length_warning(prepared.r, prepared.g, name, size)
        if coherence:
            warnings.append(coherence)
        mixture = mixture_warning(prepared.r, prepared.g, name)
        if mixture:
            warnings.append(mixture)
        order = np.argsort(-proba, kind="stable")
        if top > 0:
            order = order[:top]
        ranked = []
        for i in order:
            sg = get(labels[i])
            ranked.append(RankedGroup(sg.number, sg.symbol, sg.crystal_system, float(proba[i])))
        summary = self._summary(model, labels, proba, pending.comp is not None)
        if ranked and ranked[0].probability < LOW_CONFIDENCE:
            warnings.append(
                f"{name}: low confidence (top probability {ranked[0].probability:.0%}); "
                "consider all top candidates"
            )
        return PredictionResult(
            file=source,
            predictions=ranked,
            crystal_systems=summary.crystal_system,
            uncertainty=summary.sentence,
            warnings=warnings,
            model=str(model.manifest.get("name", self.name)) if model.manifest else self.name,
            data_settings=comp_settings,
            notes=[comp_note],
            r=prepared.r,
            x=prepared.x,
            probabilities=np.asarray(proba, dtype=np.float64),
            labels=labels,
            bravais_lattices=summary.bravais_lattice,
            laue_classes=summary.laue_class,
            prediction_set={
                "space_groups": summary.prediction_set,
                "symbols": [get(n).symbol for n in summary.prediction_set],
                "level": summary.set_level,
                "method": summary.set_method,
            },
            label_set={
                "name": OWN_LABEL_SET if keep is None else str(label_set),
                "n_groups": len(labels),
                "model_groups": model_groups,
            },
            particle_diameter_nm=None if size is None else size.diameter_nm,
            particle_size={} if size is None else size.to_dict(),
        )

    @staticmethod
    def _summary(model: Any, labels: tuple[int, ...], proba: np.ndarray, composition_known: bool):
        """Levels, prediction set and sentence (:func:`pdfsg.hierarchy.summarise`) of the
        (possibly restricted) ``labels`` and ``proba``, with the model's conformal threshold
        for this input mode when it is calibrated."""
        from pdfsg.hierarchy import summarise

        cal = model.calibration(composition_known) if hasattr(model, "calibration") else None
        threshold = cal.get("conformal_threshold") if cal else None
        manifest = getattr(model, "manifest", None) or {}
        level = 1.0 - float((manifest.get("calibration") or {}).get("alpha", 0.1))
        return summarise(labels, proba, conformal_threshold=threshold, set_level=level)

    def predict_file(
        self,
        path: str | Path,
        *,
        qmax: float | None = None,
        qdamp: float | None = None,
        radiation: str | None = None,
        top: int = 6,
        composition: str | Mapping[str, float] | bool | None = None,
        label_set: str | None = None,
    ) -> PredictionResult:
        """Read a PDF file (.gr, .cgr, .fgr, two/three-column text) and rank space groups.

        ``composition`` (a formula or element -> amount) replaces the header's; None uses
        the header's when it has one; False ranks from G(r) alone whatever the header says.
        ``label_set`` restricts the ranking as in :meth:`predict` (checked before the file
        is read).

        ``qmax``, ``qdamp`` and ``radiation`` override what the file's header says; the
        values used are reported in ``data_settings`` (with where they came from) and
        checked against the range the model was trained on.  Without a Qmax in the header or
        the options the model's Qmax is assumed: ``data_settings`` says so
        (``qmax_from = "assumed (the model's)"``) and so does a warning.
        """
        self.restriction(label_set)
        fi = self._read_file(
            path, qmax=qmax, qdamp=qdamp, radiation=radiation, top=top, composition=composition
        )
        result = self.predict(fi.data.r, fi.data.g, label_set=label_set, **fi.curve_options(top))
        return self._finish_file(result, fi)

    def _read_file(
        self,
        path: str | Path,
        *,
        qmax: float | None,
        qdamp: float | None,
        radiation: str | None,
        top: int,
        composition: str | Mapping[str, float] | bool | None,
    ) -> _FileInput:
        """What :meth:`predict_file` does before :meth:`predict`: option checks, reading,
        the settings used and where they came from."""
        from pdfsg.composition import as_composition
        from pdfsg.io import read_pdf_file

        check_options(qmax=qmax, qdamp=qdamp, top=top)
        # composition (formula or element -> amount) replaces the header's; a header
        # composition that cannot be read is a warning (ranked from G(r) alone), a given
        # one that cannot be read a CompositionError naming the file
        if composition is not None and composition is not False:
            composition = as_composition(_plain(composition), f"{path}: composition")
        data = read_pdf_file(path)
        settings: dict[str, Any] = {}
        for key, flag, header in (
            ("qmax", qmax, data.qmax),
            ("qdamp", qdamp, data.qdamp),
            ("radiation", radiation, data.radiation),
        ):
            value = flag if flag is not None else header
            if value is not None:
                settings[key] = value
                settings[f"{key}_from"] = "option" if flag is not None else "header"
        return _FileInput(path, data, settings, composition)

    def _finish_file(self, result: PredictionResult, fi: _FileInput) -> PredictionResult:
        """What :meth:`predict_file` does after :meth:`predict`: the file's settings and
        their warnings."""
        from pdfsg.augment import AugmentConfig

        data, settings, composition, path = fi.data, fi.settings, fi.composition, fi.path
        if composition is None and data.composition_warning:
            result.warnings.append(f"{data.composition_warning}; ranked without it")
        if "qmax" not in settings:
            # the curve is band-limited at its own sampling limit; the model's Qmax is what
            # its termination ripples are taken to be
            settings["qmax"] = self.params.qmax
            settings["qmax_from"] = "assumed (the model's)"
            result.warnings.append(
                f"{path}: no Qmax in the header (or --qmax); assumed the model's "
                f"{self.params.qmax:g} 1/Å"
            )
        result.data_settings = {**settings, **result.data_settings}
        trained = AugmentConfig()  # the ranges the shipped models were trained on
        q = settings.get("qdamp")
        if q is not None and not trained.qdamp[0] <= q <= trained.qdamp[1]:
            result.warnings.append(
                f"{path}: Qdamp = {q:g} 1/Å is outside the range the model was trained on "
                f"({trained.qdamp[0]:g}-{trained.qdamp[1]:g})"
            )
        q = settings.get("qmax")
        if q is not None and q < trained.qmax[0]:
            result.warnings.append(
                f"{path}: Qmax = {q:g} 1/Å is below the lowest the model was trained on "
                f"({trained.qmax[0]:g})"
            )
        return result

    def predict_many(
        self,
        items: Iterable[str | Path | tuple[np.ndarray, np.ndarray]],
        *,
        qmax: float | None = None,
        qdamp: float | None = None,
        radiation: str | None = None,
        top: int = 6,
        composition: str | Mapping[str, float] | bool | None = None,
        batch_size: int = 256,
        label_set: str | None = None,
    ) -> list[PredictionResult | PredictionError]:
        """:meth:`predict_file` (paths) or :meth:`predict` (``(r, g)`` pairs) for many
        inputs, the networks run in batches: the same answers, in the same order.

        The options apply to every input.  An input that cannot be answered (unreadable
        file, unusable curve) becomes a :class:`PredictionError` in its place; the others
        are answered.  Invalid options (``top < 0``, a bad ``label_set``...) raise, as in
        :meth:`predict`.
        """
        check_options(qmax=qmax, qdamp=qdamp, top=top)
        keep = self.restriction(label_set)
        items = list(items)
        done: list[PredictionResult | PredictionError | None] = [None] * len(items)
        pending: list[_Pending] = []
        owners: list[tuple[int, _FileInput | None]] = []
        for k, item in enumerate(items):
            try:
                if isinstance(item, tuple):
                    fi = None
                    p = self._prepare_curve(
                        item[0], item[1], qmax=qmax, source=None, top=top,
                        composition=composition or None, composition_from="option",
                    )  # fmt: skip
                else:
                    fi = self._read_file(
                        item, qmax=qmax, qdamp=qdamp, radiation=radiation, top=top,
                        composition=composition,
                    )  # fmt: skip
                    p = self._prepare_curve(fi.data.r, fi.data.g, **fi.curve_options(top))
            except PdfsgError as exc:  # this input only; the others are answered
                done[k] = PredictionError(None if isinstance(item, tuple) else str(item), str(exc))
                continue
            pending.append(p)
            owners.append((k, fi))
        for (k, fi), p, proba in zip(owners, pending, self._run(pending, batch_size), strict=True):
            result = self._finish_curve(p, proba, top, keep, label_set)
            done[k] = result if fi is None else self._finish_file(result, fi)
        return [d for d in done if d is not None]


def _plain(composition: str | Mapping[str, float]) -> str | dict[str, float]:
    return composition if isinstance(composition, str) else dict(composition)
