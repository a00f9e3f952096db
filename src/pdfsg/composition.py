"""Read a sample's chemical composition: a formula typed by the user or found in a file header.

:func:`parse_composition` reads the formulas people write in PDF reduction programs and on
the command line::

    "Ni"  "Cd Se"  "In4Sn3O12"  "C 10 H 8"  "Ti O2"  "Ir0.80Rh0.20Te2"  "La0.72Ca0.28MnO3"
    "Au144S60C480H400"  "Au144 S60 C180"  "Ca(OH)2"  "[Fe(CN)6]"  "CuSO4·5H2O"  "CuSO4*5H2O"

Element symbols are case-sensitive (``Co`` is cobalt, ``CO`` carbon and oxygen); an amount
follows its symbol or closing bracket, with or without a space; spaces between symbols are
optional; ``·`` or ``*`` joins the parts of a hydrate or adduct, each with an optional
leading multiplier (``.`` does not: ``CuSO4.5H2O`` would be ambiguous); ``D`` and ``T`` are
read as hydrogen.  The result keeps the amounts **as written** (``"Ti O2"`` ->
``{"Ti": 1.0, "O": 2.0}``), in the order the elements first appear; :func:`fractions`
normalises them to atom fractions that sum to 1 and :func:`format_composition` writes the
compact formula back (``"TiO2"``).

:func:`composition_from_header` finds the composition in the header of a measured file:

* PDFgetX3 / xPDFsuite / PDFgetXgui: a ``composition = ...`` line (any of the forms above);
* PDFgetX2: the ``##### Sample_Setup`` table (``#L symbol valence fractions z ...``);
* PDFgetN: the ``##### Sample Material`` table (``Element relAtomNum atomMass ...``).

When none of these is there, :func:`composition_from_title` reads a sample title that is
nothing but a material's name: a SPEC ``#S 1 silicon`` line or a ``title = NaCl`` line whose
whole text is an element's English name or a formula (never a free-text title such as
``Ni at 300K``, nor an all-capitals abbreviation such as ``BTO`` or ``YBCO``).

Every problem raises :class:`~pdfsg.errors.CompositionError` with one line that names the
source (the option, or the file), e.g. ``--composition: cannot read 'Xx2': unknown element
'Xx'``.  This module imports nothing heavy: the element symbols are kept here, so reading a
composition costs nothing at start-up.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from pdfsg.errors import CompositionError

__all__ = [
    "ELEMENTS",
    "composition_from_header",
    "composition_from_title",
    "format_composition",
    "formula_compositions",
    "fractions",
    "parse_composition",
]

#: element symbols in order of atomic number (Z = 1 ... 118)
ELEMENTS: tuple[str, ...] = tuple(
    """
    H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As
    Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd
    Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am
    Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
    """.split()
)
#: English element names in the same order, for a sample title such as ``#S 1 silicon``
ELEMENT_NAMES: tuple[str, ...] = tuple(
    """
    hydrogen helium lithium beryllium boron carbon nitrogen oxygen fluorine neon sodium
    magnesium aluminium silicon phosphorus sulfur chlorine argon potassium calcium scandium
    titanium vanadium chromium manganese iron cobalt nickel copper zinc gallium germanium
    arsenic selenium bromine krypton rubidium strontium yttrium zirconium niobium molybdenum
    technetium ruthenium rhodium palladium silver cadmium indium tin antimony tellurium
    iodine xenon caesium barium lanthanum cerium praseodymium neodymium promethium samarium
    europium gadolinium terbium dysprosium holmium erbium thulium ytterbium lutetium hafnium
    tantalum tungsten rhenium osmium iridium platinum gold mercury thallium lead bismuth
    polonium astatine radon francium radium actinium thorium protactinium uranium neptunium
    plutonium americium curium berkelium californium einsteinium fermium mendelevium nobelium
    lawrencium rutherfordium dubnium seaborgium bohrium hassium meitnerium darmstadtium
    roentgenium copernicium nihonium flerovium moscovium livermorium tennessine oganesson
    """.split()
)
_SYMBOLS = frozenset(ELEMENTS)
_BY_NAME = {
    **dict(zip(ELEMENT_NAMES, ELEMENTS, strict=True)),
    "aluminum": "Al",
    "cesium": "Cs",
    "sulphur": "S",
}
_BY_LOWER = {s.lower(): s for s in ELEMENTS}
#: hydrogen isotopes (deuterated samples of neutron work) are read as hydrogen, as pymatgen does
_ISOTOPES = {"D": "H", "T": "H"}

#: longest formula accepted (characters): a header line, not a document
_MAX_LENGTH = 500
#: largest amount accepted for one element
_MAX_AMOUNT = 1e6

_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_SYMBOL = re.compile(r"[A-Z][a-z]?")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = set(_OPEN.values())
_JOINERS = {"·", "•", "*", "∙", "⋅"}


class _Reader:
    """Recursive-descent reader of one formula; raises CompositionError naming the source."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0

    def fail(self, why: str) -> CompositionError:
        shown = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return CompositionError(f"{self.source}: cannot read {shown!r}: {why}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def number(self) -> float | None:
        self.skip_space()
        m = _NUMBER.match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return float(m.group())

    def formula(self) -> list[tuple[str, float]]:
        """parts joined by '·' or '*', each with an optional leading multiplier"""
        items: list[tuple[str, float]] = []
        while True:
            factor = self.number()
            if factor is not None and factor <= 0:
                raise self.fail(f"multiplier {factor:g} must be > 0")
            part = self.sequence(closing=None)
            if not part:
                raise self.fail(self.unexpected() if self.pos < len(self.text) else "no element")
            items += [(el, n * (factor or 1.0)) for el, n in part]
            self.skip_space()
            if self.pos < len(self.text) and self.text[self.pos] in _JOINERS:
                self.pos += 1
                continue
            if self.pos < len(self.text):
                raise self.fail(self.unexpected())
            return items

    def sequence(self, closing: str | None) -> list[tuple[str, float]]:
        """element or bracketed groups, each followed by an optional amount"""
        items: list[tuple[str, float]] = []
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                if closing:
                    raise self.fail(f"missing {closing!r}")
                return items
            c = self.text[self.pos]
            if c in _OPEN:
                self.pos += 1
                inner = self.sequence(_OPEN[c])
                if not inner:
                    raise self.fail(f"empty {c}{_OPEN[c]}")
                group, label = inner, f"{c}...{_OPEN[c]}"
            elif c in _CLOSE:
                if c != closing:
                    raise self.fail(f"unmatched {c!r} at position {self.pos + 1}")
                self.pos += 1
                return items
            elif c.isalpha():
                sym = self.symbol()
                group, label = [(sym, 1.0)], sym
            else:
                return items  # a joiner, or something the caller reports
            amount = self.amount(label)
            items += [(el, n * amount) for el, n in group]

    def symbol(self) -> str:
        m = _SYMBOL.match(self.text, self.pos)
        if m is None:
            word = re.match(r"[^\W\d_]+", self.text[self.pos :])
            token = word.group() if word else self.text[self.pos]
            hint = _BY_LOWER.get(token.lower())
            why = f"{token!r} is not an element symbol"
            if hint:
                why += f" (symbols are capitalised: {hint})"
            raise self.fail(why)
        sym = m.group()
        if sym not in _SYMBOLS and sym[0] in _ISOTOPES and not sym[1:].isalpha():
            sym = _ISOTOPES[sym[0]]
        elif sym not in _SYMBOLS:
            raise self.fail(f"unknown element {sym!r}")
        self.pos = m.end()
        return sym

    def amount(self, label: str) -> float:
        start = self.pos
        self.skip_space()
        if self.text.startswith("-", self.pos) and _NUMBER.match(self.text, self.pos + 1):
            raise self.fail(f"negative amount of {label}; amounts must be > 0")
        self.pos = start
        value = self.number()
        if value is None:
            self.pos = start
            return 1.0
        if value <= 0:
            raise self.fail(f"amount of {label} is {value:g}; amounts must be > 0")
        if value > _MAX_AMOUNT:
            raise self.fail(f"amount of {label} ({value:g}) is too large")
        return value

    def unexpected(self) -> str:
        c = self.text[self.pos]
        if c == "-" and _NUMBER.match(self.text, self.pos + 1):
            return f"negative amount at position {self.pos + 1}; amounts must be > 0"
        return f"unexpected {c!r} at position {self.pos + 1}"


def parse_composition(text: str, source: str = "composition") -> dict[str, float]:
    """Read a chemical formula into element amounts.

    Parameters
    ----------
    text : str
        A formula such as ``"La0.72Ca0.28MnO3"``, ``"Cd Se"``, ``"C 10 H 8"``, ``"Ca(OH)2"``.
    source : str
        What to name in error messages: the option (``"--composition"``) or the file.

    Returns
    -------
    dict[str, float]
        Element symbol -> amount **as written** (not normalised; an element written twice
        is summed), in order of first appearance.  :func:`fractions` normalises it.

    Raises
    ------
    CompositionError
        One line naming ``source``: empty text, an unknown element (``"Xx2"``), a zero or
        negative amount (``"Ni0"``, ``"Ni-1"``), a stray character (``"Ni-"``), unbalanced
        brackets.
    """
    if not isinstance(text, str):
        raise CompositionError(f"{source}: a composition must be text, not {type(text).__name__}")
    stripped = text.strip().strip("\"'").strip()
    if not stripped:
        raise CompositionError(f"{source}: composition is empty")
    if len(stripped) > _MAX_LENGTH:
        raise CompositionError(f"{source}: composition is longer than {_MAX_LENGTH} characters")
    reader = _Reader(stripped, source)
    out: dict[str, float] = {}
    for element, amount in reader.formula():
        out[element] = out.get(element, 0.0) + amount
    return out


def as_composition(value: str | dict[str, float], source: str = "composition") -> dict[str, float]:
    """A formula string through :func:`parse_composition`, or a mapping checked the same way
    (known symbols, finite amounts > 0); raises :class:`CompositionError` naming ``source``."""
    if isinstance(value, str):
        return parse_composition(value, source)
    if not isinstance(value, dict) or not value:
        raise CompositionError(f"{source}: composition must be a formula or a non-empty mapping")
    out: dict[str, float] = {}
    for element, amount in value.items():
        if element not in _SYMBOLS:
            raise CompositionError(f"{source}: unknown element {element!r} in the composition")
        try:
            number = float(amount)
        except (TypeError, ValueError):
            raise CompositionError(
                f"{source}: amount of {element} is not a number ({amount!r})"
            ) from None
        if not math.isfinite(number) or number <= 0:
            raise CompositionError(f"{source}: amount of {element} is {number:g}; must be > 0")
        out[element] = out.get(element, 0.0) + number
    return out


def formula_compositions(formulas: Iterable[object]) -> list[dict[str, float]]:
    """Element -> amount of each formula (e.g. a dataset's reduced formulas), parsed once
    per distinct formula by :func:`parse_composition`."""
    cache: dict[str, dict[str, float]] = {}
    out = []
    for f in formulas:
        f = str(f)
        if f not in cache:
            cache[f] = {k: float(v) for k, v in parse_composition(f, "formula").items()}
        out.append(cache[f])
    return out


def fractions(composition: dict[str, float]) -> dict[str, float]:
    """Atom fractions (summing to 1) of a composition, in the same element order."""
    total = sum(composition.values())
    if not total > 0:
        raise CompositionError("composition: amounts sum to zero")
    return {el: n / total for el, n in composition.items()}


def _amount_text(n: float) -> str:
    if math.isclose(n, 1.0, rel_tol=0, abs_tol=1e-9):
        return ""
    if math.isclose(n, round(n), rel_tol=0, abs_tol=1e-9):
        return str(int(round(n)))
    return f"{n:.4f}".rstrip("0").rstrip(".")


def format_composition(composition: dict[str, float]) -> str:
    """The compact formula of a composition, amounts as given: ``{"Ti": 1, "O": 2}`` ->
    ``"TiO2"``, ``{"La": 0.72, "Ca": 0.28, "Mn": 1, "O": 3}`` -> ``"La0.72Ca0.28MnO3"``."""
    return "".join(f"{el}{_amount_text(n)}" for el, n in composition.items())


# --------------------------------------------------------------------------- file headers

_RE_KEY = re.compile(
    r"^[ \t]*[#!%]*[ \t]*composition[ \t]*[=:][ \t]*(?P<value>[^\n]*?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_RE_X2_TITLE = re.compile(r"^#+\s*Sample_Setup\b", re.IGNORECASE)
_RE_N_TITLE = re.compile(r"^#+\s*Sample\s+Material\b", re.IGNORECASE)
_RE_TABLE_END = re.compile(r"^\s*(?:#|$|[A-Za-z_]\w*\s*=)")


def composition_from_header(header: str, source: str = "header") -> dict[str, float] | None:
    """The composition written in a file header, or None when it gives none.

    Reads, in this order: a ``composition = ...`` line (PDFgetX3, xPDFsuite, PDFgetXgui,
    and files written by :func:`pdfsg.io.write_gr`); PDFgetX2's ``Sample_Setup`` table
    (columns ``symbol`` and ``fractions``); PDFgetN's ``Sample Material`` table (columns
    ``Element`` and ``relAtomNum``).  Amounts are returned as written (see
    :func:`parse_composition`); table rows with amount 0 are unused rows and are skipped.

    Raises
    ------
    CompositionError
        When the header has a composition that cannot be read; the message starts with
        ``source`` (the file name).
    """
    m = _RE_KEY.search(header)
    if m and m.group("value").strip().strip("\"'").strip():
        return parse_composition(m.group("value"), f"{source}: composition in the header")
    lines = header.splitlines()
    for title, symbol_col, amount_col in (
        (_RE_X2_TITLE, "symbol", "fractions"),
        (_RE_N_TITLE, "element", "relatomnum"),
    ):
        for i, line in enumerate(lines):
            if title.match(line.strip()):
                found = _table(lines, i + 1, symbol_col, amount_col, source)
                if found is not None:
                    return found
    return None


def _table(
    lines: list[str], start: int, symbol_col: str, amount_col: str, source: str
) -> dict[str, float] | None:
    """Rows of a ``symbol ... amount`` table whose column-name line comes right after
    ``start`` (``#L symbol valence fractions ...`` or ``Element relAtomNum ...``)."""
    if start >= len(lines):
        return None
    names = lines[start].strip().lstrip("#").strip()
    names = names[1:] if names[:1] == "L" and names[1:2].isspace() else names
    cols = [c.lower() for c in names.split()]
    if symbol_col not in cols or amount_col not in cols:
        return None
    k_sym, k_amt = cols.index(symbol_col), cols.index(amount_col)
    where = f"{source}: {amount_col} table in the header"
    out: dict[str, float] = {}
    for line in lines[start + 1 :]:
        if _RE_TABLE_END.match(line):
            break
        fields = line.split()
        if len(fields) <= max(k_sym, k_amt):
            break
        raw = fields[k_sym]
        symbol = _BY_LOWER.get(raw.lower()) or _ISOTOPES.get(raw.upper())
        if symbol is None:
            raise CompositionError(f"{where}: unknown element {raw!r}")
        try:
            amount = float(fields[k_amt])
        except ValueError:
            raise CompositionError(
                f"{where}: amount of {symbol} is not a number ({fields[k_amt]!r})"
            ) from None
        if not math.isfinite(amount) or amount < 0:
            raise CompositionError(f"{where}: amount of {symbol} is {amount:g}; must be > 0")
        if amount > 0:
            out[symbol] = out.get(symbol, 0.0) + amount
    if not out:
        return None
    return out


_RE_TITLE = re.compile(
    r"^[ \t]*(?:#S[ \t]+\d+[ \t]+|[#!%]*[ \t]*title[ \t]*[=:][ \t]*)(?P<value>[^\n]*?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


def composition_from_title(header: str) -> tuple[dict[str, float], str] | None:
    """The composition a header's sample title names, and the title; None when no title is
    just a material's name.

    A title is a SPEC scan line ``#S 1 silicon`` or a ``title = ...`` line (PDFgetX2's
    ``title=``).  It is read when its whole text is an element's English name
    (``silicon``, ``Nickel``; ``aluminum``, ``cesium`` and ``sulphur`` too) or a formula
    :func:`parse_composition` reads (``NaCl``, ``CdSe``, ``La0.7Ca0.3MnO3``), except an
    all-capitals run of letters (``BTO``, ``YBCO``, ``CO``: abbreviations more often than
    formulas) and formulas with ``D`` or ``T`` (isotopes, or the T of an abbreviation).
    Free text (``X-ray PDF``, ``Ni at 300K``) is never read.
    """
    for m in _RE_TITLE.finditer(header):
        title = m.group("value").strip().strip("\"'").strip().rstrip(".")
        found = _title_formula(title)
        if found is not None:
            return found, title
    return None


def _title_formula(title: str) -> dict[str, float] | None:
    if not title or len(title) > 100:
        return None
    symbol = _BY_NAME.get(title.lower())
    if symbol is not None:
        return {symbol: 1.0}
    letters = re.sub(r"[^A-Za-z]", "", title)
    if not letters or (letters.isupper() and len(letters) > 1 and not re.search(r"\d", title)):
        return None
    if set(_SYMBOL.findall(title)) & set(_ISOTOPES):
        return None
    try:
        return parse_composition(title, "title")
    except CompositionError:
        return None
