"""Rank space groups for a measured (or simulated) PDF with a trained model.

``Predictor.load()`` loads the shipped model family (``pdfsg/pretrained/``) or a model folder;
``predict(r, g)`` / ``predict_file(path)`` return a :class:`PredictionResult`: the space groups
ranked by probability with symbols and crystal systems, crystal-system probabilities, what
the model is least sure about, and one-line warnings.

A family holds models for different r ranges (e.g. 1.5–30 Å and 1.5–20 Å).  For each curve
the model with the longest r range that the data cover is used; data that stop before every
model's rmax are answered by a variable-length model when the family has one, with a
warning.  Nothing is zero-filled.

A composition (``composition="La0.72Ca0.28MnO3"``, or the one in the file's header) is
passed to models that use one (``uses_composition``); the result's ``data_settings`` say
which composition was used and where it came from, and ``notes`` say when the ranking
rests on G(r) alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from pdfsg.errors import CompositionError, ModelError, PdfFileError
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "predictions": [asdict(p) for p in self.predictions],
            "crystal_systems": self.crystal_systems,
            "uncertainty": self.uncertainty,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "model": self.model,
            "data_settings": dict(self.data_settings),
        }


def pretrained_root() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(files("pdfsg") / "pretrained"))


def example_files() -> list[Path]:
    """The example PDFs shipped with the package (simulated by pdfsg, see their headers)."""
    folder = Path(str(files("pdfsg") / "examples"))
    return sorted(folder.glob("*.gr"))


def resolve_model_paths(name_or_path: str | Path = DEFAULT_MODEL) -> list[Path]:
    """Model folders of a family name (``pretrained/<name>.json`` lists them), a shipped
    model name, or a folder path (a model folder, or a folder of model folders)."""
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
    raise ModelError(
        f"model {name_or_path!r} not found (no such folder, and not a shipped model in {root})"
    )


def crystal_system_probabilities(labels: tuple[int, ...], proba: np.ndarray) -> dict[str, float]:
    from pdfsg.spacegroups import CRYSTAL_SYSTEMS, get

    out = dict.fromkeys(CRYSTAL_SYSTEMS, 0.0)
    for sg, p in zip(labels, proba, strict=True):
        out[get(sg).crystal_system] += float(p)
    return {k: round(v, 6) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def describe_uncertainty(ranked: list[RankedGroup]) -> str:
    """One sentence on what the model is least sure about: the top two candidates and how
    they are related (group–subgroup relations explain most confusions)."""
    from pdfsg.spacegroups import relation

    if len(ranked) < 2:
        return "only one candidate"
    a, b = ranked[0], ranked[1]
    if a.probability >= 0.9:
        return f"confident: {a.symbol} ({a.space_group}) at {a.probability:.0%}"
    rel = relation(a.space_group, b.space_group)
    how = rel.detail if rel.kind != "unrelated" else "the two groups are not group-subgroup related"
    level = "low confidence; " if a.probability < LOW_CONFIDENCE else ""
    return (
        f"{level}unsure between {a.symbol} ({a.space_group}, {a.probability:.0%}) and "
        f"{b.symbol} ({b.space_group}, {b.probability:.0%}): {how}"
    )


def coherence_length_warning(r: np.ndarray, g: np.ndarray, source: str) -> str | None:
    """A warning when G(r) dies out (no long-range order): a nanoparticle, a cluster or a
    glass, for which a space group is ill-defined or poorly determined."""
    r = np.asarray(r)
    g = np.asarray(g)
    short = np.abs(g[(r >= 1.5) & (r <= 8.0)])
    if short.size == 0 or r[-1] < 18.0:
        return None
    ref = float(np.sqrt(np.mean(short**2)))
    window = (r >= r[-1] - 6.0) & (r <= r[-1])
    far = float(np.sqrt(np.mean(g[window] ** 2)))
    if ref > 0 and far / ref < COHERENCE_THRESHOLD:
        return (
            f"{source}: G(r) has almost died out by r = {r[-1] - 6.0:.0f}–{r[-1]:.0f} Å "
            f"({far / ref:.0%} of its short-range amplitude): the sample has little long-range "
            "order (nanoparticle, cluster or amorphous); space-group answers are unreliable"
        )
    return None


def composition_input(
    model: Any, composition: dict[str, float] | None, origin: str, source: str
) -> tuple[np.ndarray | None, dict[str, Any], str]:
    """What a model gets for a composition, and how the result reports it.

    Returns the ``comp`` row for ``model.predict_proba`` ((1, COMPOSITION_DIM), or None:
    unknown, or a model without composition input), the ``data_settings`` entries
    (``composition``: the formula as given, compact; ``composition_from``: ``"option"``,
    ``"header"`` or ``"none"``; ``composition_used``: whether the model took it) and a note.
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
    return comp, settings, f"ranked from G(r) and the composition {formula} (from the {origin})"


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

    def _choose(self, r_last: float) -> tuple[Any, bool]:
        """The model whose grid the data cover (longest first); else a variable-length one."""
        for m in self.models:
            if r_last >= m.params.r_grid()[-1] - 0.5 * m.params.rstep:
                return m, False
        for m in self.models:
            if m.variable_length:
                return m, True
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
            (``"option"`` or ``"header"``)
        top : how many space groups to return (all when <= 0)
        """
        from pdfsg.composition import as_composition
        from pdfsg.preprocess import prepare_input
        from pdfsg.spacegroups import get

        name = source or "data"
        amounts = None
        if composition is not None:
            amounts = as_composition(_plain(composition), f"{name}: composition")
        r = np.asarray(r, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if r.size == 0:
            raise PdfFileError(f"{name}: no data points")
        model, partial = self._choose(float(r[-1]))
        prepared = prepare_input(r, g, model.params, qmax_data=qmax, source=name)
        warnings = list(prepared.warnings)
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
        if getattr(model, "uses_composition", False):
            x = prepared.x[None, :]
            proba = model.predict_proba(x, start=prepared.start_index, comp=comp)[0]
        else:
            proba = model.predict_proba(prepared.x[None, :], start=prepared.start_index)[0]
        coherence = coherence_length_warning(prepared.r, prepared.g, name)
        if coherence:
            warnings.append(coherence)
        order = np.argsort(-proba, kind="stable")
        if top > 0:
            order = order[:top]
        ranked = []
        for i in order:
            sg = get(int(model.labels[i]))
            ranked.append(RankedGroup(sg.number, sg.symbol, sg.crystal_system, float(proba[i])))
        uncertainty = describe_uncertainty(ranked)
        if ranked and ranked[0].probability < LOW_CONFIDENCE:
            warnings.append(
                f"{name}: low confidence (top probability {ranked[0].probability:.0%}); "
                "consider all top candidates"
            )
        return PredictionResult(
            file=source,
            predictions=ranked,
            crystal_systems=crystal_system_probabilities(tuple(model.labels), proba),
            uncertainty=uncertainty,
            warnings=warnings,
            model=str(model.manifest.get("name", self.name)) if model.manifest else self.name,
            data_settings=comp_settings,
            notes=[comp_note],
            r=prepared.r,
            x=prepared.x,
        )

    def predict_file(
        self,
        path: str | Path,
        *,
        qmax: float | None = None,
        qdamp: float | None = None,
        radiation: str | None = None,
        top: int = 6,
        composition: str | Mapping[str, float] | None = None,
    ) -> PredictionResult:
        """Read a PDF file (.gr, .cgr, .fgr, two/three-column text) and rank space groups.

        ``qmax``, ``qdamp`` and ``radiation`` override what the file's header says; the
        values used are reported in ``data_settings`` (with where they came from) and
        checked against the range the model was trained on.
        """
        from pdfsg.augment import AugmentConfig
        from pdfsg.composition import as_composition
        from pdfsg.io import read_pdf_file

        # composition (formula or element -> amount) replaces the header's; a header
        # composition that cannot be read is a warning (ranked from G(r) alone), a given
        # one that cannot be read a CompositionError naming the file
        if composition is not None:
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
        result = self.predict(
            data.r,
            data.g,
            qmax=settings.get("qmax"),
            source=str(path),
            top=top,
            composition=composition if composition is not None else data.composition,
            composition_from="option" if composition is not None else "header",
        )
        if composition is None and data.composition_warning:
            result.warnings.append(f"{data.composition_warning}; ranked without it")
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


def _plain(composition: str | Mapping[str, float]) -> str | dict[str, float]:
    return composition if isinstance(composition, str) else dict(composition)
