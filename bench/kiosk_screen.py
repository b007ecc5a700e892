"""What the on-site screen costs the kiosk process, and how fast a tap reaches the page.

Prints: RSS added by the screen server (after the gateway's own imports), CPU time per show(),
and show() -> page-rendered latency in headless Chromium (Debian's /usr/bin/chromium).
Run: .venv/bin/python bench/kiosk_screen.py [--taps 50]
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import subprocess
import tempfile
import time

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--taps", type=int, default=50)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the closed pages' dropped streams are expected here

    import kiosk.runtime  # noqa: F401  (what `warmcard kiosk` loads anyway)

    base = rss_kib()
    from kiosk.policy import Outcome
    from kiosk.screen import ScreenFeedback

    screen = ScreenFeedback(
        port=0, site="喜洲镇 幸福小院", hold=dict.fromkeys(Outcome, 0.2)
    ).start()
    started_rss = rss_kib()
    # A plain Chromium on the page (as on the Pi), so nothing of Playwright is in this process.
    chromium = subprocess.Popen(
        ["/usr/bin/chromium", *CHROMIUM_ARGS, "--user-data-dir=" + tempfile.mkdtemp(), screen.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while screen.clients == 0:
            if time.monotonic() > deadline:
                raise SystemExit("chromium never opened the event stream")
            time.sleep(0.05)
        for index in range(200):
            screen.show(Outcome.SUCCESS, f"签到成功 · 老人{index} / Checked in")
            time.sleep(0.005)
        served = rss_kib()
    finally:
        chromium.terminate()
        chromium.wait()

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 800, "height": 480})
        page.goto(screen.url)
        # The site name arrives with the first status event: the stream is open.
        page.wait_for_function("document.getElementById('site').textContent.length > 0")
        latencies = []
        for index in range(args.taps):
            sent_ms = time.time() * 1000
            screen.show(Outcome.SUCCESS, f"签到成功 · 老人{index} / Checked in")
            page.wait_for_function(
                f"document.getElementById('title-zh').textContent.endsWith('老人{index}')"
            )
            latencies.append(float(page.evaluate("document.body.dataset.shownAt")) - sent_ms)
        browser.close()
    time.sleep(0.5)

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    idle0 = cpu_s()
    time.sleep(10)
    idle_cpu = cpu_s() - idle0

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    shows = 10_000
    started = time.perf_counter()
    for index in range(shows):
        screen.show(Outcome.SUCCESS, f"杨桂英{index} 已签到 Checked in")
    wall = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    screen.stop()

    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    latencies.sort()

    def mib(kib: int) -> str:
        return f"{kib / 1024:.1f} MiB (+{(kib - base) / 1024:.1f} MiB)"

    median, worst = statistics.median(latencies), latencies[-1]
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(f"RSS after gateway imports:          {base / 1024:.1f} MiB")
    print(f"RSS with screen server started:     {mib(started_rss)}")
    print(f"... with Chromium on it, 200 taps:  {mib(served)}")
    print(f"CPU of the idle server, 10 s:       {idle_cpu * 1000:.1f} ms")
    print(
        f"show() cost (compose, JSON, queue): {wall / shows * 1e6:.1f} us wall, "
        f"{cpu / shows * 1e6:.1f} us CPU"
    )
    print(
        f"show() -> page rendered, {args.taps} taps: "
        f"median {median:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms"
    )


if __name__ == "__main__":
    main()
