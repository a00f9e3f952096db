"""Regenerate the small structure fixtures of this folder from textbook structures.

Run from the repository root: ``python tests/data/structures/make_fixtures.py``.
The outputs are committed; this script documents how they were made.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

HERE = Path(__file__).resolve().parent


def textbook() -> dict[str, Structure]:
    sg = Structure.from_spacegroup
    return {
        "tb-Ni": sg("Fm-3m", Lattice.cubic(3.524), ["Ni"], [[0, 0, 0]]),
        "tb-NaCl": sg("Fm-3m", Lattice.cubic(5.640), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "tb-Si": sg("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
        "tb-CsCl": sg("Pm-3m", Lattice.cubic(4.123), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "tb-TiO2": sg(
            "P4_2/mnm",
            Lattice.tetragonal(4.594, 2.959),
            ["Ti", "O"],
            [[0, 0, 0], [0.3048, 0.3048, 0]],
        ),
        "tb-ZnO": sg(
            "P6_3mc",
            Lattice.hexagonal(3.250, 5.207),
            ["Zn", "O"],
            [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
        ),
    }


def main() -> None:
    s = textbook()
    # the same rock salt again: primitive cell, 1 % larger, another id -> a duplicate
    nacl_copy = s["tb-NaCl"].get_primitive_structure()
    nacl_copy.scale_lattice(nacl_copy.volume * 1.03)
    tungsten = Structure.from_spacegroup("Im-3m", Lattice.cubic(3.165), ["W"], [[0, 0, 0]])
    cuau = Structure(
        Lattice.cubic(3.8),
        [{"Cu": 0.5, "Au": 0.5}] * 4,
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    rows = [(k, str(CifWriter(v))) for k, v in s.items()]
    rows += [
        ("tb-NaCl-copy", str(CifWriter(nacl_copy))),
        ("tb-W", str(CifWriter(tungsten))),  # Im-3m (229): outside the paper's 45 groups
        ("tb-bad", "this is not a CIF file\n"),
        ("tb-partial", str(CifWriter(cuau))),
    ]
    with open(HERE / "textbook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        writer.writerows(rows)

    cifs = HERE / "cifs"
    cifs.mkdir(exist_ok=True)
    (cifs / "Ni.cif").write_text(str(CifWriter(s["tb-Ni"])))
    # symmetrised CIF: asymmetric unit + space group, expanded by the reader
    (cifs / "NaCl_symmetrized.cif").write_text(str(CifWriter(s["tb-NaCl"], symprec=0.1)))
    (cifs / "not_a_cif.cif").write_text("Just some text.\nNo data block here.\n")
    (cifs / "partial.cif").write_text(str(CifWriter(cuau)))
    # no symmetry operations and no space group: refused
    nosym = "\n".join(
        line
        for line in str(CifWriter(s["tb-Si"])).splitlines()
        if not line.strip().startswith("_symmetry") and "'x, y, z'" not in line
    )
    (cifs / "no_symmetry.cif").write_text(nosym.replace("loop_\nloop_", "loop_") + "\n")
    (cifs / "no_atoms.cif").write_text(
        "data_empty\n_symmetry_space_group_name_H-M 'P 1'\n_cell_length_a 4\n"
        "_cell_length_b 4\n_cell_length_c 4\n_cell_angle_alpha 90\n_cell_angle_beta 90\n"
        "_cell_angle_gamma 90\n"
    )


if __name__ == "__main__":
    main()
