"""Web UI and HTML report: the TFS tab (FPS, exact percentiles), start-form errors, the report section.

The FPS meter, form checks and report section import neither Locust nor gRPC,
so their tests run in the pytest process. The browser test drives Debian's
chromium through selenium against a real `locust` web UI process and a real
demo server on loopback.
"""

import base64
import csv
import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from types import SimpleNamespace

import pytest

from conftest import ROOT, locust_command
from tfs_user.results import report
from tfs_user.web import form as web_form
from tfs_user.demo.server import ModelConfig
from tfs_user.results.fps_meter import CURRENT_WINDOW_S, FpsMeter
from tfs_user.web.html_report import fps_chart, insert_section, report_section
from tfs_user.options import form_labels
from tfs_user.stats import Recorder
from tfs_user.web.form import check_form, ui_field_name

LOCUSTFILE_TEXT = "from tfs_user.user import OptionsTfsUser  # noqa: F401\nimport tfs_user.web.ui  # noqa: F401\n"
TINY = ModelConfig(shape=(-1, 4), output_size=1)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _record(recorder, name, end, frames, n=1):
    for _ in range(n):
        recorder.record(name, 2.0, True, frames, end - 0.002, end)


# ---------------------------------------------------------------- units

def test_current_fps_uses_the_requests_end_times_not_the_sampling_times():
    meter, recorder, t0 = FpsMeter(), Recorder(), 1000.0
    _record(recorder, "Predict m", t0, 4)
    meter.sample(recorder, now=t0 + 0.1)
    # a worker report arriving late: 3 s of requests (400 frames) merged at once, sampled 2 s later
    _record(recorder, "Predict m", t0 + 3.0, 4, n=100)
    meter.sample(recorder, now=t0 + 5.0)
    assert meter.current("Predict m", now=t0 + 5.0) == pytest.approx(400 / 3.0)
    assert meter.current(report.AGGREGATED, now=t0 + 5.0) == pytest.approx(400 / 3.0)
    # nothing ended in the last CURRENT_WINDOW_S seconds: 0
    assert meter.current("Predict m", now=t0 + 3.0 + CURRENT_WINDOW_S + 0.1) == 0.0
    assert [round(f, 3) for _, f in meter.chart][-1] == round(400 / 3.0, 3)


def test_current_fps_window_and_a_new_test_starting_a_new_series():
    meter, recorder, t0 = FpsMeter(), Recorder(), 2000.0
    for second in range(30):  # 10 frames/s for 20 s, then 50 frames/s
        _record(recorder, "Predict m", t0 + second, 10 if second < 20 else 50)
        meter.sample(recorder, now=t0 + second)
    assert meter.current("Predict m", now=t0 + 29) == pytest.approx(50.0)
    meter.sample(Recorder(), now=t0 + 30)  # hooks make a new Recorder at test_start
    assert meter.current("Predict m", now=t0 + 30) == 0.0 and len(meter.chart) == 1


def test_first_sample_reads_the_rate_since_the_first_request():
    meter, recorder = FpsMeter(), Recorder()
    recorder.record("Predict m", 2.0, True, 8, 100.0, 100.5)
    recorder.record("Predict m", 2.0, True, 8, 100.5, 102.0)
    meter.sample(recorder, now=102.1)
    assert meter.current("Predict m", now=102.1) == pytest.approx(16 / 2.0)


def test_a_masters_current_fps_rates_each_worker_on_its_own():
    """Two workers at 100 frames/s each, reporting every 3 s, 0.2 s apart: rated per worker, every reading is 200;
    one series of the merged figures (the master's before: the latest end of either beside the frames of both)
    swings to 230 as the end of the window falls on one worker's report or the other's (measured beside it)."""
    merged, per_worker, one_series, t0 = Recorder(), FpsMeter(), FpsMeter(), 1000.0
    last = {"a": t0, "b": t0}
    reports = sorted([(t0 + 3 * k, "a") for k in range(1, 12)] + [(t0 + 0.2 + 3 * k, "b") for k in range(1, 12)])
    ours, merged_readings = [], []
    for step in range(68):  # a sample every 0.5 s, for 34 s
        now = t0 + 0.5 * step
        while reports and reports[0][0] <= now:
            at, worker = reports.pop(0)
            sent = Recorder()  # the worker's requests since its last report: 50 per second, 2 frames each
            for i in range(round((at - last[worker]) * 50)):
                _record(sent, "Predict m", last[worker] + (i + 1) / 50, 2)
            last[worker] = at
            merged.merge(sent)
            per_worker.add_report(worker, sent, merged)
        per_worker.sample(merged, now=now, local=False)
        one_series.sample(merged, now=now)
        if now >= t0 + 12:  # the 10 s window full
            ours.append(per_worker.current("Aggregated", now))
            merged_readings.append(one_series.current("Aggregated", now))
    assert all(f == pytest.approx(200.0, rel=1e-6) for f in ours), ours
    assert max(merged_readings) > 1.1 * 200, merged_readings  # the baseline: what the master read before
    assert per_worker.current("Predict m", now) == pytest.approx(200.0, rel=1e-6)
    assert per_worker.current("Predict m", now=now + CURRENT_WINDOW_S + 3.1) == 0.0  # both stopped: 0


def test_ui_field_names_follow_the_pages_camel_case_round_trip():
    # the page posts slo_p99_ms back as slo_p9_9ms (seen in chromium: the field is labelled "Slo P9 9Ms")
    assert ui_field_name("slo_p99_ms") == "slo_p9_9ms"
    assert ui_field_name("batch_size") == "batch_size"
    assert ui_field_name("tfs_iterations") == "tfs_iterations"


def _environment(**values):
    import configargparse

    from tfs_user.options import add_options

    parser = configargparse.ArgumentParser()
    add_options(parser)
    options = parser.parse_args([])
    for key, value in values.items():
        setattr(options, key, value)
    return SimpleNamespace(parsed_options=options, host="127.0.0.1:9000", runner=None)


def test_form_check_gives_one_line_per_bad_value(tmp_path):
    env = _environment()
    assert check_form(env, {"batch_size": "abc"}) == (
        None, "--batch-size: 'abc' is not an integer; expected an integer >= 1")
    message = check_form(env, {"batch_size": "0"})[1]
    assert message == "--batch-size: '0' is out of range; expected an integer >= 1"
    missing = str(tmp_path / "missing.npy")
    message = check_form(env, {"images_numpy_path": missing})[1]
    assert message.startswith(f"numpy file {missing!r} does not exist")
    assert "not a shape" in check_form(env, {"synthetic_shape": "8,x"})[1]
    assert "host" in check_form(env, {"host": "grpc://:"})[1].lower()


def test_form_check_returns_parsed_values_including_the_mangled_slo_field():
    env = _environment()
    values, message = check_form(env, {"batch_size": "4", "slo_p9_9ms": "12.5", "model_name": "small",
                                             "user_count": "2"})
    assert message is None
    assert values["batch_size"] == "4" and values["slo_p99_ms"] == 12.5 and values["model_name"] == "small"
    assert "user_count" not in values  # Locust's own fields are Locust's business


def test_form_check_reads_fields_posted_under_their_labels():
    env = _environment()
    form = {web_form.field_key("SLO p99 (ms)"): "12.5", web_form.field_key("Iterations per user"): "7",
            web_form.field_key("gRPC compression"): "gzip", web_form.field_key("Validate outputs"): "false"}
    values, message = check_form(env, form)
    assert message is None
    assert values == {"slo_p99_ms": 12.5, "tfs_iterations": 7, "grpc_compression": "gzip", "validate_outputs": False}
    assert check_form(env, {web_form.field_key("Batch size"): "0"}) == (
        None, "--batch-size: '0' is out of range; expected an integer >= 1")


def test_report_section_is_inserted_before_body_end_and_escapes_names():
    recorder = Recorder()
    recorder.record("Predict <b>", 1.5, True, 4, 10.0, 10.0015)
    recorder.record("Predict <b>", 2.5, True, 4, 10.5, 10.5025)
    section = report_section(report.summary(recorder), [(0.0, 1.0), (1.0, 2.0)])
    page = insert_section("<html><body><div id='root'></div></body></html>", section)
    assert page.index('id="tfs-summary"') < page.index("</body>")
    assert "Predict &lt;b&gt;" in page and "Predict <b>" not in page
    assert "<td>1.500</td>" in page and "<td>2.500</td>" in page
    assert _png(page, "tfs-fps-chart")  # the FPS chart: a real PNG image inlined
    assert "no FPS samples yet" in fps_chart([(5.0, 1.0), (5.0, 2.0)])  # no time span: no division by zero
    assert "<img" not in fps_chart([(5.0, 1.0)])


def _png(page, name):
    """The PNG bytes of ``<img id='name' src='data:image/png;base64,...'>`` in ``page`` (asserts it is one)."""
    match = re.search(rf"<img id='{re.escape(name)}' alt='[^']*' src='data:image/png;base64,([A-Za-z0-9+/=]+)'>", page)
    assert match, f"no {name} image in the page"
    data = base64.b64decode(match.group(1))
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, data[:16]
    return data


def _table_rows(page, table_id):
    """Cell texts of the rows of ``<table id='table_id'>`` in ``page`` (header row first)."""
    table = page[page.index(f"<table id='{table_id}'>"):]
    table = table[:table.index("</table>")]
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]


def test_report_section_of_a_sweep_has_its_charts_and_steps_table():
    row = {"step": 1, "users": 2, "target_rps": None, "requests": 10, "failures": 0, "rps": 5.0, "fps": 20.0,
           "p50_ms": 1.5, "p90_ms": 2.0, "p99_ms": 3.0, "p99.9_ms": 3.0, "max_ms": 3.0, "within_slo": True,
           "loop_lag_p99_ms": 0.25, "loop_lag_max_ms": None}
    rows = [row, dict(row, step=2, users=4, fps=35.0, p50_ms=2.5, p99_ms=6.0, within_slo=False)]
    samples = [(1.0, 20.0, 1.5, 3.0), (2.0, 35.0, 2.5, 6.0)]
    section = report_section(report.summary(Recorder()), [], capacity={
        "rows": rows, "samples": samples, "slo_p99_ms": 5.0, "best_line": "Highest FPS within the SLO: 20.0"})
    _png(section, "tfs-latency-vs-fps")
    _png(section, "tfs-over-time")
    assert "Highest FPS within the SLO: 20.0" in section
    header, *cells = _table_rows(section, "steps")
    assert header[0] == "Step" and header[12:] == ["Within SLO", "Loop lag p99 ms", "Loop lag max ms", "Server requests",
                                                       "Server request ms", "Server queue ms", "Server inference ms"]
    assert [c[0] for c in cells] == ["1", "2"] and cells[1][12] == "no" and cells[0][7] == "1.500"
    assert cells[0][13:] == ["0.250", "", "", "", "", ""]  # no server metrics: empty cells
    assert "tfs-latency-vs-fps" not in report_section(report.summary(Recorder()), [])  # not a capacity run


def test_html_report_file_carries_the_tfs_summary(tmp_path, demo_server, small_model, run_locust):
    (tmp_path / "webui_locustfile.py").write_text(LOCUSTFILE_TEXT)
    server = demo_server(models=[small_model])
    run = run_locust("-f", "webui_locustfile.py", "--host", server.address, "-u", "2", "-r", "2",
                     "--iterations", "50", "--batch-size", "2", "--model-name", "small",
                     "--synthetic-shape", "8,8,3", "--html", "report.html",
                     env={"PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.output
    page = (tmp_path / "report.html").read_text()
    section = page[page.index('id="tfs-summary"'):]
    assert page.index('id="tfs-summary"') < page.rindex("</body>")
    row = run.tfs_csv()["Aggregated"]
    assert row["Frames"] == "200" == str(server.counts()["frames"] - 2 * 2)  # minus 2 warm-up requests
    assert f"<td>{row['FPS']}</td>" in section and f"<td>{row['p99 ms']}</td>" in section


def test_html_report_of_a_sweep_has_the_steps_chart_and_rows(tmp_path, demo_server, run_locust):
    server = demo_server(delay_ms=2, models=[TINY])
    run = run_locust("--host", server.address, "--sweep", "users:1,2", "--step-time", "2s", "--status-interval", "0",
                     "--batch-size", "2", "--html", "report.html")
    assert run.returncode == 0, run.output
    page = (tmp_path / "report.html").read_text()
    section = page[page.index('id="tfs-summary"'):]
    _png(section, "tfs-latency-vs-fps")
    _png(section, "tfs-over-time")
    with open(tmp_path / "out_tfs_steps.csv", newline="") as f:
        assert _table_rows(section, "steps") == list(csv.reader(f))  # the same rows as the steps CSV


# ---------------------------------------------------------------- real browser

def _browser_missing():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not installed (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install selenium)"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_http(url, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"locust exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def browser(tmp_path):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def web_locust(tmp_path):
    """``web_locust(host)`` starts `locust` with its web UI on a free loopback port; returns the base URL."""
    processes = []

    def start(host, *args):
        (tmp_path / "webui_locustfile.py").write_text(LOCUSTFILE_TEXT)
        port = _free_port()
        log = open(tmp_path / "locust.log", "w")
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
        process = subprocess.Popen(
            locust_command("--web-host", "127.0.0.1", "--web-port", str(port), "--host", host, *args,
                           locustfile="webui_locustfile.py"),
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
        processes.append((process, log))
        url = f"http://127.0.0.1:{port}"
        _wait_for_http(url + "/", process, 90)
        return url

    yield start
    end_web_processes(processes)


def end_web_processes(processes):
    """End each (process, log) a web UI fixture started, by its pid: SIGTERM, SIGKILL after 10 s; close its log."""
    for process, log in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()


def stats_once_stopped(url, timeout_s=60):
    """Locust's ``/stats/requests`` of the web UI at ``url`` once its runner has stopped (or the last answer when
    ``timeout_s`` ran out: a bound, not a timing claim)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(url + "/stats/requests", timeout=5) as response:
            data = json.loads(response.read())
        if data["state"] == "stopped" or time.monotonic() >= deadline:
            return data
        time.sleep(0.5)


def test_browser_start_form_tfs_tab_stop_and_report(tmp_path, demo_server, small_model, browser, web_locust):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.common.exceptions import TimeoutException, WebDriverException

    server = demo_server(models=[small_model], delay_ms=2)
    url = web_locust(server.address)
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    browser.get(url + "/")

    def field(name, value):
        element = wait.until(lambda d: next((e for e in d.find_elements(By.NAME, name) if e.is_displayed()), None))
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.send_keys(Keys.CONTROL, "a")  # clear() does not reach the page's React state
        element.send_keys(Keys.DELETE, value)
        assert element.get_attribute("value") == value

    def body_text():
        return browser.find_element(By.TAG_NAME, "body").text

    field("userCount", "2")
    field("spawnRate", "2")
    browser.find_element(By.XPATH, "//button[contains(., 'Custom parameters')]").click()

    # our fields first, in OPTIONS order, each labelled as in OPTIONS ("SLO p99 (ms)", not "Slo P9 9Ms")
    labels = list(form_labels().values())
    wait.until(lambda d: d.find_elements(By.NAME, web_form.field_key(labels[-1])))
    shown = [e.get_attribute("textContent").replace(web_form.JOINER, "")
             for e in browser.find_elements(By.XPATH, "//form//label")]
    ours = [label for text in shown for label in labels if text == label or text.startswith(label + " (")]
    assert ours == labels, shown
    assert "SLO p99 (ms) (SLOs and output)" in shown and "Batch size (Load and capacity)" in shown  # topic as help
    cut = browser.execute_script(  # a label wider than its box is shown cut off with an ellipsis
        "return Array.from(document.querySelectorAll('form label')).filter(e => e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.textContent)")
    assert not [t for t in cut if any(t.replace(web_form.JOINER, "").startswith(label) for label in labels)], cut
    assert not [t for t in shown if re.match(r"(Slo P9|Tfs Iterations|Images Numpy Path|Grpc )", t)], shown
    names = [e.get_attribute("name") for e in browser.find_elements(By.XPATH, "//form//*[@name]")]
    assert [n for n in names if n in web_form.field_keys().values()] == list(web_form.field_keys().values()), names
    browser.save_screenshot(str(tmp_path / "webui_form_labels.png"))

    def key(label):
        return web_form.field_key(label)

    field(key("Model name"), "small")
    field(key("Synthetic frame shape"), "8,8,3")

    # a bad value: one readable line under the form, no run (the field posts back under its label)
    field(key("SLO p99 (ms)"), "abc")
    browser.find_element(By.XPATH, "//button[@type='submit']").click()
    wait.until(lambda d: "'abc' is not a number" in body_text())
    assert "error: --slo-p99-ms: 'abc' is not a number; expected milliseconds >= 0" in body_text()
    field(key("SLO p99 (ms)"), "0")
    field(key("Batch size"), "abc")
    browser.find_element(By.XPATH, "//button[@type='submit']").click()
    wait.until(lambda d: "'abc' is not an integer" in body_text())
    assert "error: --batch-size: 'abc' is not an integer; expected an integer >= 1" in body_text()
    browser.save_screenshot(str(tmp_path / "webui_form_error.png"))
    assert server.counts()["requests"] == 0

    field(key("Batch size"), "4")
    browser.find_element(By.XPATH, "//button[@type='submit']").click()
    wait.until(lambda d: "RUNNING" in body_text())

    # the TFS tab: live FPS and exact percentiles, refreshed by the UI's own polling
    browser.find_element(By.XPATH, "//button[@role='tab'][contains(., 'TFS FPS')]").click()

    def aggregated():
        headers = [h.text.strip() for h in browser.find_elements(By.XPATH, "//table//thead//th")]
        for row in browser.find_elements(By.XPATH, "//table//tbody/tr"):
            cells = [c.text.strip() for c in row.find_elements(By.TAG_NAME, "td")]
            if cells and cells[0] == "Aggregated" and len(cells) == len(headers):
                return dict(zip(headers, cells))
        return None

    def fps_shown(d):
        row = aggregated()
        return row if row and float(row["Current FPS"] or 0) > 0 and int(row["Frames"]) > 0 else None

    row = WebDriverWait(browser, 60, poll_frequency=0.2).until(fps_shown)
    server_frames = server.counts()["frames"]
    shown = int(row["Frames"])
    assert set(row) >= {"Name", "Current FPS", "FPS", "p50 ms", "p99 ms", "p99.9 ms", "Max ms"}
    # the page shows what the process had up to about 6 s ago (UI poll 2 s, caches 2 s + 2 s);
    # the server also counts the 2 warm-up requests
    assert shown <= server_frames <= shown + 2 * 4 + float(row["FPS"]) * 8, (row, server_frames)
    assert float(row["Min ms"]) <= float(row["p50 ms"]) <= float(row["p99 ms"]) <= float(row["Max ms"])
    assert re.fullmatch(r"\d+\.\d{1,3}", row["p50 ms"]), row  # sub-millisecond digits, not whole ms
    time.sleep(2.5)  # one more refresh, so that the screenshot shows a few seconds of load
    browser.save_screenshot(str(tmp_path / "webui_tfs_tab.png"))

    # stop from the UI (the page re-renders every 2 s: on a busy machine a click can land on a button
    # being replaced, so it is clicked again while the page still shows the run)
    polls = [0]

    def stopped_after_click(d):
        if "STOPPED" in body_text():
            return True
        polls[0] += 1
        if polls[0] % 3 == 0:  # seen 2 in 7 runs: the runner stopped, the page not re-rendered in 60 s: reload it
            d.refresh()
            return False
        buttons = [b for b in d.find_elements(By.TAG_NAME, "button") if b.text.strip().upper() == "STOP"]
        if buttons:
            try:
                buttons[0].click()
            except WebDriverException:  # replaced while clicked
                pass
        return False

    try:
        WebDriverWait(browser, 60, poll_frequency=5).until(stopped_after_click)
    except TimeoutException:
        with urllib.request.urlopen(url + "/stats/requests", timeout=5) as response:
            state = json.loads(response.read())["state"]
        raise AssertionError(f"the page never showed STOPPED; the runner's state: {state}; "
                             f"log: {(tmp_path / 'locust.log').read_text()[-3000:]}")
    with urllib.request.urlopen(url + "/stats/requests", timeout=5) as response:
        assert b'"state":"stopped"' in response.read().replace(b" ", b"")
    time.sleep(0.5)
    frames_then = server.counts()["frames"]
    time.sleep(1.0)
    assert server.counts()["frames"] == frames_then  # no request after the stop

    # the report (the UI's "Download Report"): Locust's page with the TFS section, final figures
    browser.get(url + "/stats/report")
    section = wait.until(lambda d: d.find_element(By.ID, "tfs-summary"))
    browser.execute_script("arguments[0].scrollIntoView();", section)
    browser.save_screenshot(str(tmp_path / "webui_report.png"))
    text = section.text
    aggregated_cells = section.find_element(By.XPATH, ".//tr[td[1][normalize-space()='Aggregated']]").text.split()
    frames = int(aggregated_cells[4])  # Name, Requests, Failures, Fail ratio, Frames, ...
    left_out = re.search(r"Left out: (\d+) warm-up requests \(0 failed\), (\d+) completed after stop", text)
    assert left_out, text
    client_frames = frames + 4 * (int(left_out.group(1)) + int(left_out.group(2)))
    # exact, except requests the stop cut short (sent, answered by the server, never reported): at most one per user
    assert client_frames <= server.counts()["frames"] <= client_frames + 2 * 4, (text, server.counts())
    assert frames >= shown


def test_web_ui_steps_tab_follows_the_sweep_and_the_report_has_its_chart(tmp_path, demo_server, web_locust):
    server = demo_server(delay_ms=2, models=[TINY])
    url = web_locust(server.address, "--autostart", "-u", "1", "--sweep", "users:1,2", "--step-time", "5s",
                     "--status-interval", "0")

    def steps():
        with urllib.request.urlopen(url + "/stats/requests", timeout=5) as response:
            data = json.loads(response.read())
        tables = {t["key"]: t["data"] for t in data.get("extended_stats", [])}
        return data["state"], tables["tfs_steps"]

    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state, rows = steps()
        seen.append(([r["step"] for r in rows], rows[0]["requests"] if rows else None))
        if state == "stopped" and len(rows) == 2:
            break
        time.sleep(0.5)
    # step 1 shown while it ran, its figures growing, before step 2 was entered
    assert len({n for steps, n in seen if steps == ["1"] and n != "0"}) >= 2, seen
    assert [r["step"] for r in rows] == ["1", "2"] and [r["users"] for r in rows] == ["1", "2"], rows
    assert set(rows[0]) == {"step", "users", "target_rps", "requests", "failures", "rps", "fps", "p50_ms", "p90_ms",
                            "p99_ms", "p999_ms", "max_ms", "within_slo", "loop_lag_p99_ms", "loop_lag_max_ms",
                            "server_requests", "server_request_ms", "server_queue_ms", "server_inference_ms"}
    assert rows[0]["server_requests"] == "" and rows[0]["server_queue_ms"] == ""  # no --server-metrics: empty
    assert all(float(r["loop_lag_p99_ms"]) <= float(r["loop_lag_max_ms"]) for r in rows), rows  # every step sampled
    assert all(int(r["requests"]) > 0 and float(r["fps"]) > 0 for r in rows), rows
    with urllib.request.urlopen(url + "/stats/report", timeout=20) as response:
        page = response.read().decode()
    section = page[page.index('id="tfs-summary"'):]
    _png(section, "tfs-latency-vs-fps")
    assert [c[0] for c in _table_rows(section, "steps")[1:]] == ["1", "2"]
    with urllib.request.urlopen(url + "/tfs/fps", timeout=20) as response:  # the chart page: FPS over the sweep
        _png(response.read().decode(), "tfs-fps-chart")


def test_browser_sweep_typed_into_the_form_runs_its_steps_and_ends(tmp_path, demo_server, browser, web_locust):
    # Before, a sweep typed into the start form was ignored: the users ran flat, no step rows, no end.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    server = demo_server(delay_ms=2, models=[TINY])
    url = web_locust(server.address, "--status-interval", "0")
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    browser.get(url + "/")

    def field(name, value):
        element = wait.until(lambda d: next((e for e in d.find_elements(By.NAME, name) if e.is_displayed()), None))
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE, value)
        assert element.get_attribute("value") == value

    field("userCount", "4")
    field("spawnRate", "4")
    browser.find_element(By.XPATH, "//button[contains(., 'Custom parameters')]").click()
    labels = form_labels()
    field(web_form.field_key(labels["sweep"]), "users:1,2")
    field(web_form.field_key(labels["step_time"]), "2s")
    browser.find_element(By.XPATH, "//button[@type='submit']").click()

    deadline = time.monotonic() + 60
    state, rows = None, []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/stats/requests", timeout=5) as response:
            data = json.loads(response.read())
        state = data["state"]
        rows = {t["key"]: t["data"] for t in data.get("extended_stats", [])}.get("tfs_steps", [])
        if state == "stopped":
            break
        time.sleep(0.5)
    assert state == "stopped", (state, rows)  # the sweep ended the run by itself
    assert [r["step"] for r in rows] == ["1", "2"] and [r["users"] for r in rows] == ["1", "2"], rows
    assert all(int(r["requests"]) > 0 for r in rows), rows


@pytest.mark.parametrize("protocol, verb", [("kserve", "ModelInfer"), ("tfs", "Predict")])
def test_protocol_chosen_on_the_start_form_takes_effect(tmp_path, demo_server, web_locust, protocol, verb):
    # The start form posts to /swarm; its protocol field must reach the users' calls (the demo server
    # answers both on one port and records which model each call named; the request names say the call).
    server = demo_server(delay_ms=1, models=[TINY])
    url = web_locust(server.address, "--status-interval", "0")
    labels = form_labels()
    fields = {"user_count": "1", "spawn_rate": "1", "host": server.address,
              web_form.field_key(labels["protocol"]): protocol, web_form.field_key(labels["tfs_iterations"]): "5",
              web_form.field_key(labels["warmup_iterations"]): "0"}
    body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/swarm", data=body), timeout=10) as response:
        assert json.loads(response.read())["success"] is True
    data = stats_once_stopped(url)
    names = {s["name"]: s["num_requests"] for s in data["stats"]}
    assert names.get(f"{verb} resnet") == 5, names
    assert server.counts()["ok"] == 5


def test_server_metrics_typed_into_the_start_form_fill_the_server_tab_and_report(tmp_path, demo_server, web_locust):
    # The start form's --server-metrics field takes effect: the server's own count and times in the TFS server
    # metrics tab (scraped by the web UI's process) and in the report.
    server = demo_server(delay_ms=2, models=[TINY], metrics_port=0)
    url = web_locust(server.address, "--status-interval", "0")
    labels = form_labels()
    fields = {"user_count": "2", "spawn_rate": "2", "host": server.address,
              web_form.field_key(labels["server_metrics"]): server.metrics_url,
              web_form.field_key(labels["tfs_iterations"]): "15", web_form.field_key(labels["warmup_iterations"]): "1"}
    body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/swarm", data=body), timeout=10) as response:
        assert json.loads(response.read())["success"] is True
    deadline = time.monotonic() + 60
    rows = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/stats/requests", timeout=5) as response:
            data = json.loads(response.read())
        rows = {t["key"]: t["data"] for t in data.get("extended_stats", [])}.get("tfs_server", [])
        if data["state"] == "stopped" and rows and rows[0]["requests"] is not None:
            break
        time.sleep(0.5)
    assert server.counts()["ok"] == 32  # 2 users x (15 + 1 warm-up)
    assert [(r["url"], r["server"], r["requests"], r["client_requests"], r["note"]) for r in rows] == \
        [(server.metrics_url, "TF Serving", 32, 32, "")], rows
    assert rows[0]["inference_mean"] >= 2.0 and rows[0]["queue_mean"] is not None
    with urllib.request.urlopen(url + "/stats/report", timeout=20) as response:
        page = response.read().decode()
    table = _table_rows(page[page.index('id="tfs-summary"'):], "tfs-server")
    assert table[1][:5] == ["test", server.metrics_url, "TF Serving", "resnet", "32"], table
