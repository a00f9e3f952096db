"""Generate ``src/pdfsg/data/spacegroups.json``: the 230 space groups and their maximal subgroups.

Run once (needs spglib and pyxtal; the package reads the JSON without them)::

    python tools/make_spacegroup_table.py            # writes the package's table
    python tools/make_spacegroup_table.py --check    # exits 1 if the stored table is stale

Sources
-------
- spglib's database of the 530 Hall settings: for each space-group number the first Hall
  number is the standard setting (ITA; origin choice 1 where there are two; hexagonal axes
  for the rhombohedral groups). It gives the short Hermann-Mauguin symbol in spglib's plain
  text (``P2_1/c``, ``Cmce``), the point group, and the symmetry operations of the
  conventional cell, whose count is the group's ``order`` (the multiplicity of the general
  position). The short symbols of the other settings (``P2_1/n``, ``Pbnm``...) and the
  pre-2002 symbols (``Cmca`` for ``Cmce``) are kept as ``settings`` so that
  :func:`pdfsg.spacegroups.get` can read them.
- pyxtal's tables of maximal subgroups (from the Bilbao Crystallographic Server):
  ``Group(n).get_max_t_subgroup()`` (translationengleiche) and ``get_max_k_subgroup()``
  (klassengleiche). pyxtal lists one row per conjugacy class or orientation; we keep the
  distinct (subgroup number, index) pairs. The isomorphic k-subgroups form infinite series
  that pyxtal cuts at small indices (2, 3, 5, 7, 9...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "pdfsg" / "data" / "spacegroups.json"

#: Pre-2002 symbols with the "e" glide written as a or b (ITA 5th ed. replaced them).
OLD_SYMBOLS = {39: ["Abm2"], 41: ["Aba2"], 64: ["Cmca"], 67: ["Cmma"], 68: ["Ccca"]}


def crystal_system(number: int) -> str:
    """The crystal system of space group ``number`` (1-230), from the ITA number ranges."""
    for last, name in (
        (2, "triclinic"),
        (15, "monoclinic"),
        (74, "orthorhombic"),
        (142, "tetragonal"),
        (167, "trigonal"),
        (194, "hexagonal"),
        (230, "cubic"),
    ):
        if number <= last:
            return name
    raise ValueError(f"no space group {number}")


def _pairs(table: dict) -> list[list[int]]:
    return sorted(
        {(int(n), int(i)) for n, i in zip(table["subgroup"], table["index"], strict=True)}
    )


def build() -> dict:
    """The table as a JSON-ready dict (calls spglib and pyxtal)."""
    import spglib
    from pyxtal.symmetry import Group

    first_hall: dict[int, int] = {}
    settings: dict[int, list[str]] = {n: [] for n in range(1, 231)}
    for hall in range(1, 531):
        sg = spglib.get_spacegroup_type(hall)
        first_hall.setdefault(sg.number, hall)
        short = sg.international_short
        if crystal_system(sg.number) == "monoclinic":
            # spglib writes every monoclinic setting as the standard short symbol ("P2_1/c"
            # for "P 1 2_1/n 1"); the setting's own short symbol drops the 1s: "P2_1/n".
            short = "".join(t for t in sg.international_full.split() if t != "1")
        if short not in settings[sg.number]:
            settings[sg.number].append(short)

    groups = []
    for number in range(1, 231):
        hall = first_hall[number]
        sg = spglib.get_spacegroup_type(hall)
        order = len(spglib.get_symmetry_from_database(hall)["rotations"])
        group = Group(number)
        if len(group[0]) != order:  # pyxtal's general Wyckoff position
            raise RuntimeError(f"order of {number}: spglib {order}, pyxtal {len(group[0])}")
        symbol = sg.international_short
        others = [s for s in settings[number] if s != symbol] + OLD_SYMBOLS.get(number, [])
        groups.append(
            {
                "number": number,
                "symbol": symbol,
                "crystal_system": crystal_system(number),
                "point_group": sg.pointgroup_international,
                "order": order,
                "full_symbol": sg.international_full,
                "settings": others,
                "max_t_subgroups": _pairs(group.get_max_t_subgroup()),
                "max_k_subgroups": _pairs(group.get_max_k_subgroup()),
            }
        )
    import pyxtal

    return {
        "about": (
            "The 230 space groups, standard settings. Made by tools/make_spacegroup_table.py "
            "from spglib (symbols, point groups, orders) and pyxtal (maximal subgroups, as "
            "[number, index] pairs); do not edit by hand."
        ),
        "sources": {"spglib": spglib.__version__, "pyxtal": pyxtal.__version__},
        "groups": groups,
    }


def dumps(table: dict) -> str:
    """Compact but diff-friendly JSON: one line per space group."""
    head = {k: v for k, v in table.items() if k != "groups"}
    lines = [json.dumps(g, separators=(",", ":")) for g in table["groups"]]
    body = json.dumps(head, indent=1)[:-2]  # drop the closing "\n}"
    return body + ',\n "groups": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output file (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with --out; exit 1 if stale")
    args = parser.parse_args(argv)
    text = dumps(build())
    if args.check:
        stale = not args.out.is_file() or args.out.read_text(encoding="utf-8") != text
        print(f"{args.out}: {'stale' if stale else 'up to date'}")
        return int(stale)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
