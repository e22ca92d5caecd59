"""The privacy pages in Chromium (SPEC §15), in Thai and English, on a desktop and a phone: a plate's page
with **Export (zip)** (the download is a zip with its README.txt) and **Erase…** (the dialog, the reason,
the erased plate), then `/audit` showing the erasure and `/retention`. Screenshots in test-artifacts/."""

import zipfile
from urllib.parse import quote

import pytest
from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import Camera, User

from .imagegen import data_uri, make_jpeg
from .test_browser_provinces import SIZES, overflows
from .webserver import screenshot, sign_in

PLATE = "กข1234"
WORDS = {"th": {"export": "ส่งออก (zip)", "erased": "ลบ"}, "en": {"export": "Export (zip)", "erased": "Erased"}}


@pytest.fixture
def reads(app, client, users):
    db.session.add(Camera(id="GATE-1", name="North gate", location="North gate", site="North"))
    db.session.commit()
    for n in range(3):
        body = {"camera_id": "GATE-1", "plate_number": PLATE if n < 2 else "ฮฮ9999", "confidence": 95.0,
                "image_data": data_uri(make_jpeg(320, 240, seed=n))}
        assert client.post("/api/records", json=body).status_code == 201


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("language", ["th", "en"])
def test_export_erase_audit_and_retention_pages_in_a_browser(webapp, app, browser, reads, language, size):
    db.session.scalar(select(User).where(User.username == "admin")).language = language
    db.session.commit()
    context = browser.new_context(viewport=SIZES[size], accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    name = f"{language}-{size}"
    try:
        sign_in(page, webapp, "admin")
        page.goto(f"{webapp.url}/plates/{quote(PLATE)}")
        assert page.locator("html").get_attribute("lang") == language
        export = page.locator("#plate-export")
        assert export.is_visible() and export.inner_text().strip() == WORDS[language]["export"]
        assert not overflows(page)
        screenshot(page, f"privacy-plate-{name}")
        with page.expect_download() as downloading:
            export.click()
        made = downloading.value
        assert made.suggested_filename.startswith(f"plate-{PLATE}-") and made.suggested_filename.endswith(".zip")
        with zipfile.ZipFile(made.path()) as bundle:
            names = set(bundle.namelist())
            assert {"README.txt", "reads.csv", "reads.json"} <= names
            assert sum(n.startswith("images/") for n in names) == 2

        page.click("#plate-erase-open")
        page.wait_for_selector("#plate-erase-reason", state="visible")
        page.fill("#plate-erase-reason", "PDPA request 2026-12-01, owner of the car")
        # The picture once Bootstrap's fade-in is over (else the page shows through the dialog).
        page.wait_for_function("""() => {
            const dialog = document.querySelector('.modal.show');
            return dialog && getComputedStyle(dialog).opacity === '1'
                && getComputedStyle(dialog.querySelector('.modal-dialog')).transform === 'none';
        }""")
        screenshot(page, f"privacy-erase-dialog-{name}", full_page=False)
        page.click("#plate-erase-submit")
        page.wait_for_load_state("load")
        assert WORDS[language]["erased"] in page.inner_text("main")
        assert page.locator(".sighting").count() == 0

        page.goto(f"{webapp.url}/audit?action=plate.*")
        rows = page.locator("#audit-table tbody tr[data-audit-id]")
        assert rows.count() == 2  # plate.erase, plate.export
        assert "PDPA request 2026-12-01" in page.locator("#audit-table").inner_text()
        assert not overflows(page)
        screenshot(page, f"privacy-audit-{name}")

        page.goto(f"{webapp.url}/retention")
        assert page.locator("#retention-settings").is_visible()
        assert not overflows(page)
        screenshot(page, f"privacy-retention-{name}")
    finally:
        context.close()
    assert errors == []
