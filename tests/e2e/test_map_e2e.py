"""End to end: the map page in headless Chromium against a live server finds published locations.

Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them) and selenium; skips
cleanly without them. The live server runs in another thread, so the test is transactional: its
`serialized_rollback` restores the lookup tables seeded by migration for the test, and pytest-django
runs transactional tests after the others, which therefore still see them.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from locations import services
from tests.conftest import location_payload

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path(os.environ.get("EVHUB_MAP_SCREENSHOT", "/tmp/map.png"))
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900"]

# (OCPI id, name, latitude, longitude): three stations in central Berlin, one in Potsdam (26 km away).
STATIONS = [
    ("E2E1", "Alexanderplatz Laden", 52.5219, 13.4132),
    ("E2E2", "Potsdamer Platz Garage", 52.5096, 13.3759),
    ("E2E3", "Kreuzberg Hof", 52.4986, 13.4034),
    ("E2E4", "Potsdam Hauptbahnhof", 52.3917, 13.0669),
]


@pytest.fixture
def browser():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(f"{CHROMIUM} or {CHROMEDRIVER} is absent (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
    profile = tempfile.mkdtemp(prefix="evhub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except Exception as exc:  # a broken install is the environment's problem, not the page's
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"headless Chromium did not start: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_search_on_the_map_page_shows_markers_and_results(live_server, browser, alpha):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    for ocpi_id, name, lat, lng in STATIONS:
        payload = location_payload(alpha, ocpi_id, name=name, city="Berlin" if lat > 52.45 else "Potsdam",
                                   coordinates={"latitude": f"{lat:.6f}", "longitude": f"{lng:.6f}"})
        location = services.location_upsert(cpo=alpha, data=payload).instance
        services.location_moderate(location=location, moderation="PUBLISHED")

    browser.get(f"{live_server.url}/map/")
    wait = WebDriverWait(browser, 20)
    # The default search (Berlin, 10 km) runs on load.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.result"))
    assert browser.find_elements(By.CSS_SELECTOR, '#connector_type option[value="TYPE_2"]')

    place = browser.find_element(By.ID, "place")
    place.clear()
    place.send_keys("52.52, 13.405")
    radius = browser.find_element(By.ID, "radius")
    radius.clear()
    radius.send_keys("40")
    browser.find_element(By.ID, "submit").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "4 locations within 40 km"))

    items = browser.find_elements(By.CSS_SELECTOR, "#results li.result")
    markers = browser.find_elements(By.CSS_SELECTOR, "#map .marker")
    assert len(items) == 4 and len(markers) == 4
    names = [item.find_element(By.CSS_SELECTOR, ".name").text for item in items]
    assert names[0] == "Alexanderplatz Laden" and names[-1] == "Potsdam Hauptbahnhof"  # nearest first
    first = items[0].text
    assert "km" in first and "Type 2 22 kW" in first and "CCS 150 kW" in first
    assert browser.find_element(By.ID, "status").get_attribute("class") != "error"

    # A city name is resolved from the catalogue's own published locations.
    place.clear()
    place.send_keys("Potsdam")
    radius.clear()
    radius.send_keys("5")
    browser.find_element(By.ID, "submit").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "1 location within 5 km"))
    assert browser.find_element(By.CSS_SELECTOR, "#results li.result .name").text == "Potsdam Hauptbahnhof"

    # Back to all four for the picture.
    place.clear()
    place.send_keys("52.52, 13.405")
    radius.clear()
    radius.send_keys("40")
    browser.find_element(By.ID, "submit").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "4 locations within 40 km"))
    browser.find_elements(By.CSS_SELECTOR, "#results li.result")[0].click()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    browser_errors = [entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"]
    assert not browser_errors, browser_errors
