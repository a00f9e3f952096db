"""End to end: the upload page of ``pdfsg serve`` in headless Chromium, against a live server.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``PDFSG_CHROMIUM``) and the
``playwright`` Python package (no browser download: ``playwright install`` is never run).
The screenshot is kept in ``tests/artifacts/web.png``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("PDFSG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
#: a file name that would run script if the page inserted it as HTML
HOSTILE = "<img src=x onerror=window.__xss=1>.gr"


@pytest.fixture(scope="module")
def playwright_api():
    api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return api


@pytest.fixture(scope="module")
def server_url(playwright_api, random_logreg_model):
    """The app with a random logistic-regression model, served by uvicorn on a free port."""
    uvicorn = pytest.importorskip("uvicorn")
    from pdfsg.predict import Predictor
    from pdfsg.web.app import create_app

    app = create_app(predictor=Predictor.load(random_logreg_model), max_files=5)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


def test_upload_page_ranks_files_and_renders_names_as_text(playwright_api, server_url, tmp_path):
    import httpx

    from pdfsg.predict import example_files

    example = example_files()[0]
    expected = httpx.post(
        f"{server_url}api/predict?top=5",
        files=[("files", (example.name, example.read_bytes(), "text/plain"))],
    ).json()[0]["predictions"]

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(20_000)
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on(
                "console", lambda msg: problems.append(msg.text) if msg.type == "error" else None
            )
            page.goto(server_url)
            expect = playwright_api.expect  # waits until true (the page is asynchronous)
            expect(page.locator("#top option")).not_to_have_count(0)
            assert "random-logreg" in page.text_content("#model-info")
            assert "5 files" in page.text_content("#limits")

            # 1. the file chooser
            page.set_input_files("#file-input", str(example))
            expect(page.locator("table.ranking tbody tr")).to_have_count(6)  # the default top
            expect(page.locator("article.card p.pset")).to_contain_text("90% set: ")
            expect(page.locator("article.card p.answer")).to_contain_text("Answer: ")

            # 1b. the composition field of the file: filled from the example's header
            #     (TiO2); a typed formula is sent with the file and reported back
            field = page.locator("article.card form.composition input")
            expect(field).to_have_value("TiO2")
            expect(page.locator("article.card .origin")).to_contain_text("from the file header")
            field.fill("Ti O2")
            field.press("Enter")
            expect(page.locator("article.card .origin")).to_have_text(
                "as typed, not used by the model"
            )
            expect(page.locator("article.card form.composition input")).to_have_value("Ti O2")
            assert "G(r) alone" in page.text_content("article.card p.note")

            # 2. drag and drop of a good file and a bad one with a hostile name; top 5
            page.select_option("#top", "5")
            page.evaluate(
                """([text, hostile]) => {
                    const dt = new DataTransfer();
                    dt.items.add(new File([text], "TiO2-rutile.gr", {type: "text/plain"}));
                    dt.items.add(new File([""], hostile, {type: "text/plain"}));
                    document.getElementById("drop").dispatchEvent(
                        new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
                }""",
                ["# composition = Ti O2\n" + example.read_text(), HOSTILE],
            )
            expect(page.locator("#status")).to_contain_text("1 of 2 ranked, 1 failed")
            expect(page.locator("article.card")).to_have_count(2)

            good, bad = page.locator("article.card").all()
            assert good.locator("h2").text_content() == "TiO2-rutile.gr"
            # the composition field is filled from the file header
            assert good.locator("form.composition input").input_value() == "TiO2"
            assert good.locator(".origin").text_content() == (
                "from the file header, not used by the model"
            )
            rows = good.locator("table.ranking tbody tr")
            assert rows.count() == 5
            numbers = [int(rows.nth(i).locator("td").nth(2).text_content()) for i in range(5)]
            assert numbers == [p["space_group"] for p in expected]
            probs = [float(rows.nth(i).locator("td").nth(4).text_content()) for i in range(5)]
            assert probs == [round(p["probability"], 3) for p in expected]
            assert good.locator("rect.bar").count() == 5
            points = good.locator("polyline.curve").get_attribute("points")
            assert len(points.split()) > 100

            assert bad.locator("h2").text_content() == HOSTILE
            assert "file is empty" in bad.locator("p.error").text_content()
            assert page.locator("img").count() == 0
            assert page.evaluate("window.__xss") is None
            assert problems == []
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web.png"), full_page=True)

            # 2b. the label-set select: the paper's 45 hold all 8 of this model's groups, so
            #     the ranking stays and the card says which set was used
            options = page.locator("#label-set option").all_text_contents()
            assert options == ["the model's own 8 groups", "the paper's 45 (8 here)"]
            page.select_option("#label-set", "paper45")
            expect(page.locator("article.card p.labelset").first).to_contain_text(
                "Label set paper45: 8 of the model's 8 groups"
            )
            rows = page.locator("article.card").first.locator("table.ranking tbody tr")
            got = [int(rows.nth(i).locator("td").nth(2).text_content()) for i in range(5)]
            assert got == numbers
            page.select_option("#label-set", "all")
            expect(page.locator("article.card p.labelset")).to_have_count(0)

            # 3. the fit check ("Check the top groups by fitting") on a simulated fcc Ni
            #    file: its card gets the combined ranking of the 6 refined groups
            from test_web import _ni_text

            ni = tmp_path / "Ni.gr"
            ni.write_bytes(b"# composition = Ni\n" + _ni_text())
            page.set_input_files("#file-input", str(ni))
            expect(page.locator("#status")).to_contain_text("1 of 1 ranked")
            page.check("#refine")
            expect(page.locator("article.card div.refinement")).to_have_count(1, timeout=90_000)
            refined = page.locator("article.card div.refinement table.refine tbody tr")
            assert refined.count() == 6
            assert refined.first.locator("td").nth(1).text_content() == "Fm-3m (225)"
            page.screenshot(path=str(ARTIFACTS / "web-refine.png"), full_page=True)
        finally:
            browser.close()
