"""The physician's side of review in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) driven through Selenium against the server `medcurate labelstudio start` runs.

Two reviewers made by `medcurate labelstudio add-reviewer`; the first marks a surviving name,
rates and submits; the second opens the same sample and sees nothing of it; `review pull`
returns the span and the next version redacts it. Screenshots of a text and an image task at
1400x1000 are written to $MEDCURATE_SCREENSHOT_DIR (else the test's temporary folder).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from medcurate.annotators import reviewers, server
from medcurate.annotators.cli import reviewer_command
from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
from medcurate.annotators.projects import IMAGE, TEXT, ensure_project
from medcurate.annotators.pull import pull_reviews
from medcurate.annotators.push import push_samples, reviewer_client
from medcurate.annotators.routing import route_sample
from medcurate.annotators.verdicts import apply_verdict, load_verdicts
from medcurate.schemas.sample import new_sample

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1400, 1000
# Invented: a clinician's name the de-identification missed, beside a redaction it made.
NOTE = (
    "Seen today by Dr Quillby for chest pain; <PERSON> reports dyspnea on exertion since <DATE>. "
    "ECG shows sinus rhythm. Plan: stress test and review in cardiology clinic in two weeks."
)
SURVIVOR = "Quillby"
SELECT_WORD = """
const word = arguments[0];
const root = document.querySelector('.lsf-richtext__container');
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
let node;
while ((node = walker.nextNode())) {
  const at = node.data.indexOf(word);
  if (at >= 0) {
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + word.length);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    const box = range.getBoundingClientRect();
    node.parentElement.dispatchEvent(
      new MouseEvent('mouseup', {bubbles: true, clientX: box.right, clientY: box.bottom - 2}));
    return true;
  }
}
return false;
"""


def _cli(action: str, ls_config: LabelStudioConfig, **fields) -> None:
    overrides = [f"review.label_studio.data_dir={ls_config.data_dir}"]
    args = argparse.Namespace(action=action, config=None, overrides=overrides, **fields)
    assert reviewer_command(args, []) == 0


@pytest.fixture
def reviewer_store(ls_config: LabelStudioConfig):
    """Reviewers registered for this test only: later tests on the shared server push to one project."""
    store = server.data_dir(ls_config) / reviewers.SECRETS_FILE
    assert not store.exists()
    yield store
    store.unlink(missing_ok=True)


def burned_in_png() -> bytes:
    image = Image.new("RGB", (900, 700), (20, 20, 20))
    draw = ImageDraw.Draw(image)
    draw.ellipse((250, 150, 650, 600), fill=(120, 120, 120))
    draw.rectangle((20, 20, 420, 60), fill=(0, 0, 0))  # what de-id blacked out
    draw.text((20, 640), "PA ERECT", fill=(255, 255, 255), font=ImageFont.load_default(size=24))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def samples() -> list[dict]:
    routing = ReviewConfig(audit_fraction=0)
    person = NOTE.index("<PERSON>")
    date = NOTE.index("<DATE>")
    text = new_sample(
        source_kind="clinical",
        modality="text",
        source_uri="fhir://browser/1",
        text=NOTE,
        language="en",
        quality_score=0.8,
        deid_confidence=0.41,
        redactions=[
            {"start": person, "end": person + 8, "type": "PERSON", "score": 0.9},
            {"start": date, "end": date + 6, "type": "DATE", "score": 0.8},
        ],
    )
    image = new_sample(
        source_kind="image",
        modality="image",
        source_uri="file:///browser/chest.png",
        image_bytes=burned_in_png(),
        metadata={"deid.boxes": "[[20, 20, 420, 60]]"},
    )
    return [route_sample(text, routing), route_sample(image, routing)]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={profile}",
        "--password-store=basic",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"credentials_enable_service": False, "profile.password_manager_enabled": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    # The page itself, not the window around it, is 1400x1000.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.profile_dir = profile
    yield driver
    driver.quit()


def log_in(driver, url: str, email: str, password: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/user/login")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: "/user/login" not in d.current_url)


def open_queue(driver, url: str, project_id: int, ready: str) -> None:
    """Label All Tasks: the first task of the reviewer's queue, instructions dismissed."""
    driver.get(f"{url}/projects/{project_id}/data?labeling=1")
    wait = WebDriverWait(driver, 90)
    close = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'button[aria-label="Close modal"]'))
    assert "Fit to train a medical model?" in driver.page_source  # the instructions are in the tool
    close[0].click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".lsf-modal-ls_visible"))


def click_text(driver, text: str) -> None:
    driver.find_element(By.XPATH, f"//*[normalize-space(text())='{text}']").click()


def controls(driver) -> dict[str, WebElement]:
    """Every control a physician needs on the task."""
    found = {
        "labels": driver.find_element(By.CSS_SELECTOR, ".mc-side .lsf-labels"),
        "not phi": driver.find_element(By.XPATH, "//*[normalize-space(text())='Not PHI (over-redacted)']"),
        "verdict": driver.find_element(By.CSS_SELECTOR, ".mc-side .lsf-choices"),
        "stars": driver.find_elements(By.CSS_SELECTOR, ".mc-side .ant-rate-star")[-1],
        "comment": driver.find_element(By.CSS_SELECTOR, ".mc-side textarea"),
        "submit": driver.find_element(By.XPATH, "//button[normalize-space(.)='Submit']"),
        "skip": driver.find_element(By.XPATH, "//button[normalize-space(.)='Skip']"),
        "note": driver.find_element(By.CSS_SELECTOR, ".mc-note"),
    }
    specialty = driver.find_elements(By.XPATH, "//h4[text()='Specialty']/following-sibling::*[1]")
    if specialty:
        found["specialty"] = specialty[0]
    return found


def assert_in_viewport(driver, elements: dict[str, WebElement]) -> None:
    assert driver.execute_script("return [window.innerWidth, window.innerHeight]") == [WIDTH, HEIGHT]
    for name, element in elements.items():
        box = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];",
            element,
        )
        assert element.is_displayed(), name
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= WIDTH and box[3] <= HEIGHT, (name, box)


def wait_annotations(client, project_id: int, count: int) -> list:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (task,) = client.tasks.list(project=project_id, fields="all")
        if len(task.annotations or []) >= count:
            return task.annotations
        time.sleep(0.5)
    raise AssertionError(f"no annotation saved in project {project_id}")


def test_two_physicians_review_in_the_browser(ls_config, reviewer_store, browser, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="medcurate")
    shots = Path(os.environ.get("MEDCURATE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    url = server.read_state(ls_config).url
    config = ReviewConfig(
        label_studio=ls_config,
        text_project="browser text",
        image_project="browser image",
        outbox=str(tmp_path / "outbox.jsonl"),
        reviews_dir=str(tmp_path / "reviews"),
    )

    # Two accounts, each printed once with its password; list-reviewers shows no secret.
    passwords = {}
    for email, specialty in (("a.ferrow@example.org", "cardiology"), ("b.lindqvist@example.org", None)):
        _cli("add-reviewer", ls_config, email=email, specialty=specialty)
        printed = capsys.readouterr().out
        assert f"login {email}" in printed and url in printed
        passwords[email] = printed.split("password ", 1)[1].split()[0]
    _cli("list-reviewers", ls_config)
    listed = capsys.readouterr().out
    assert "a.ferrow@example.org\tcardiology" in listed and "b.lindqvist@example.org\t-" in listed
    first, second = reviewers.list_reviewers(ls_config)

    text_sample, image_sample = samples()
    assert push_samples([text_sample, image_sample], config).sent == 2
    admin = server.admin_token(ls_config)
    clients = {r.email: reviewer_client(config, r.email, None) for r in (first, second)}
    projects = {
        (r.email, kind): ensure_project(clients[r.email], config, kind, per_reviewer=True)
        for r in (first, second)
        for kind in (TEXT, IMAGE)
    }

    # First physician: mark the surviving name, answer, rate, submit.
    log_in(browser, url, first.email, passwords[first.email])
    open_queue(browser, url, projects[first.email, TEXT], ".lsf-richtext__line")
    assert "de-identification confidence 0.41" in browser.find_element(By.CSS_SELECTOR, ".mc-note").text
    assert_in_viewport(browser, controls(browser))
    browser.save_screenshot(str(shots / "review-text-task.png"))
    click_text(browser, "Name")
    assert browser.execute_script(SELECT_WORD, SURVIVOR)
    marked = browser.find_elements(By.CSS_SELECTOR, ".htx-highlight")
    assert SURVIVOR in [element.text for element in marked]
    click_text(browser, "Yes, fit to train")
    browser.find_elements(By.CSS_SELECTOR, ".mc-side .ant-rate-star")[3].click()  # 4 of 5
    controls(browser)["specialty"].click()
    click_text(browser, "Cardiology")
    click_text(browser, "Submit")
    (saved,) = wait_annotations(clients[first.email], projects[first.email, TEXT], 1)
    assert {item["from_name"] for item in saved["result"]} >= {"phi", "verdict", "accuracy", "specialty"}

    open_queue(browser, url, projects[first.email, IMAGE], ".mc-main canvas")
    image_controls = controls(browser)
    image_controls["image"] = browser.find_element(By.CSS_SELECTOR, ".mc-main canvas")
    assert_in_viewport(browser, image_controls)
    browser.save_screenshot(str(shots / "review-image-task.png"))

    # Second physician: the same sample, no trace of the first's answers; then their own review.
    log_in(browser, url, second.email, passwords[second.email])
    browser.get(f"{url}/api/projects?page_size=100")
    visible = browser.find_element(By.TAG_NAME, "body").text
    assert f'"id":{projects[first.email, TEXT]},' not in visible.replace(" ", "")
    for path in (f"projects/{projects[first.email, TEXT]}", f"tasks/{saved['task']}"):
        browser.get(f"{url}/api/{path}")  # the first reviewer's project and task
        assert '"status_code":404' in browser.find_element(By.TAG_NAME, "body").text, path
    open_queue(browser, url, projects[second.email, TEXT], ".lsf-richtext__line")
    page = browser.find_element(By.CSS_SELECTOR, ".lsf-main-view").text
    assert "Quillby" in page  # the same text ...
    highlighted = [element.text for element in browser.find_elements(By.CSS_SELECTOR, ".htx-highlight")]
    assert highlighted == ["<PERSON>", "<DATE>"]  # ... with only de-id's own redactions marked
    assert not browser.find_elements(By.CSS_SELECTOR, ".mc-side .ant-checkbox-checked")
    assert not browser.find_elements(By.CSS_SELECTOR, ".mc-side .ant-rate-star-full")
    assert "Cardiology" not in controls(browser)["specialty"].text
    history = browser.find_element(By.XPATH, "//*[normalize-space(text())='History']")
    history.click()
    assert first.email not in browser.page_source and "a.ferrow" not in browser.page_source
    click_text(browser, "Yes, fit to train")
    browser.find_elements(By.CSS_SELECTOR, ".mc-side .ant-rate-star")[2].click()
    click_text(browser, "Submit")
    wait_annotations(clients[second.email], projects[second.email, TEXT], 1)
    # Community does not check organizations on annotations: one posted through the API into the
    # other reviewer's task is stored, and pull leaves it out.
    reject = [
        {"from_name": "verdict", "to_name": "text", "type": "choices", "value": {"choices": ["reject"]}}
    ]
    clients[second.email].annotations.create(saved["task"], result=reject)

    # Pull: the name comes back as PHI and the next version redacts it.
    capsys.readouterr()
    pulled = pull_reviews(config)
    assert pulled.verdicts == {"accepted": 1} and pulled.records == 2 and pulled.foreign == 1
    verdict = load_verdicts(tmp_path / "reviews")[text_sample["id"]]
    start = NOTE.index(SURVIVOR)
    assert verdict.phi_spans == [{"start": start, "end": start + len(SURVIVOR), "type": "PERSON"}]
    assert verdict.accuracy == pytest.approx(3.5) and verdict.specialty == "cardiology"
    published = apply_verdict(text_sample, verdict)
    assert SURVIVOR not in published["text"] and "Dr <PERSON> for chest pain" in published["text"]

    # Secrets: each password printed once (above), no token or password anywhere else.
    secrets_ = [admin, *passwords.values(), *(reviewers.reviewer_token(ls_config, e) for e in passwords)]
    output = capsys.readouterr()
    console = "\n".join(entry["message"] for entry in browser.get_log("browser"))
    stores = {reviewer_store.name, ".admin_token", ".admin_password"}
    for secret in secrets_:
        assert secret not in output.out + output.err + caplog.text + console
    tokens = {admin, *(reviewers.reviewer_token(ls_config, e) for e in passwords)}
    for folder in (server.data_dir(ls_config), tmp_path, Path(browser.profile_dir)):
        for path in folder.rglob("*"):
            if not path.is_file() or path.name in stores:
                continue
            data = path.read_bytes()
            in_database = ".sqlite3" in path.name or path.is_relative_to(server.cluster(ls_config).pgdata)
            for secret in secrets_:
                # Label Studio keeps API tokens (not passwords) in its own database.
                if not (secret in tokens and in_database):
                    assert secret.encode() not in data, (path, secret[:4])
