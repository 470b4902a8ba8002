#!/usr/bin/python3
"""Headless Chromium on onramp-controller's status page, driven by
selenium (chromium-driver): the e2e suite runs it inside the test bed's
router namespace, where the controller's status listener is, and talks to
it over stdin/stdout, one JSON object a line.

  1. opens URL and waits until every PoP of --pops is on the map, connected;
     prints {"ready": true, ...};
  2. reads a line from stdin (the endpoint server was killed just before);
  3. waits until every health cell of --endpoint (for --listener) shows
     "unhealthy", for every PoP; prints {"unhealthy_after_s": ...};
  4. saves a screenshot to --screenshot and exits (0, or 1 on a timeout).

With --matrix, instead of 2 and 3: waits until the PoP x PoP table shows an
RTT for every pair of --pops and prints {"matrix": {"FRA1 SIN1": ms, ...},
"paths": {"FRA1 web ap-southeast": "SIN1" (the relay, "" direct), ...}}.
With --down FROM,TO, instead: waits until the PoP x PoP cell FROM -> TO
says the path is held down and prints {"down": "<the cell's text>"}.

usage: status_page_browser.py --url URL --pops FRA1,SIN1 --endpoint ADDR[,ADDR]
                              --listener web --screenshot FILE [--timeout S]
       status_page_browser.py --url URL --pops FRA1,SIN1,IAD1 --matrix
                              --screenshot FILE [--timeout S]
       status_page_browser.py --url URL --pops FRA1,SIN1,IAD1 --down FRA1,SIN1
                              --screenshot FILE [--timeout S]
"""
import argparse
import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def say(**kw):
    print(json.dumps(kw), flush=True)


def wait(driver, what, fn, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = fn(driver)
            if got:
                return got
        except Exception:  # the page redraws under us: ask again
            pass
        time.sleep(step)
    raise TimeoutError(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pops", required=True)
    ap.add_argument("--endpoint", default="")
    ap.add_argument("--matrix", action="store_true")
    ap.add_argument("--down", default="", help="FROM,TO: wait until that path shows down")
    ap.add_argument("--listener", default="web")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    pops = args.pops.split(",")
    endpoints = args.endpoint.split(",")

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,2000", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking"):
        options.add_argument(flag)
    profile = tempfile.TemporaryDirectory(prefix="onramp-chromium-")
    options.add_argument(f"--user-data-dir={profile.name}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    code = 1
    try:
        driver.get(args.url)

        # Read in one script, so a redraw between two reads cannot leave a
        # stale element.
        def pops_connected(d):
            states = dict(d.execute_script(
                "return [...document.querySelectorAll('#pops g.pop')]"
                ".map(g => [g.dataset.pop, g.dataset.state]);"))
            return all(states.get(p) == "connected" for p in pops) and states

        states = wait(driver, "every PoP connected on the map", pops_connected, 20)
        labels = driver.execute_script(
            "return [...document.querySelectorAll('#pops text')].map(t => t.textContent);")

        if args.down:
            a, b = args.down.split(",")

            def held_down(d):
                return d.execute_script(
                    "const td = [...document.querySelectorAll('#mesh td')].find(td =>"
                    " td.dataset.from === arguments[0] && td.dataset.to === arguments[1]);"
                    " return td && td.dataset.down === '1' && td.textContent;", a, b)

            say(down=wait(driver, f"{a} -> {b} down in the PoP x PoP table", held_down,
                          args.timeout))
            code = 0
            return code

        if args.matrix:
            def matrix(d):
                rows = d.execute_script(
                    "return [...document.querySelectorAll('#mesh td')]"
                    ".map(td => [td.dataset.from, td.dataset.to, td.dataset.rtt]);")
                got = {f"{a} {b}": float(rtt) for a, b, rtt in rows if rtt}
                want = [f"{a} {b}" for a in pops for b in pops if a != b]
                return all(k in got for k in want) and got

            got = wait(driver, "an RTT for every pair of PoPs", matrix, args.timeout)
            rows = driver.execute_script(
                "return [...document.querySelectorAll('#shares tr[data-pop]')]"
                ".map(tr => [tr.dataset.pop, tr.dataset.listener, tr.dataset.group,"
                " tr.querySelector('td.path').dataset.via]);")
            say(matrix=got, paths={f"{p} {l} {g}": v for p, l, g, v in rows}, labels=labels)
            code = 0
            return code

        def cells(d):
            rows = d.execute_script(
                "return [...document.querySelectorAll('#health td.health')]"
                ".map(td => [td.dataset.pop, td.dataset.endpoint, td.dataset.listener,"
                " td.dataset.state]);")
            return {(pop, ep): state for pop, ep, listener, state in rows
                    if listener == args.listener and ep in endpoints}

        def all_in(state):
            def check(d):
                c = cells(d)
                want = [(p, e) for p in pops for e in endpoints]
                return all(c.get(k) == state for k in want) and c
            return check

        wait(driver, "the endpoint healthy from every PoP", all_in("healthy"), 20)
        say(ready=True, pops=states, labels=labels)
        sys.stdin.readline()
        t0 = time.monotonic()
        try:
            wait(driver, "the endpoint unhealthy from every PoP", all_in("unhealthy"),
                 args.timeout)
            say(unhealthy_after_s=round(time.monotonic() - t0, 3), cells={
                f"{p} {e}": s for (p, e), s in cells(driver).items()})
            code = 0
        except TimeoutError as e:
            say(error=f"timed out: {e}", cells={f"{p} {e}": s for (p, e), s in cells(driver).items()})
        time.sleep(0.3)  # the changes list catches up for the picture
    except TimeoutError as e:
        say(error=f"timed out: {e}")
    finally:
        driver.save_screenshot(args.screenshot)
        driver.quit()
        profile.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
