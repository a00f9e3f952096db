"""The web API of ``pdfsg serve``: the CLI's JSON, per-file errors, limits, status policy."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from conftest import RANDOM_MODEL_LABELS

from pdfsg.cli import main
from pdfsg.params import PdfParams
from pdfsg.predict import Predictor, example_files
from pdfsg.web.app import create_app, display_name

LABELS = RANDOM_MODEL_LABELS
MAX_FILES = 3
MAX_FILE_BYTES = 200_000


@pytest.fixture(scope="module")
def model_dir(random_logreg_model) -> Path:
    return random_logreg_model


@pytest.fixture(scope="module")
def predictor(model_dir) -> Predictor:
    return Predictor.load(model_dir)


def make_client(predictor: Predictor, **limits):
    with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    limits = {"max_files": MAX_FILES, "max_file_bytes": MAX_FILE_BYTES, **limits}
    return TestClient(create_app(predictor=predictor, **limits))


@pytest.fixture(scope="module")
def client(predictor):
    return make_client(predictor)


@pytest.fixture(scope="module")
def example() -> Path:
    return example_files()[0]


def upload(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "text/plain")) for name, data in items]


def curve_text(rmax: float = 30.0, nan_at: int | None = None) -> bytes:
    r = np.round(np.arange(0.01, rmax + 1e-9, 0.01), 4)
    g = np.sin(2.1 * r) * np.exp(-0.03 * r) - 0.3 * r * (r < 1.6)
    lines = [f"{a:.4f} {b:.6f}" for a, b in zip(r, g, strict=True)]
    if nan_at is not None:
        lines[nan_at] = f"{r[nan_at]:.4f} nan"
    return ("#L r G\n" + "\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------- page


def test_page_and_static_files_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'src="static/app.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from outside
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    # everything from the server or a file name is inserted as text
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert unsafe not in js.text
    assert client.get("/static/style.css").status_code == 200
    for path in ("/static/nope.js", "/static/..%2fapp.py", "/static/../web/app.py"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}


def test_openapi_schema_documents_the_predict_endpoint(client):
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/api/predict"]["post"]
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["files"]["items"]["format"] == "binary"
    assert {"200", "400", "413", "415", "422"} <= set(post["responses"])
    assert {p["name"] for p in post["parameters"]} == {"top", "qmax", "refine", "label_set"}
    assert "/api/info" in schema["paths"]


def test_info_describes_model_and_limits(client):
    info = client.get("/api/info").json()
    assert info["n_groups"] == len(LABELS) and info["labels"] == list(LABELS)
    assert info["max_files"] == MAX_FILES and info["max_file_bytes"] == MAX_FILE_BYTES
    assert info["rmax"] == pytest.approx(PdfParams().r_grid()[-1])


# --------------------------------------------------------------------------- good files


def test_predict_gives_the_cli_json_plus_the_curve(client, model_dir, example, capsys):
    code = main(
        ["predict", "--model", str(model_dir), "--format", "json", "--top", "5", str(example)]
    )
    assert code == 0
    cli = json.loads(capsys.readouterr().out)[0]

    resp = client.post("/api/predict?top=5", files=upload((example.name, example.read_bytes())))
    assert resp.status_code == 200
    (api,) = resp.json()
    assert api["file"] == example.name
    assert set(api) == set(cli) | {"r", "x"}
    for key in ("predictions", "crystal_systems", "uncertainty", "model"):
        assert api[key] == cli[key]
    assert [w.replace(str(example), example.name) for w in cli["warnings"]] == api["warnings"]

    probs = [p["probability"] for p in api["predictions"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1 + 1e-9
    r, x = np.array(api["r"]), np.array(api["x"])
    assert r.size == x.size == PdfParams().npoints
    assert np.all(np.diff(r) > 0) and x.min() == 0 and x.max() == 1


def test_all_groups_sum_to_one(client, example):
    resp = client.post(
        f"/api/predict?top={len(LABELS)}", files=upload(("a.gr", example.read_bytes()))
    )
    groups = resp.json()[0]["predictions"]
    assert sorted(g["space_group"] for g in groups) == sorted(LABELS)
    assert sum(g["probability"] for g in groups) == pytest.approx(1.0, abs=1e-6)
    systems = resp.json()[0]["crystal_systems"]
    assert sum(systems.values()) == pytest.approx(1.0, abs=1e-4)


def test_qmax_parameter_reaches_the_predictor(client):
    resp = client.post("/api/predict?qmax=15", files=upload(("plain.gr", curve_text())))
    assert resp.status_code == 200
    assert any("Qmax = 15" in w for w in resp.json()[0]["warnings"])


# --------------------------------------------------------------------------- composition


def with_composition(formula: str) -> bytes:
    """A PDFgetX3-style file whose header gives the sample's composition."""
    return f"[DEFAULT]\nmode = xray\ncomposition = {formula}\n\n#### start data\n".encode() + (
        curve_text()
    )


def test_header_composition_is_reported_per_file(client):
    resp = client.post(
        "/api/predict",
        files=upload(("cdse.gr", with_composition("Cd Se")), ("plain.gr", curve_text())),
    )
    assert resp.status_code == 200
    cdse, plain = resp.json()
    settings = cdse["data_settings"]
    assert (settings["composition"], settings["composition_from"]) == ("CdSe", "header")
    assert settings["composition_used"] is False  # the served model reads G(r) only
    assert plain["data_settings"]["composition"] is None
    assert plain["data_settings"]["composition_from"] == "none"
    for entry in (cdse, plain):
        assert len(entry["notes"]) == 1 and "G(r) alone" in entry["notes"][0]


def test_a_composition_field_per_file_overrides_the_header(client):
    files = upload(("cdse.gr", with_composition("Cd Se")), ("b.gr", with_composition("NaCl")))
    data = {"composition": ["La0.72Ca0.28MnO3", ""]}
    resp = client.post("/api/predict", files=files, data=data)
    assert resp.status_code == 200
    first, second = (e["data_settings"] for e in resp.json())
    assert (first["composition"], first["composition_from"]) == ("La0.72Ca0.28MnO3", "option")
    assert (second["composition"], second["composition_from"]) == ("NaCl", "header")


def test_an_unreadable_composition_fails_its_file_only(client):
    files = upload(("a.gr", curve_text()), ("b.gr", curve_text()))
    resp = client.post("/api/predict", files=files, data={"composition": ["TiO2", "Xx2"]})
    assert resp.status_code == 200
    good, bad = resp.json()
    assert good["data_settings"]["composition"] == "TiO2"
    assert bad == {
        "file": "b.gr",
        "error": "b.gr: composition: cannot read 'Xx2': unknown element 'Xx'",
    }

    resp = client.post(
        "/api/predict", files=upload(("c.gr", curve_text())), data={"composition": "Ni-"}
    )
    assert resp.status_code == 422
    assert (
        resp.json()["detail"]
        == "c.gr: composition: cannot read 'Ni-': unexpected '-' at position 3"
    )
    assert "pdfsg-web-" not in resp.text and "upload." not in resp.text


def test_a_bad_header_composition_is_a_warning_and_the_field_replaces_it(client):
    resp = client.post("/api/predict", files=upload(("h.gr", with_composition("Xx2"))))
    assert resp.status_code == 200
    (entry,) = resp.json()
    assert entry["data_settings"]["composition_from"] == "none"
    assert any(
        w.startswith("h.gr: composition in the header: cannot read 'Xx2'")
        for w in entry["warnings"]
    )
    resp = client.post(
        "/api/predict", files=upload(("h.gr", with_composition("Xx2"))), data={"composition": "Ni"}
    )
    (entry,) = resp.json()
    assert entry["data_settings"]["composition_from"] == "option"
    assert not any("composition" in w for w in entry["warnings"])


def test_composition_fields_must_match_the_files(client):
    files = upload(("a.gr", curve_text()), ("b.gr", curve_text()))
    resp = client.post("/api/predict", files=files, data={"composition": "TiO2"})
    assert resp.status_code == 400
    assert resp.json() == {
        "detail": "composition: give one per file or none (2 files, 1 composition fields)"
    }


def test_openapi_documents_the_composition_field_and_result(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    field = body["multipart/form-data"]["schema"]["properties"]["composition"]
    assert field["items"]["type"] == "string" and "header" in field["description"]
    result = schema["components"]["schemas"]["FileResult"]["properties"]
    assert "composition_from" in result["data_settings"]["description"]
    assert "notes" in result


# --------------------------------------------------------------------------- bad files


BAD_FILES = {
    "empty": ("empty.gr", b"", "file is empty"),
    "binary": ("image.gr", bytes(range(256)) * 8, "not a text file"),
    "nan": ("nan.gr", curve_text(nan_at=500), "G is nan at line"),
    "one column": ("column.txt", b"\n".join(b"%.2f" % (0.01 * i) for i in range(1, 3000)), "one"),
    "too short": ("short.gr", curve_text(rmax=3.0), "data end at r"),
    "q space": ("pattern.iq", b"\n".join(b"%.2f %.3f" % (0.1 * i, i % 7) for i in range(300)), "Q"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_a_422_with_one_line_naming_the_file(client, case):
    name, data, fragment = BAD_FILES[case]
    resp = client.post("/api/predict", files=upload((name, data)))
    assert resp.status_code == 422
    body = resp.json()
    detail = body["detail"]
    assert detail.startswith(f"{name}: ") and "\n" not in detail
    assert fragment.lower() in detail.lower()
    assert body["results"] == [{"file": name, "error": detail}]
    assert "pdfsg-web-" not in resp.text and "upload." not in resp.text  # no temporary path


def test_one_bad_file_among_good_ones_is_an_entry_and_the_request_succeeds(client, example):
    good = example.read_bytes()
    resp = client.post("/api/predict", files=upload(("a.gr", good), ("b.gr", b""), ("c.gr", good)))
    assert resp.status_code == 200
    a, b, c = resp.json()
    assert (a["file"], b["file"], c["file"]) == ("a.gr", "b.gr", "c.gr")
    assert b == {"file": "b.gr", "error": "b.gr: file is empty"}
    assert a["predictions"] == c["predictions"]


def test_all_files_bad_is_a_422_listing_each(client):
    resp = client.post("/api/predict", files=upload(("a.gr", b""), ("b.gr", b"\x00\x01" * 50)))
    assert resp.status_code == 422
    body = resp.json()
    assert [e["file"] for e in body["results"]] == ["a.gr", "b.gr"]
    assert "a.gr: file is empty" in body["detail"] and "b.gr: not a text file" in body["detail"]


# --------------------------------------------------------------------------- limits


def test_too_many_files_is_a_400(client):
    resp = client.post(
        "/api/predict", files=upload(*[(f"{i}.gr", b"1 2\n") for i in range(MAX_FILES + 1)])
    )
    assert resp.status_code == 400
    assert resp.json() == {"detail": f"too many files: at most {MAX_FILES} per request"}


def test_too_large_file_is_a_413_alone_and_an_entry_beside_a_good_one(client, example):
    big = curve_text() * 4
    assert len(big) > MAX_FILE_BYTES
    resp = client.post("/api/predict", files=upload(("big.gr", big)))
    assert resp.status_code == 413
    assert resp.json()["detail"].startswith("big.gr: file is ") and "limit" in resp.json()["detail"]

    resp = client.post(
        "/api/predict", files=upload(("big.gr", big), ("ok.gr", example.read_bytes()))
    )
    assert resp.status_code == 200
    big_entry, ok = resp.json()
    assert set(big_entry) == {"file", "error"} and "predictions" in ok


def test_request_body_over_the_limit_is_refused_before_parsing(client):
    limit = MAX_FILES * MAX_FILE_BYTES
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    resp = client.post("/api/predict", content=b"x" * (2 * limit), headers=headers)
    assert resp.status_code == 413 and "request body" in resp.json()["detail"]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b"x" * (limit // 5)

    resp = client.post("/api/predict", content=chunks(), headers=headers)
    assert resp.status_code == 413 and "request body" in resp.json()["detail"]


def test_limits_are_configurable(predictor, example):
    small = make_client(predictor, max_files=1, max_file_bytes=1000)
    two = upload(("a.gr", b"1 2\n"), ("b.gr", b"1 2\n"))
    assert small.post("/api/predict", files=two).status_code == 400
    assert (
        small.post("/api/predict", files=upload(("e.gr", example.read_bytes()))).status_code == 413
    )
    with pytest.raises(ValueError):
        create_app(predictor=predictor, max_files=0)


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"data": {"name": "x"}}, 415, "multipart/form-data"),
        ({"files": [("other", ("a.gr", b"1 2\n", "text/plain"))]}, 400, "no files"),
        ({"json": {"files": []}}, 415, "multipart/form-data"),
        (
            {"content": b"--nope\r\n", "headers": {"content-type": "multipart/form-data"}},
            400,
            "bad",
        ),
    ],
)
def test_malformed_requests_are_4xx_json(client, kwargs, status, fragment):
    resp = client.post("/api/predict", **kwargs)
    assert resp.status_code == status
    assert fragment in resp.json()["detail"]


@pytest.mark.parametrize("query", ["top=0", f"top={len(LABELS) + 1}", "top=x", "qmax=-1"])
def test_bad_parameters_are_a_422_in_one_line(client, example, query):
    resp = client.post(f"/api/predict?{query}", files=upload(("a.gr", example.read_bytes())))
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and query.split("=")[0] in detail


def test_unexpected_failure_is_a_500_without_a_traceback(model_dir, example):
    broken = Predictor.load(model_dir)

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    broken.predict_file = boom  # type: ignore[method-assign]
    resp = make_client(broken).post("/api/predict", files=upload(("a.gr", example.read_bytes())))
    assert resp.status_code == 500
    assert "internal error" in resp.json()["detail"] and "secret" not in resp.text


# --------------------------------------------------------------------------- safety


def test_file_names_are_reduced_to_their_last_component(client):
    hostile = "../../etc\\x\\<img src=x onerror=alert(1)>.gr"
    resp = client.post("/api/predict", files=upload((hostile, b"")))
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["results"][0]["file"] == "<img src=x onerror=alert(1)>.gr"
    assert display_name("C:\\data\\a\x07b\n.gr", 0) == "ab.gr"
    assert display_name("", 2) == "file 3"
    assert display_name("a" * 500, 0).endswith("...") and len(display_name("a" * 500, 0)) == 120


def test_no_file_is_left_on_disk(client, example, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    good = example.read_bytes()
    client.post("/api/predict", files=upload(("a.gr", good), ("b.gr", b""), ("c.gr", good * 5)))
    client.post("/api/predict", files=upload(("nan.gr", curve_text(nan_at=3))))
    assert list(tmp.iterdir()) == []


# --------------------------------------------------------------------------- CLI


def test_serve_command_builds_the_app_and_runs_uvicorn(model_dir, monkeypatch, capsys):
    uvicorn = pytest.importorskip("uvicorn")
    seen = {}

    def fake_run(self, sockets=None):
        seen.update(app=self.config.app, address=sockets[0].getsockname())

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    argv = ["serve", "--model", str(model_dir), "--port", "0", "--max-files", "4"]
    assert main([*argv, "--max-file-mb", "0.5"]) == 0
    host, port = seen["address"]
    assert host == "127.0.0.1" and port > 0
    assert seen["app"].state.max_files == 4
    assert seen["app"].state.max_file_bytes == 512 * 1024
    assert f"http://127.0.0.1:{port}/" in capsys.readouterr().err

    assert main(["serve", "--model", str(model_dir), "--host", "0.0.0.0", "--port", "0"]) == 0
    assert "no authentication" in capsys.readouterr().err


def test_serve_on_a_busy_port_says_so_first_and_nothing_else(model_dir, monkeypatch, capsys):
    import socket

    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("ran"))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(model_dir), "--port", str(port)]) == 2
    finally:
        busy.close()
    err = capsys.readouterr().err
    where = f"127.0.0.1:{port}"
    assert err == f"pdfsg serve: error: --port {port}: cannot listen on {where}: already in use\n"


def test_serve_command_with_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pdfsg serve: error: ") and err.count("\n") == 1


# --------------------------------------------------------------------------- refine


def _ni_text() -> bytes:
    """fcc Ni simulated like a measurement (0.02 Å steps, to 30 Å)."""
    from pymatgen.core import Lattice, Structure

    from pdfsg import pdf
    from pdfsg.params import PdfParams

    ni = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.524), ["Ni"], [[0, 0, 0]])
    p = PdfParams(rmin=0.02, rmax=30.0, rstep=0.02, qmin=0.8, qmax=26.0, qdamp=0.03)
    g = pdf.simulate(ni, p)
    lines = [f"{a:.4f} {b:.6f}" for a, b in zip(p.r_grid(), g, strict=True)]
    return ("# qmax = 26\n#L r G\n" + "\n".join(lines) + "\n").encode()


def test_refine_checks_the_top_groups_against_the_data(client):
    resp = client.post(
        "/api/predict?refine=8&top=3",
        files=upload(("ni.gr", _ni_text()), ("plain.gr", curve_text())),
        data={"composition": ["Ni", ""]},
    )
    assert resp.status_code == 200
    ni, plain = resp.json()
    assert len(ni["predictions"]) == 3  # the listed top stays `top`
    ref = ni["refinement"]
    assert ref["composition"] == "Ni" and len(ref["ranking"]) == 8
    fcc = [c for c in ref["candidates"] if c["space_group"] == 225 and c["rw"] is not None]
    assert fcc and min(c["rw"] for c in fcc) < 0.2  # the fcc prototype fits its own curve
    assert ref["ranking"][0]["space_group"] == 225  # and the fit puts Fm-3m first
    assert "no composition" in plain["refinement"]["error"]
    assert "plain.gr" in plain["refinement"]["error"]


def test_refine_is_limited_to_a_few_files(predictor):
    files = upload(*[(f"f{i}.gr", curve_text()) for i in range(4)])
    resp = make_client(predictor, max_files=5).post("/api/predict?refine=2", files=files)
    assert resp.status_code == 400 and "refine: at most 3 files" in resp.json()["detail"]
