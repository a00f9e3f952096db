"""Which training structures have a PDF like this one: a nearest-neighbour memory of the
training curves, combined with the network's answer.

Isostructural crystals (the same structure type with other elements) have PDFs of the same
peak pattern, stretched by the ratio of their lattice sizes and reweighted by their
scattering powers.  A network of a few hundred thousand weights learns ~100,000 structure
types only coarsely; the memory keeps every training curve and, for a query, finds the
``k`` most similar ones:

* similarity: the Pearson correlation of the two curves over a window of r (from
  ``window_min`` to what the query covers), maximised over a stretch ``s`` of the query's r
  axis (``G_query(r · s)`` for s in ``scales``, 0.90 … 1.10: a lattice 10 % larger or
  smaller), so that a sibling with other elements is found;
* probabilities: each neighbour votes for its space group with weight
  exp((ρ − 1) / tau), plus a floor of exp((floor_similarity − 1) / tau) spread over all
  groups, so that a query nothing resembles gets a flat answer.

A nanoparticle's G(r) dies out with r (the particle's shape function) and correlates
poorly with bulk curves: the nearest ones are then often structures whose long-range peaks
are weak for another reason (a light-element superstructure), not the particle's own. When
the particle's diameter is known (``diameters``, from
:func:`pdfsg.particle_size.estimate_diameter`), the pool's curves are compared as that
particle would show them: each times the spherical shape function of that diameter
(:func:`pdfsg.augment.particle_envelope`) about its zero line (the curve's mean beyond
``ZERO_FROM`` Å, where G(r) of a crystal oscillates about 0).

When the sample's composition is known, a second vote comes from the ``type_k`` most
similar curves among those of the same *formula type* (the stoichiometry with the elements
anonymised: AB2, ABC3; :func:`formula_type`): the nearest curves overall are often of
related structures with another stoichiometry (an ordered superstructure for an element),
the nearest of the query's own stoichiometry are its likeliest siblings.

The combination is a product of experts, like :mod:`pdfsg.composition_memory`'s:

    p(group | G, ...) ∝ p_model(group | G, ...) · p_memory(group | G)^power
                        · p_type(group | G, formula type)^type_power

``k``, ``tau``, the floor, ``power`` and the type vote's settings are chosen on rows that
neither the networks nor the memory saw (``tools/shipped_model.py pdf-memory``).  The
curves are stored as 8-bit integers of the min-max normalised G(r) on the model's grid
(``pdf_memory.npz``, plain arrays, no pickle); the correlation does not see the
quantisation (steps of 1/255 of the curve's range).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILENAME = "pdf_memory.npz"
DEFAULT_SCALES = tuple(round(0.90 + 0.01 * i, 2) for i in range(21))
_MIN_WINDOW_POINTS = 24
#: queries per call from which the search is two-stage (below, the exact one is cheaper)
TWO_STAGE_FROM = 48
#: [Å] beyond this r a stored curve's mean is its zero line (for the particle envelope)
ZERO_FROM = 10.0
#: particle diameters are rounded to steps of this ratio (one pool window per step)
DIAMETER_STEP = 1.05
#: pool windows kept at a time (the bulk one and a particle's, say)
_CACHED_WINDOWS = 2


def _zscore(A: np.ndarray) -> np.ndarray:
    """Rows (float32) centred and scaled to unit length (their dot products are
    correlations)."""
    A = np.array(A, dtype=np.float32)
    A -= A.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", A, A))[:, None]
    A /= np.clip(norms, 1e-9, None)
    return A


def _running_max(queries: np.ndarray, pool_t: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """max over the first axis of ``queries`` (s, b, w) @ ``pool_t`` (w, m): one product of
    every stretch of every query with a block of ``chunk`` pool curves at a time (the block
    is read once; the full (s, b, m) array would be hundreds of MB)."""
    s, b, w = queries.shape
    stacked = queries.reshape(s * b, w)
    out = np.empty((b, pool_t.shape[1]), np.float32)
    for j in range(0, pool_t.shape[1], chunk):
        out[:, j : j + chunk] = (stacked @ pool_t[:, j : j + chunk]).reshape(s, b, -1).max(axis=0)
    return out


def quantize(curves: np.ndarray) -> np.ndarray:
    """Curves (m, n) as uint8, each min-max scaled to 0 … 255."""
    curves = np.asarray(curves, dtype=np.float32)
    lo = curves.min(axis=1, keepdims=True)
    span = np.clip(curves.max(axis=1, keepdims=True) - lo, 1e-12, None)
    return np.round((curves - lo) / span * 255.0).astype(np.uint8)


#: species below this share of the atoms are left out of a formula type (dopants)
TYPE_MIN_FRACTION = 0.04
#: a composition off its type's stoichiometry by at most this L1 distance of the sorted
#: atom fractions (Fe0.95O: 0.03 from FeO) takes that type
TYPE_MATCH_DISTANCE = 0.06


def _integer_ratio(frac: np.ndarray) -> tuple[int, ...]:
    """Fractions (sorted, > 0) as the smallest whole-number ratio within 2 % (up to
    multiples of 12; beyond, the nearest ratio at 12)."""
    ratio = frac / frac.min()
    for m in range(1, 13):
        scaled = ratio * m
        if np.all(np.abs(scaled - np.round(scaled)) <= 0.02 * scaled):
            return tuple(int(x) for x in np.round(scaled))
    return tuple(int(x) for x in np.round(ratio * 12))


def _type_name(frac: np.ndarray) -> str:
    frac = np.sort(frac[frac > 0])[::-1]
    frac = frac[frac >= TYPE_MIN_FRACTION * frac.sum()]
    return ":".join(str(x) for x in _integer_ratio(frac))


def formula_type(comp: np.ndarray) -> str | None:
    """The formula type of a composition vector (:mod:`pdfsg.composition_vector`): its
    sorted atom fractions, species under ``TYPE_MIN_FRACTION`` left out, as the smallest
    whole-number ratio (``"3:1:1"`` for ABC3, ``"3:2"`` for A2B3, ``"4:3"`` for A3B4);
    None for an unknown composition."""
    from pdfsg.composition_vector import N_SORTED

    comp = np.asarray(comp, dtype=np.float64)
    if comp[-1] <= 0:
        return None
    return _type_name(comp[-1 - N_SORTED : -1])


def _type_fractions(name: str, size: int) -> np.ndarray:
    """The sorted atom fractions of a formula type name (``"3:1:1"``), zero-padded."""
    ratio = np.array([float(x) for x in name.split(":")])
    out = np.zeros(size)
    out[: ratio.size] = ratio / ratio.sum()
    return out


@dataclass
class PdfMemory:
    """Training curves (``curves``, (m, npoints) uint8 on the grid ``rmin + rstep · i``) and
    their class indices (``classes``)."""

    curves: np.ndarray
    classes: np.ndarray
    n_classes: int
    rmin: float
    rstep: float
    k: int = 20
    tau: float = 0.02
    power: float = 0.5
    floor_similarity: float = 0.5
    window_min: float = 2.0
    scales: tuple[float, ...] = DEFAULT_SCALES
    search_dims: int = 64
    shortlist: int = 512
    #: per curve, the index of its formula type in ``type_names`` (None: no type vote)
    types: np.ndarray | None = None
    type_names: tuple[str, ...] = ()
    type_k: int = 10
    type_tau: float = 0.04
    type_power: float = 0.0
    _pool: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.curves = np.asarray(self.curves)
        self.classes = np.asarray(self.classes, dtype=np.int64)
        if self.curves.ndim != 2 or self.curves.shape[0] != self.classes.size:
            raise ValueError("memory curves must be (m, npoints) with one class per curve")
        if self.classes.size and (self.classes.min() < 0 or self.classes.max() >= self.n_classes):
            raise ValueError("memory classes must lie in 0 … n_classes - 1")
        self.scales = tuple(float(s) for s in self.scales)
        if self.types is not None:
            self.types = np.asarray(self.types, dtype=np.int64)
            if self.types.shape != self.classes.shape:
                raise ValueError("memory types must hold one formula type per curve")
            self.type_names = tuple(str(t) for t in self.type_names)

    @property
    def npoints(self) -> int:
        return int(self.curves.shape[1])

    @property
    def r(self) -> np.ndarray:
        return self.rmin + self.rstep * np.arange(self.npoints)

    def with_settings(self, **settings: float) -> PdfMemory:
        """The same memory with other k / tau / power / floor_similarity / search_dims /
        shortlist (sharing the cached windows when the search is the same)."""
        fields = {"k": self.k, "tau": self.tau, "power": self.power,
                  "floor_similarity": self.floor_similarity, "search_dims": self.search_dims,
                  "shortlist": self.shortlist, "type_k": self.type_k,
                  "type_tau": self.type_tau, "type_power": self.type_power,
                  **settings}  # fmt: skip
        for name in ("k", "search_dims", "shortlist", "type_k"):
            fields[name] = int(fields[name])
        out = PdfMemory(self.curves, self.classes, self.n_classes, self.rmin, self.rstep,
                        window_min=self.window_min, scales=self.scales, types=self.types,
                        type_names=self.type_names, **fields)  # fmt: skip
        if (out.search_dims, out.shortlist) == (self.search_dims, self.shortlist):
            out._pool = self._pool
        return out

    # ------------------------------------------------------------------ search

    def window(self, start: int, length: int) -> np.ndarray | None:
        """Grid indices compared for a query covering grid indices ``start`` …
        ``start + length - 1``: every stretch of the query must stay inside what it
        covers.  None when fewer than 24 points remain (the memory then abstains)."""
        r = self.r
        stop = min(start + length, self.npoints) - 1
        if stop <= start:
            return None
        lo = max(self.window_min, r[start] / min(self.scales))
        hi = r[stop] / max(self.scales)
        idx = np.flatnonzero((r >= lo - 1e-9) & (r <= hi + 1e-9))
        return idx if idx.size >= _MIN_WINDOW_POINTS else None

    def _pool_window(self, idx: np.ndarray, diameter_nm: float | None = None) -> dict:
        """The pool's curves on the window, z-scored (``"Z"``, (m, w)); with a particle
        diameter (rounded, :func:`_diameter_step`) each curve times that particle's shape
        function about its zero line first (module docstring).  Cached, a few windows at a
        time; the entry is returned, not read back, so that a concurrent call (the web
        server's threads) never finds the cache emptied."""
        key = (int(idx[0]), int(idx[-1]), diameter_nm)
        entry = self._pool.get(key)
        if entry is None:
            part = self.curves[:, idx[0] : idx[-1] + 1]
            if diameter_nm is not None:
                from pdfsg.augment import particle_envelope

                shape = particle_envelope(self.r[idx[0] : idx[-1] + 1], 10.0 * diameter_nm)
                part = (part - self._zero_levels()[:, None]) * shape.astype(np.float32)
            entry = {"Z": _zscore(part)}
            windows = [k for k in list(self._pool) if isinstance(k, tuple)]  # a snapshot
            for old in windows[: max(0, len(windows) - _CACHED_WINDOWS + 1)]:
                self._pool.pop(old, None)
            self._pool[key] = entry
        return entry

    def _zero_levels(self) -> np.ndarray:
        """Per stored curve, the level of G = 0: its mean beyond ``ZERO_FROM`` Å (the
        curves are min-max scaled, so their zero is not stored)."""
        zeros = self._pool.get("_zeros")
        if zeros is None:
            beyond = self.r >= ZERO_FROM
            if beyond.sum() < 8:
                beyond = self.r >= self.r[self.npoints // 2]
            zeros = self.curves[:, beyond].mean(axis=1, dtype=np.float32)
            self._pool["_zeros"] = zeros
        return zeros

    def _axes(self, pool: dict) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``search_dims`` principal axes of a sample of the window's curves (w, d) and
        every curve's coordinates on them (m, d), computed on first use; None where the
        search stays exact (no axes asked for, or fewer curves than the shortlist)."""
        Z = pool["Z"]
        if not (0 < self.search_dims < Z.shape[1] and Z.shape[0] > self.shortlist):
            return None
        if "axes" not in pool:
            sample = Z[:: max(1, Z.shape[0] // 2048)]
            basis = np.linalg.svd(sample, full_matrices=False)[2][: self.search_dims].T
            basis = np.ascontiguousarray(basis)
            pool["axes"] = (basis, Z @ basis)
        return pool["axes"]

    def neighbours(
        self,
        X: np.ndarray,
        start: int = 0,
        batch: int = 64,
        diameters: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``k`` most similar training curves of each query row: (similarities,
        indices), each (n, k), best first; None when the queries cover too little r.
        ``X`` (n, L) holds G(r) on grid indices ``start`` … ``start + L - 1``;
        ``diameters`` (n,) [nm], NaN for bulk, the particle sizes of the rows (module
        docstring).

        With ``search_dims`` (the default) and at least ``TWO_STAGE_FROM`` queries (a
        series, a benchmark), the search is in two stages: the correlations
        of every curve approximated on the pool's ``search_dims`` principal axes shortlist
        ``shortlist`` curves, whose exact correlations then rank them
        (``benchmarks/pdf_memory_search.py`` measures what that changes)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float32))
        idx = self.window(start, X.shape[1])
        if idx is None or not self.classes.size:
            return None
        k = min(self.k, self.classes.size)
        sims = np.empty((X.shape[0], k), np.float32)
        best = np.empty((X.shape[0], k), np.int64)
        for d, rows in _by_diameter(diameters, X.shape[0]):
            sims[rows], best[rows] = self._search(X[rows], start, idx, d, k, batch)
        return sims, best

    def _search(
        self, X: np.ndarray, start: int, idx: np.ndarray, diameter_nm: float | None, k: int,
        batch: int,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """:meth:`neighbours` for rows of one particle diameter (None: bulk)."""
        pool = self._pool_window(idx, diameter_nm)
        Z = pool["Z"]
        # the two-stage search pays for its axes from a few dozen queries on
        axes = self._axes(pool) if X.shape[0] >= TWO_STAGE_FROM else None
        r_query = self.r[start : start + X.shape[1]]
        sims = np.empty((X.shape[0], k), np.float32)
        best = np.empty((X.shape[0], k), np.int64)
        for i in range(0, X.shape[0], batch):
            xb = X[i : i + batch]
            Q = self._stretched(xb, r_query, idx)
            cand = None
            if axes is None:
                top = _running_max(Q, Z.T)
            else:
                basis, coords = axes
                approx = _running_max(Q @ basis, coords.T)
                cand = np.argpartition(-approx, self.shortlist - 1, axis=1)[:, : self.shortlist]
                top = np.max(np.einsum("sbw,blw->sbl", Q, Z[cand]), axis=0)
            part = np.argpartition(-top, k - 1, axis=1)[:, :k]
            val = np.take_along_axis(top, part, axis=1)
            if cand is not None:
                part = np.take_along_axis(cand, part, axis=1)
            order = np.argsort(-val, axis=1)
            sims[i : i + batch] = np.take_along_axis(val, order, axis=1)
            best[i : i + batch] = np.take_along_axis(part, order, axis=1)
        return sims, best

    def _stretched(self, X: np.ndarray, r_query: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The queries stretched by each scale on the window, z-scored: (scales, n, w);
        float32, as float64 would make every product with the pool a float64 one."""
        return np.stack(
            [
                _zscore(np.stack([np.interp(self.r[idx] * s, r_query, x) for x in X]))
                for s in self.scales
            ]
        ).astype(np.float32)

    def type_neighbours(
        self,
        X: np.ndarray,
        comp: np.ndarray,
        start: int = 0,
        diameters: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``type_k`` most similar training curves of each query row among those of its
        formula type (exact search over them): (similarities, indices), each (n, type_k),
        -1 / index -1 where a row has no composition, a type the memory lacks, or fewer
        curves of it; None when the memory has no types or the queries cover too little r.
        ``diameters`` as for :meth:`neighbours`."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float32))
        idx = self.window(start, X.shape[1])
        if idx is None or self.types is None:
            return None
        r_query = self.r[start : start + X.shape[1]]
        wanted = self._type_codes(np.atleast_2d(comp))
        sims = np.full((X.shape[0], self.type_k), -1.0, np.float32)
        best = np.full((X.shape[0], self.type_k), -1, np.int64)
        for d, same_size in _by_diameter(diameters, X.shape[0]):
            for t, rows in _groups([int(t) for t in wanted[same_size]]):
                if t >= 0:
                    self._type_search(X, same_size[rows], t, r_query, idx, d, sims, best)
        return sims, best

    def _type_search(
        self, X: np.ndarray, rows: np.ndarray, t: int, r_query: np.ndarray, idx: np.ndarray,
        diameter_nm: float | None, sims: np.ndarray, best: np.ndarray,
    ) -> None:  # fmt: skip
        """:meth:`type_neighbours` for rows of one formula type and particle size, written
        into ``sims`` / ``best``."""
        Z = self._pool_window(idx, diameter_nm)["Z"]
        members = np.flatnonzero(self.types == t)
        k = min(self.type_k, members.size)
        top = _running_max(self._stretched(X[rows], r_query, idx), Z[members].T)
        part = np.argpartition(-top, k - 1, axis=1)[:, :k]
        val = np.take_along_axis(top, part, axis=1)
        order = np.argsort(-val, axis=1)
        sims[rows, :k] = np.take_along_axis(val, order, axis=1)
        best[rows, :k] = members[np.take_along_axis(part, order, axis=1)]

    def _type_codes(self, comp: np.ndarray) -> np.ndarray:
        """Per composition vector the index of its formula type in ``type_names``, -1 for
        none or an unknown composition.  A type the memory lacks is looked for as a solid
        solution (two species merged into one site: Ir0.8Rh0.2Te2 as IrTe2,
        (Ba0.5Sr0.5)TiO3 as BaTiO3), then off its stoichiometry (the nearest type within
        ``TYPE_MATCH_DISTANCE``)."""
        from pdfsg.composition_vector import N_SORTED

        code = {name: i for i, name in enumerate(self.type_names)}
        table = self._pool.get("_type_fractions")  # a local: the cache may be emptied meanwhile
        if table is None:
            table = np.stack([_type_fractions(n, N_SORTED) for n in self.type_names])
            self._pool["_type_fractions"] = table
        out = np.full(comp.shape[0], -1, dtype=np.int64)
        for i, c in enumerate(comp):
            name = formula_type(c)
            if name is None:
                continue
            frac = np.asarray(c[-1 - N_SORTED : -1], dtype=np.float64)
            frac = frac[frac > 0] / frac[frac > 0].sum()
            # the merge of the smallest pair first: substituents are usually the minority
            pairs = sorted(
                ((a, b) for a in range(frac.size) for b in range(a + 1, frac.size)),
                key=lambda ab: frac[ab[0]] + frac[ab[1]],
            )
            merged = [
                _type_name(np.append(np.delete(frac, [a, b]), frac[a] + frac[b])) for a, b in pairs
            ]
            found = [code[n] for n in [name, *merged] if n in code]
            if found:
                out[i] = found[0]
                continue
            padded = np.zeros(N_SORTED)
            padded[: frac.size] = np.sort(frac)[::-1]
            distance = np.abs(table - padded).sum(axis=1)
            if distance.min() <= TYPE_MATCH_DISTANCE:
                out[i] = int(distance.argmin())
        return out

    def type_vote(self, sims: np.ndarray, best: np.ndarray) -> np.ndarray:
        """(n, n_classes) probabilities from :meth:`type_neighbours` (its first ``type_k``,
        weights exp((ρ − 1) / type_tau), the same floor as :meth:`vote`); a flat row where a
        query has no neighbour of its type."""
        return self._vote(sims, best, self.type_k, self.type_tau)

    def _vote(self, sims: np.ndarray, best: np.ndarray, k: int, tau: float) -> np.ndarray:
        """The first ``k`` neighbours (index -1: none) vote exp((ρ − 1) / tau) each for
        their class, over a floor of exp((floor_similarity − 1) / tau) spread over all."""
        sims, best = sims[:, :k], best[:, :k]
        found = best >= 0
        w = np.where(found, np.exp((sims.astype(np.float64) - 1.0) / tau), 0.0)
        floor = np.exp((self.floor_similarity - 1.0) / tau) / self.n_classes
        p = np.full((sims.shape[0], self.n_classes), floor)
        rows = np.repeat(np.arange(sims.shape[0]), sims.shape[1])
        np.add.at(p, (rows, self.classes[np.where(found, best, 0)].ravel()), w.ravel())
        return p / p.sum(axis=1, keepdims=True)

    def proba(
        self, X: np.ndarray, start: int = 0, diameters: np.ndarray | None = None
    ) -> np.ndarray | None:
        """(n, n_classes) group probabilities of the query curves (module docstring), or
        None when they cover too little r."""
        found = self.neighbours(X, start, diameters=diameters)
        return None if found is None else self.vote(*found)

    def vote(self, sims: np.ndarray, best: np.ndarray) -> np.ndarray:
        """(n, n_classes) probabilities from the first ``k`` neighbours of
        :meth:`neighbours` (similarities, indices); a search for more neighbours serves
        every smaller ``k``."""
        return self._vote(sims, best, self.k, self.tau)

    def combine(
        self,
        proba_model: np.ndarray,
        X: np.ndarray,
        start: int = 0,
        comp: np.ndarray | None = None,
        diameters: np.ndarray | None = None,
    ) -> np.ndarray:
        """The product of experts (module docstring): the vote of the nearest curves, and for
        rows with a known composition (``comp``, composition vectors) the vote of the
        nearest of their formula type; the model's answer unchanged where the memory
        abstains.  ``diameters`` (n,) [nm], NaN for bulk: rows measured on particles are
        compared with the pool's curves as such particles would show them."""
        pm = self.proba(X, start, diameters)
        if pm is None:
            return proba_model
        out = product(proba_model, pm, self.power)
        if comp is not None and self.type_power > 0:
            found = self.type_neighbours(X, comp, start, diameters)
            if found is not None:
                out = product(out, self.type_vote(*found), self.type_power)
        return out

    # ------------------------------------------------------------------ storage

    def save(self, folder: str | Path) -> Path:
        """Write ``pdf_memory.npz`` into ``folder`` (not compressed: 8-bit curves shrink by
        3 % and would take 0.1 s longer to load)."""
        path = Path(folder) / FILENAME
        np.savez(
            path,
            curves=quantize(self.curves) if self.curves.dtype != np.uint8 else self.curves,
            classes=self.classes.astype(np.int16),
            n_classes=np.int64(self.n_classes),
            grid=np.array([self.rmin, self.rstep]),
            scales=np.array(self.scales),
            settings=np.array(
                [self.k, self.tau, self.power, self.floor_similarity, self.window_min]
            ),
            type_settings=np.array([self.type_k, self.type_tau, self.type_power]),
            **(
                {}
                if self.types is None
                else {"types": self.types.astype(np.int32), "type_names": np.array(self.type_names)}
            ),
        )
        return path

    @classmethod
    def load(cls, path: str | Path, npoints: int | None = None) -> PdfMemory:
        """The memory of ``path``, its curves cut to the first ``npoints`` grid points (a
        model of a shorter r range on the same grid shares the memory of a longer one)."""
        with np.load(path, allow_pickle=False) as z:
            curves, classes = z["curves"], z["classes"]
            n_classes = int(z["n_classes"])
            rmin, rstep = (float(v) for v in z["grid"])
            scales = tuple(float(s) for s in z["scales"])
            k, tau, power, floor, wmin = (float(v) for v in z["settings"])
            type_settings = z["type_settings"] if "type_settings" in z.files else [10, 0.04, 0]
            type_k, type_tau, type_power = (float(v) for v in type_settings)
            types = z["types"] if "types" in z.files else None
            type_names = tuple(z["type_names"].tolist()) if "type_names" in z.files else ()
        if npoints is not None:
            if npoints > curves.shape[1]:
                raise ValueError(f"{path}: holds {curves.shape[1]} grid points, not {npoints}")
            curves = curves[:, :npoints]
        return cls(curves, classes, n_classes, rmin, rstep, k=int(k), tau=tau, power=power,
                   floor_similarity=floor, window_min=wmin, scales=scales, types=types,
                   type_names=type_names, type_k=int(type_k), type_tau=type_tau,
                   type_power=type_power)  # fmt: skip


def _diameter_step(d: float) -> float:
    """A particle diameter [nm] rounded to a step of ``DIAMETER_STEP`` (one pool window
    serves every size within 2.5 %)."""
    return round(float(DIAMETER_STEP ** round(np.log(d) / np.log(DIAMETER_STEP))), 4)


def _by_diameter(diameters: np.ndarray | None, n: int) -> list[tuple[float | None, np.ndarray]]:
    """Row indices by rounded particle diameter (None: bulk, NaN or no diameters)."""
    if diameters is None:
        return [(None, np.arange(n))]
    d = np.asarray(diameters, dtype=np.float64).reshape(n)
    steps = [None if not (np.isfinite(v) and v > 0) else _diameter_step(v) for v in d]
    return _groups(steps)


def _groups(keys: list) -> list[tuple]:
    """Row indices per distinct key, in order of first appearance."""
    table: dict = {}
    for i, key in enumerate(keys):
        table.setdefault(key, []).append(i)
    return [(key, np.asarray(rows, dtype=np.int64)) for key, rows in table.items()]


def product(proba_model: np.ndarray, proba_memory: np.ndarray, power: float) -> np.ndarray:
    """p_model · p_memory^power, renormalised per row."""
    logp = np.log(np.clip(proba_model, 1e-12, None)) + power * np.log(proba_memory)
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def build_pdf_memory(
    curves: np.ndarray,
    classes: np.ndarray,
    n_classes: int,
    rmin: float,
    rstep: float,
    compositions: np.ndarray | None = None,
) -> PdfMemory:
    """A memory of training curves (G(r) or its min-max normalised form, (m, npoints) on the
    grid ``rmin + rstep · i``); rows with class -1 (groups the model lacks) are dropped.
    With ``compositions`` (their composition vectors, :mod:`pdfsg.composition_vector`) the
    memory also knows each curve's formula type (the type vote)."""
    classes = np.asarray(classes, dtype=np.int64)
    keep = classes >= 0
    types, names = None, ()
    if compositions is not None:
        keys = [formula_type(c) for c in np.asarray(compositions)[keep]]
        names = tuple(sorted({k for k in keys if k is not None}))
        code = {name: i for i, name in enumerate(names)}
        types = np.array([code.get(k, -1) for k in keys], dtype=np.int64)
    return PdfMemory(quantize(np.asarray(curves)[keep]), classes[keep], n_classes, rmin, rstep,
                     types=types, type_names=names)  # fmt: skip
