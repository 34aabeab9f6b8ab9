"""The web page in a real headless Chromium (Debian ``chromium`` + ``chromium-driver``, driven by
Selenium): type a query, drop an image, switch keys, and keep a screenshot to look at.

Set XMODAL_SCREENSHOT_DIR to keep the screenshots (CI can publish them)."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiEnv, make_env, png_bytes, wav_bytes

from xmodal.api.server import serve_in_thread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
# CI sets XMODAL_REQUIRE_BROWSER=1 so a missing browser or Selenium fails instead of skipping.
REQUIRED = os.environ.get("XMODAL_REQUIRE_BROWSER") == "1"
webdriver = __import__("selenium.webdriver").webdriver if REQUIRED else pytest.importorskip("selenium.webdriver")
if REQUIRED and not (CHROMIUM and DRIVER):
    raise RuntimeError("XMODAL_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian chromium and chromium-driver"),
]

WAIT_S = 60  # generous: CI machines are small and a cold model load is seconds


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiEnv, str]]:
    gen = make_env(tmp_path_factory.mktemp("browser"))
    api = next(gen)
    public = {
        "red.png": png_bytes((230, 30, 30), (96, 64)),
        "green.png": png_bytes((30, 200, 40), (96, 64)),
        "blue.png": png_bytes((30, 40, 220), (96, 64)),
        "report.txt": b"Quarterly sales report: revenue grew in every region.",
        "recipe.txt": b"A recipe for tomato soup with fresh basil.",
        "chime.wav": wav_bytes(660, 1.5),
    }
    assert api.upload("admin", public, access="public").status_code == 201
    secret = {"merger.txt": b"Secret sales plan for the merger.", "crimson.png": png_bytes((250, 20, 25), (64, 64))}
    assert api.upload("admin", secret, access="user:bob").status_code == 201
    with serve_in_thread(api.client.app) as base:
        yield api, base
    next(gen, None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="xmodal-chromium-")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: Any, cond: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(cond)


def _fresh_page(driver: Any, base: str) -> None:
    """Open the page with no stored key and wait for the key prompt.

    Storage is cleared from ``/healthz`` (same origin, no page script): clearing it on the app page
    races that page's own ``/me`` check, which stores the previous key again when it answers."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/healthz")
    driver.execute_script("localStorage.clear()")
    driver.get(base + "/")
    _wait(driver, lambda d: d.find_element(By.ID, "key-dialog").get_attribute("open") is not None)


def _login(driver: Any, base: str, key: str, who: str) -> None:
    from selenium.webdriver.common.by import By

    _fresh_page(driver, base)
    box = driver.find_element(By.ID, "key-input")
    box.clear()
    box.send_keys(key)
    driver.find_element(By.ID, "key-save").click()
    _wait(driver, lambda d: d.find_element(By.ID, "who").text.startswith(who))


def _results(driver: Any, after: str = "") -> list[str]:
    from selenium.webdriver.common.by import By

    _wait(driver, lambda d: d.find_element(By.ID, "status").text not in ("", "searching…", after))
    return [e.get_attribute("data-name") for e in driver.find_elements(By.CSS_SELECTOR, "#results .hit")]


def _search(driver: Any, text: str, modality: str = "", mode: str = "dense") -> list[str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "modality")).select_by_value(modality)
    Select(driver.find_element(By.ID, "mode")).select_by_value(mode)
    box = driver.find_element(By.ID, "query")
    box.clear()
    box.send_keys(text)
    driver.execute_script("document.getElementById('status').textContent = ''")
    driver.find_element(By.ID, "search-btn").click()
    return _results(driver)


def _drop(driver: Any, data: bytes, name: str, mime: str) -> list[str]:
    """Fire a real drop event carrying a File, as a user dragging a file onto the page does."""
    driver.execute_script("document.getElementById('status').textContent = ''")
    driver.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], arguments[1], {type: arguments[2]}));
        const zone = document.getElementById('drop');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        """,
        base64.b64encode(data).decode(),
        name,
        mime,
    )
    return _results(driver)


def _shot(driver: Any, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    keep = os.environ.get("XMODAL_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


def test_type_a_query_and_see_the_right_result(site: tuple[ApiEnv, str], browser: Any) -> None:
    api, base = site
    _login(browser, base, api.keys["alice"], "alice")
    names = _search(browser, "tomato soup")
    assert names[0] == "recipe.txt"
    names = _search(browser, "sales report", modality="text")
    assert names[0] == "report.txt"
    assert "merger.txt" not in names


def test_search_by_the_exact_words(site: tuple[ApiEnv, str], browser: Any) -> None:
    api, base = site
    _login(browser, base, api.keys["alice"], "alice")
    assert len(_search(browser, "basil")) > 1  # by meaning: everything, nearest first
    assert _search(browser, "basil", mode="keyword") == ["recipe.txt"]  # by words: only what says it
    assert _search(browser, "merger", mode="keyword") == []  # said only by an item alice may not see
    assert _search(browser, "revenue basil", mode="hybrid")[:2] in (
        ["report.txt", "recipe.txt"],
        ["recipe.txt", "report.txt"],
    )


def test_drop_an_image_and_see_similar_ones(site: tuple[ApiEnv, str], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    api, base = site
    _login(browser, base, api.keys["alice"], "alice")
    names = _drop(browser, png_bytes((210, 40, 35)), "query.png", "image/png")
    assert names[0] == "red.png"
    assert "crimson.png" not in names  # closer still, but alice may not see it
    imgs = browser.find_elements(By.CSS_SELECTOR, "#results .hit img")
    _wait(browser, lambda d: all(d.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs))
    card = browser.find_element(By.CSS_SELECTOR, "#results .hit")
    assert "score" in card.get_attribute("title")
    _shot(browser, "xmodal-image-query.png", tmp_path)


def test_a_user_without_access_never_sees_a_restricted_item(site: tuple[ApiEnv, str], browser: Any) -> None:
    api, base = site
    _login(browser, base, api.keys["bob"], "bob")
    assert _search(browser, "secret sales plan merger")[0] == "merger.txt"
    assert _drop(browser, png_bytes((250, 20, 25)), "q.png", "image/png")[0] == "crimson.png"
    _login(browser, base, api.keys["alice"], "alice")
    for query in ("secret sales plan merger", "merger", "crimson"):
        assert not {"merger.txt", "crimson.png"} & set(_search(browser, query))
    assert "crimson.png" not in _drop(browser, png_bytes((250, 20, 25)), "q.png", "image/png")


def test_bad_key_is_refused_and_prompted_again(site: tuple[ApiEnv, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _, base = site
    _fresh_page(browser, base)
    browser.find_element(By.ID, "key-input").send_keys("xmk_000000000000_" + "a" * 43)
    browser.find_element(By.ID, "key-save").click()
    _wait(browser, lambda d: "invalid" in d.find_element(By.ID, "key-error").text.lower())


def test_screenshot_of_a_result_page(site: tuple[ApiEnv, str], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    api, base = site
    _login(browser, base, api.keys["carol"], "carol")
    names = _search(browser, "sales report revenue chime")
    assert "report.txt" in names and "chime.wav" in names
    audio = browser.find_element(By.CSS_SELECTOR, "#results .hit audio")
    assert "/preview?" in audio.get_attribute("src")
    path = _shot(browser, "xmodal-results.png", tmp_path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
