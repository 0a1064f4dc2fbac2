#!/usr/bin/env python3
"""The portal in a real browser: Debian's Chromium driven by Playwright.

Usage: browser.py <portal base URL> <artefacts dir>

Against a running `casewire dev` with its demo data: sign in through the
dev issuer's login page, the case list (its weight and first paint are
measured and printed, never asserted), a case worked (comment, stage by
drag on the board and a refused drag that snaps back), bob's comment
arriving live on alice's open page, a file uploaded and shown, a new case, the
task inbox, the dashboard, a requester who sees his cases and no internal comment, a
viewer without actions, and sign-out. axe-core checks every screen: a
serious or critical violation fails the run. Screenshots are kept in the
artefacts dir. Exits 1 on the first failed check, with the reason.
"""

import json
import os
import struct
import zlib
import pathlib
import sys
import time

from playwright.sync_api import expect, sync_playwright

BASE = sys.argv[1].rstrip("/")
OUT = pathlib.Path(sys.argv[2])
AXE = pathlib.Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CASEWIRE_TEST_CHROMIUM", "/usr/bin/chromium")
# Playwright can not fetch its own browser here; Debian's, with the
# background connections off (the closed network refuses them).
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CHECKS = 0


def check(ok, what):
    global CHECKS
    CHECKS += 1
    if not ok:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def shows(locator, text, what):
    """A check that waits (up to 10 s) for the text, so a page that is
    still arriving after a form post is not read too early."""
    try:
        expect(locator).to_contain_text(text, timeout=10000)
        ok = True
    except AssertionError:
        ok = False
    check(ok, what)


def axe(page, screen):
    """Runs axe-core in the page; serious or critical violations fail."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    for v in bad:
        nodes = [n["html"][:120] for n in v["nodes"][:3]]
        print(f"  axe {screen}: {v['impact']} {v['id']}: {v['help']} {nodes}", file=sys.stderr)
    print(f"axe {screen}: {len(result['violations'])} violations, {len(bad)} serious or critical")
    check(not bad, f"no serious accessibility violation on {screen}")


# `tests/portal/screenshots` sets this: the README's pictures, the
# viewport only (they are committed, so kept small).
DOCS = os.environ.get("CASEWIRE_DOCS_SHOTS")
DOC_SHOTS = {"case-list", "case-list-dark", "detail", "board", "dashboard", "tasks"}


def shot(page, name):
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    if DOCS and name in DOC_SHOTS:
        page.screenshot(path=str(pathlib.Path(DOCS) / f"{name}.png"))


def sign_in(browser, user):
    # The portal's CSP forbids inline scripts; axe is injected as one.
    ctx = browser.new_context(bypass_csp=True)
    page = ctx.new_page()
    page.goto(BASE + "/")
    page.get_by_role("link", name="Sign in to casewire").click()
    page.wait_for_url("**/protocol/openid-connect/auth?**")
    check(page.locator("#password").count() == 1, f"{user}: the dev issuer's login page ({page.url})")
    page.fill("#username", user)
    page.fill("#password", user)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(BASE + "/cases")
    return ctx, page


def wait_for_demo(page, rows):
    for _ in range(120):
        if page.locator("tbody tr").count() >= rows:
            return
        time.sleep(1)
        page.reload()
    check(False, f"the demo data ({rows} cases) within two minutes")


def measure_list(page):
    """Transfer size and first contentful paint of the case list."""
    page.goto(BASE + "/cases")
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    figures = page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource').reduce((s, r) => s + r.transferSize, 0);
        const fcp = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
        return {bytes: nav.transferSize + res, fcpMs: fcp ? fcp.startTime : null,
                rows: document.querySelectorAll('tbody tr').length};
    }""")
    print("case list: " + json.dumps(figures))
    return figures


def work_a_case(page):
    # An open case, so a run against a server an earlier run used still
    # finds one it may comment on.
    page.goto(BASE + "/cases?q=&status=open&sort=-updatedAt")
    first = page.locator("tbody tr a").first
    key = first.inner_text()
    first.click()
    check(key in page.content(), "the case detail opens")
    axe(page, "detail")
    shot(page, "detail")
    page.fill("textarea[name=body]", "Checked from the browser: internal note 7Q")
    page.select_option("select[name=visibility]", "internal")
    page.get_by_role("button", name="Add comment").click()
    shows(page.locator("#case-comments"), "internal note 7Q", "the comment is on the case")
    return page.url


def search_as_you_type(page):
    """Typing in the search field narrows the list in place."""
    page.goto(BASE + "/cases")
    key = page.locator("tbody tr a").first.inner_text()
    page.evaluate("() => { window.notReloaded = true }")
    page.locator("input[type=search]").press_sequentially(key, delay=30)
    page.wait_for_function("k => document.querySelectorAll('tbody tr').length === 1 && "
                           "document.querySelector('tbody tr a').textContent === k", arg=key, timeout=10000)
    check(page.evaluate("() => window.notReloaded === true"), "the list follows the search without a reload")
    check("q=" in page.url and page.locator("input[type=search]").input_value() == key,
          "the address keeps the query, the field keeps the words")


def live(browser, page, url):
    """bob's comment arrives on alice's open case without a reload, and
    what alice is typing meanwhile stays as it is."""
    page.goto(url)
    page.wait_for_function("() => document.getElementById('live-status').textContent === 'Live'")
    page.evaluate("() => { window.notReloaded = true }")
    page.fill("textarea[name=body]", "half-typed by alice 3W")
    bob_ctx, bob = sign_in(browser, "bob")
    bob.goto(url)
    bob.fill("textarea[name=body]", "bob was here, live 8X")
    bob.select_option("select[name=visibility]", "public")
    started = time.monotonic()
    bob.get_by_role("button", name="Add comment").click()
    page.wait_for_selector("#case-comments >> text=bob was here, live 8X", timeout=15000)
    print(f"live: bob's comment on alice's page {1000 * (time.monotonic() - started):.0f} ms after his click")
    check(page.evaluate("() => window.notReloaded === true"), "bob's comment arrived live, without a reload")
    check(page.input_value("textarea[name=body]") == "half-typed by alice 3W", "what alice was typing is kept")
    shot(page, "live")
    bob_ctx.close()


def png(width=24, height=16):
    """A real PNG (a red rectangle), made here rather than shipped."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def upload(page, url):
    """A file through the upload form (with its progress script), shown on
    the case as an image; a refused type shows the API's reason."""
    page.goto(url)
    page.set_input_files("form.upload input[type=file]",
                         files=[{"name": "not-a-png.png", "mimeType": "image/png", "buffer": b"plain text"}])
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("form.upload [role=alert]:has-text('CW-CONTENT-MISMATCH')")
    check(True, "a file whose bytes are not its type is refused with the reason")
    # A name of this run's own, so a rerun against the same server finds
    # its own image.
    name = f"lid-photo-{os.getpid()}.png"
    page.set_input_files("form.upload input[type=file]",
                         files=[{"name": name, "mimeType": "image/png", "buffer": png()}])
    with page.expect_navigation():
        page.get_by_role("button", name="Upload").click()
    # The page loads images lazily: scroll it into view, then wait for the
    # bytes, so the check measures the image and not the race with loading.
    selector = f"img[alt='{name}']"
    page.wait_for_selector(selector)
    image = page.locator(selector)
    image.scroll_into_view_if_needed()
    try:
        page.wait_for_function("(sel) => { const i = document.querySelector(sel);"
                               " return i && i.complete && i.naturalWidth > 0; }", arg=selector, timeout=10000)
    except Exception:
        pass  # the check below reports what was there
    loaded = page.evaluate("(sel) => document.querySelector(sel).naturalWidth", selector)
    check(loaded == 24, f"the uploaded image is shown ({loaded} px wide)")


def drag(page, case, stage):
    """Drags a card to a column with the events a drag and drop fires
    (Playwright's emulated gesture proved unreliable on long columns)."""
    page.evaluate(
        """([c, st]) => {
            const card = document.querySelector(`.card[data-case='${c}']`);
            const target = document.querySelector(`.column[data-stage='${st}'] ul`);
            const dt = new DataTransfer();
            card.dispatchEvent(new DragEvent('dragstart', {bubbles: true, dataTransfer: dt}));
            target.dispatchEvent(new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: dt}));
            target.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: dt}));
        }""",
        [case, stage],
    )


def board(page):
    page.goto(BASE + "/board/customer-complaint")
    axe(page, "board")
    shot(page, "board")
    card = page.locator(".column[data-stage=new] .card[draggable=true]").first
    check(card.count() == 1, "a movable card in New")
    case = card.get_attribute("data-case")
    # Refused: from New straight to Done, which the definition does not allow.
    drag(page, case, "done")
    page.wait_for_selector("#board-error:not([hidden])")
    check(page.locator(f".column[data-stage=new] .card[data-case='{case}']").count() == 1, "a refused drag snaps back")
    print("refused drag: " + page.locator("#board-error").inner_text())
    # Accepted: the script reloads the board, which then has it in Triage.
    with page.expect_navigation():
        drag(page, case, "triage")
    check(page.locator(f".column[data-stage=triage] .card[data-case='{case}']").count() == 1, "a drag to Triage moves the case")


def new_case(page):
    page.goto(BASE + "/new/customer-complaint")
    axe(page, "new case")
    shot(page, "new-case")
    page.fill("#title", "Opened in the browser")
    page.select_option("#data-channel", "web")
    page.fill("#data-product", "Kettle K200")
    page.get_by_role("button", name="Open case").click()
    shows(page.locator("main"), "Opened in the browser", "the new case opens")


def to_the_end(page):
    """The case just opened, worked to the end on its page: assigned,
    prioritised, moved, tagged, resolved, closed."""
    fields = page.locator("#case-fields")
    page.get_by_role("button", name="Assign to me", exact=True).click()
    shows(fields, "alice", "assigned to alice")
    page.select_option("#case-work select[name=value]", "high")
    page.get_by_role("button", name="Set", exact=True).click()
    shows(fields, "high", "priority high")
    page.get_by_role("button", name="Move", exact=True).click()
    shows(fields, "triage", "moved to triage")
    page.fill("input[name=value][maxlength='64']", "browser")
    page.get_by_role("button", name="Add tag", exact=True).click()
    shows(page.locator("#case-tags"), "browser", "tagged")
    page.fill("input[name=note]", "Replaced under warranty")
    page.get_by_role("button", name="Resolve", exact=True).click()
    shows(fields, "resolved", "resolved")
    page.get_by_role("button", name="Close", exact=True).click()
    shows(fields, "closed", "closed")
    shot(page, "closed")


def requester(browser, internal_url):
    ctx, page = sign_in(browser, "dave")
    rows = page.locator("tbody tr").count()
    check(rows > 0, "dave sees his cases")
    check("internal note 7Q" not in page.content(), "no internal comment on dave's list")
    # dave's own case: no staff actions, and no internal comment in the HTML.
    page.locator("tbody tr a").first.click()
    html = page.content()
    check("Staff only" not in html and "Assign to me" not in html, "no staff actions for a requester")
    check("internal note 7Q" not in html, "no internal comment in dave's HTML")
    resp = page.goto(internal_url)
    check(resp.status == 404 or "internal note 7Q" not in page.content(), "another's case: nothing internal")
    ctx.close()


def viewer(browser, url):
    ctx, page = sign_in(browser, "erin")
    page.goto(url)
    html = page.content()
    check("Add comment" not in html and "Assign to me" not in html, "a viewer sees no action button")
    ctx.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        ctx, page = sign_in(browser, "alice")
        wait_for_demo(page, 20)
        axe(page, "case list")
        shot(page, "case-list")
        # The dark scheme follows the system's; axe checks its contrast too.
        page.emulate_media(color_scheme="dark")
        axe(page, "case list, dark")
        shot(page, "case-list-dark")
        page.emulate_media(color_scheme="light")
        # bob manages every queue: his list has all 50 demo cases.
        bob_ctx, bob = sign_in(browser, "bob")
        figures = measure_list(bob)
        bob_ctx.close()
        search_as_you_type(page)
        detail_url = work_a_case(page)
        live(browser, page, detail_url)
        upload(page, detail_url)
        board(page)
        new_case(page)
        to_the_end(page)
        page.goto(BASE + "/tasks")
        axe(page, "task inbox")
        shot(page, "tasks")
        page.goto(BASE + "/dashboard")
        check(page.locator("svg[role=img]").count() >= 4, "the dashboard draws its charts")
        axe(page, "dashboard")
        shot(page, "dashboard")
        requester(browser, detail_url)
        viewer(browser, detail_url)
        page.get_by_role("button", name="Sign out").click()
        page.goto(BASE + "/cases")
        check("/cases" not in page.url, "signed out: the list asks to sign in again")
        ctx.close()
        browser.close()
    print(f"browser tests: {CHECKS} checks passed; list {figures['bytes']} bytes, "
          f"first contentful paint {figures['fcpMs']} ms; screenshots in {OUT}")


if __name__ == "__main__":
    main()
