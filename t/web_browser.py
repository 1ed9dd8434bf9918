#!/usr/bin/python3
# Drives a real headless Chromium (chromium-driver, python3-selenium) through the web
# page for t/023_web_browser.pl and prints one "ok"/"not ok" line per check:
#   web_browser.py URL USER PASSWORD JOBLIST JOB GO_FILE SCREENSHOT WORKSPACE PATH
# The page is loaded once with the joblist and job open (#joblist=..&job=..); the job
# prints a first line, waits for GO_FILE, prints a second line and ends.  The checks
# see it running, see the first line, create GO_FILE, then see the second line and the
# joblist succeeded; then the file PATH of WORKSPACE (built once) is listed fresh, and
# its Rebuild button is clicked: the request is acknowledged and the file shows the
# new rebuild that built it.  All without a reload (a marker set on the first load
# survives).
import base64
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

url, user, password, joblist, job, go_file, screenshot, workspace, path = sys.argv[1:10]
failures = 0


def check(ok, what):
    """Prints one TAP-like line for the Perl test to count."""
    global failures
    print(("ok " if ok else "not ok ") + what, flush=True)
    failures += 0 if ok else 1


def wait(cond, seconds=60):
    """Returns cond()'s first true value within seconds, or False."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.2)
    return False


options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1400,1000"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    # The login a browser would ask for once, sent with every request of the page
    # (fetch and EventSource included) through the DevTools protocol.
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                           {"headers": {"Authorization": "Basic " + token}})
    driver.get(f"{url}/#joblist={joblist}&job={job}")
    driver.execute_script("window.__loadedOnce = true;")

    def row_state():
        return driver.find_element(
            By.CSS_SELECTOR, f'tr[data-joblist-id="{joblist}"] [data-state]').get_attribute("data-state")

    def log_text():
        return driver.find_element(By.ID, "log-text").text

    check(wait(lambda: driver.find_element(By.ID, "live").get_attribute("data-live") == "yes"),
          "the page follows the event stream")
    check(wait(lambda: row_state() == "running"), "the joblist shows running")
    check(wait(lambda: "first line" in log_text()), "the first log line appears")
    check("second line" not in log_text(), "the second line is not there yet")
    with open(go_file, "w") as f:
        f.write("go\n")
    check(wait(lambda: "second line" in log_text()), "the second log line appears live")
    check(wait(lambda: row_state() == "succeeded"), "the joblist advances to succeeded")
    check(wait(lambda: driver.find_element(
        By.CSS_SELECTOR, f'tr[data-job-id="{job}"] [data-state]').get_attribute("data-state") == "succeeded"),
        "the job row shows succeeded")
    file_row = f'#artefacts tr[data-workspace="{workspace}"][data-path="{path}"]'

    def file_cell(selector):
        return driver.find_element(By.CSS_SELECTOR, f"{file_row} {selector}")

    check(wait(lambda: file_cell("[data-state]").get_attribute("data-state") == "fresh"),
          "the artefacts section lists the built file as fresh")
    built_in = file_cell(".built-in").text

    def click_rebuild():
        # (the section is drawn anew on every event: a row found a moment ago may be gone)
        file_cell("button").click()
        return True

    wait(click_rebuild)
    check(wait(lambda: "Requested a rebuild of " + path in driver.find_element(By.ID, "artefact-result").text),
          "clicking Rebuild says the rebuild was requested")
    check(wait(lambda: file_cell(".built-in").text not in ("", built_in)
               and file_cell("[data-state]").get_attribute("data-state") == "fresh"),
          "the file shows the new rebuild that built it, live")
    print(f"# rebuilt in: {file_cell('.built-in').text}", flush=True)
    check(driver.execute_script("return window.__loadedOnce === true;") is True
          and driver.execute_script("return performance.getEntriesByType('navigation').length;") == 1,
          "no reload happened")
    check(wait(lambda: driver.find_elements(By.CSS_SELECTOR, '.unit[data-busy]')),
          "the resource board shows the units")
    check(wait(lambda: driver.find_elements(By.CSS_SELECTOR, '.chart svg polyline')),
          "a metric chart is drawn")
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    check(not severe, "no browser errors: " + "; ".join(severe)[:300])
    driver.save_screenshot(screenshot)
    print(f"# screenshot: {screenshot}", flush=True)
finally:
    driver.quit()
sys.exit(1 if failures else 0)
