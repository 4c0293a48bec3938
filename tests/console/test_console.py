"""The web console (/ui on groved's admin port) in a real browser: headless Chromium driven by
Selenium against real groved processes, with the project's Python client as "another client"
making and checking changes. Each test uses paths of its own on the shared server."""

from __future__ import annotations

import json
import re
import threading
from typing import List
from urllib.parse import urlparse

from conftest import Console, ConsoleGroved, b64
from selenium.webdriver.common.keys import Keys

from grove import Client, make_acl, make_digest_acl
from harness import Proxy, wait_for


def test_browse_shows_data_stat_and_acl(page: Console, zk: Client) -> None:
    value = {"greeting": "hello", "n": 1}
    raw = json.dumps(value, separators=(",", ":")).encode()
    zk.create("/console/a/b", raw, makepath=True)
    _, stat = zk.get("/console/a/b")

    page.open()
    page.expand("/console")
    page.expand("/console/a")
    assert page.item("/console/a").find_element("css selector", ".count").text == "1"
    page.select("/console/a/b")

    assert page.text("node-path") == "/console/a/b"
    assert page.text("node-data") == json.dumps(value, indent=2)  # JSON is pretty-printed
    assert "JSON" in page.text("data-info")
    assert page.item("/console/a/b").get_attribute("aria-selected") == "true"
    assert page.stat("dataVersion") == "0"
    assert page.stat("numChildren") == "0"
    assert page.stat("dataLength") == str(len(raw))
    assert page.stat("ephemeralOwner") == "0x0"
    assert page.stat("mode") == "persistent"
    assert page.stat("cZxid").startswith(f"{stat.czxid:#x} ")
    assert page.testid("stat-mZxid").get_attribute("data-value") == str(stat.mzxid)
    assert page.testid("stat-ctime").get_attribute("data-value") == str(stat.ctime)
    acl = page.text("acl")
    assert "world" in acl and "anyone" in acl and "cdrwa" in acl
    assert page.text("quota") == "No quota applies."

    page.click("view-hex")
    page.wait(lambda: page.text("node-data").startswith("00000000  7b 22 67 72"), "the hex view")
    assert page.testid("view-hex").get_attribute("aria-pressed") == "true"
    page.click("view-text")
    page.wait_text("node-data", json.dumps(value, indent=2))
    page.shot("tree-node-open")


def test_edit_saves_with_the_version_read(page: Console, zk: Client) -> None:
    path = "/console/edit/b"
    zk.create(path, b"first", makepath=True)

    page.open(f"#{path}")  # a link to the node: the tree opens down to it
    page.wait_node(path)
    page.wait(lambda: page.item(path).get_attribute("aria-selected") == "true", "the node selected in the tree")
    page.click("edit")
    editor = page.visible("#editor-text")
    assert editor.get_attribute("value") == "first"
    editor.clear()
    editor.send_keys("edited in the page")
    page.click("save")

    page.wait_text("node-data", "edited in the page")
    page.wait_text("stat-dataVersion", "1")
    data, stat = zk.get(path)
    assert data == b"edited in the page" and stat.version == 1


def test_live_updates_of_the_open_node_and_expanded_folders(page: Console, zk: Client) -> None:
    zk.create("/console/live/b", b"before", makepath=True)
    page.open()
    page.expand("/console")
    page.expand("/console/live")
    page.select("/console/live/b")
    page.wait_live()
    page.driver.execute_script("window.notReloaded = true")

    zk.set("/console/live/b", b"after")
    page.wait_text("node-data", "after")
    page.wait_text("stat-dataVersion", "1")

    zk.create("/console/live/c", b"new")
    page.item("/console/live/c")
    page.wait(lambda: page.item("/console/live").find_element("css selector", ".count").text == "2", "the child count")
    zk.delete("/console/live/c")
    page.gone('[data-path="/console/live/c"]')

    assert page.driver.execute_script("return window.notReloaded") is True
    assert page.text("live") == "Live"


def test_live_updates_resume_after_a_broken_connection(page: Console, zk: Client, server: ConsoleGroved) -> None:
    path = "/console/resume/b"
    zk.create(path, b"v0", makepath=True)
    proxy = Proxy(server.admin)  # between the browser and the admin port
    try:
        page.base = f"http://{proxy.addr}/ui/"
        page.open(f"#{path}")
        page.wait_node(path)
        page.wait_live()
        # Cut every connection, and let nothing through for now: the page is disconnected.
        proxy.pause()
        for s in list(proxy.sockets):
            s.close()
        page.visible('#live[data-state="reconnecting"]')
        assert page.text("live") == "Reconnecting…"
        zk.set(path, b"changed while disconnected")
        zk.create(f"{path}-sibling")
        proxy.resume()
        # The new subscription resumes from the zxid the page had seen: nothing is missed.
        page.wait_live()
        page.wait_text("node-data", "changed while disconnected", timeout=20)
        page.item(f"{path}-sibling")
    finally:
        proxy.close()


def test_conflicting_edit_is_shown_never_overwritten(page: Console, zk: Client) -> None:
    path = "/console/conflict/b"
    zk.create(path, b"original", makepath=True)
    page.open(f"#{path}")
    page.wait_node(path)
    page.wait_live()
    page.click("edit")
    editor = page.visible("#editor-text")
    editor.clear()
    editor.send_keys("mine")

    zk.set(path, b"theirs")  # meanwhile, another client
    page.visible('[data-testid="remote-change"]')  # told, and the edit is kept
    assert "changed on the server" in page.text("remote-change").lower()
    assert editor.get_attribute("value") == "mine"

    page.click("save")
    page.visible('[data-testid="conflict"]')
    assert page.text("conflict-mine") == "mine"
    assert page.text("conflict-theirs") == "theirs"
    assert page.text("conflict-base") == "0" and page.text("conflict-current") == "1"
    assert zk.get(path)[0] == b"theirs"  # nothing was overwritten
    page.shot("conflict")

    page.click("conflict-overwrite")
    page.wait_text("node-data", "mine")
    page.wait_text("stat-dataVersion", "2")
    page.gone('[data-testid="conflict"]')
    data, stat = zk.get(path)
    assert data == b"mine" and stat.version == 2


def test_conflict_reload_takes_the_servers_version(page: Console, zk: Client) -> None:
    path = "/console/conflict/reload"
    zk.create(path, b"v0", makepath=True)
    page.open(f"#{path}")
    page.wait_node(path)
    page.click("edit")
    page.visible("#editor-text").send_keys(" and mine")
    zk.set(path, b"v1 from elsewhere")
    page.click("save")
    page.visible('[data-testid="conflict"]')
    page.click("conflict-reload")
    page.wait_text("node-data", "v1 from elsewhere")
    assert not page.find("#editor").is_displayed()
    assert zk.get(path)[0] == b"v1 from elsewhere"


def test_create_and_delete_with_confirmation(page: Console, zk: Client) -> None:
    zk.ensure_path("/console/crud")
    page.open("#/console/crud")
    page.wait_node("/console/crud")

    page.click("create")
    path_input = page.visible("#create-path")
    assert path_input.get_attribute("value") == "/console/crud/"
    path_input.send_keys("made-here")
    page.find("#create-data").send_keys("hello")
    page.shot("create-dialog")
    page.find("#create-submit").click()
    page.wait_node("/console/crud/made-here")
    page.item("/console/crud/made-here")
    assert zk.get("/console/crud/made-here")[0] == b"hello"

    page.select("/console/crud")
    page.click("create")
    page.visible("#create-path").send_keys("job-")
    page.find('#create-mode option[value="persistent_sequential"]').click()
    page.find("#create-submit").click()
    page.wait(lambda: re.fullmatch(r"/console/crud/job-\d{10}", page.text("node-path")), "the sequential node")
    assert any(re.fullmatch(r"job-\d{10}", n) for n in zk.get_children("/console/crud"))

    # A node with children: a plain delete is refused (NOT_EMPTY), after confirmation.
    zk.create("/console/crud/made-here/x/y", makepath=True)
    page.select("/console/crud/made-here")
    page.click("delete")
    page.visible("#confirm-dialog")
    assert page.find("#confirm-message").text == "Delete /console/crud/made-here?"
    page.click("confirm-ok")
    page.visible('[data-testid="notice-error"][data-code="NOT_EMPTY"]')
    assert zk.exists("/console/crud/made-here") is not None

    # Delete subtree: cancelled first, then confirmed.
    page.click("delete-recursive")
    page.visible("#confirm-dialog")
    page.click("confirm-cancel")
    page.gone("#confirm-dialog")
    assert zk.exists("/console/crud/made-here/x/y") is not None
    page.click("delete-recursive")
    page.visible("#confirm-dialog")
    page.shot("delete-confirmation")
    page.click("confirm-ok")
    page.wait_node("/console/crud")
    page.gone('[data-path="/console/crud/made-here"]')
    assert zk.exists("/console/crud/made-here") is None


def test_acl_no_auth_then_login(page: Console, server: ConsoleGroved) -> None:
    with Client(server.client, auth_data=[("digest", "alice:wonderland")]) as alice:
        alice.create("/console/acl/secret", b"for alice only", makepath=True,
                     acl=[make_digest_acl("alice", "wonderland", all=True)])
    page.open()
    page.expand("/console")
    page.expand("/console/acl")
    page.select("/console/acl/secret", state="error")
    error = page.visible('[data-testid="node-error"]')
    assert "NO_AUTH" in error.text
    assert page.text("identity") == "anonymous"
    # Refused without a Basic challenge: the browser must not pop up its own login dialog.
    status, challenge = page.driver.execute_async_script(
        """const done = arguments[0];
        fetch('api/node?path=/console/acl/secret').then((r) => done([r.status, r.headers.get('WWW-Authenticate')]));""")
    assert (status, challenge) == (401, None)

    page.login("alice", "wonderland")
    page.wait_node("/console/acl/secret")
    page.wait_text("node-data", "for alice only")
    assert "digest" in page.text("acl") and "alice:" in page.text("acl")
    # The credentials stay in this tab's sessionStorage: no cookie, nothing in localStorage.
    stored = page.driver.execute_script(
        "return [sessionStorage.getItem('grove.console.auth') !== null, localStorage.length]")
    assert stored == [True, 0]
    assert page.driver.get_cookies() == []

    page.click("logout")
    page.wait_node("/console/acl/secret", state="error")
    assert "NO_AUTH" in page.text("node-error")


def test_read_only_console(page: Console, make_server) -> None:
    ro = make_server("--console", "read-only")
    with Client(ro.client) as c:
        c.create("/ro/x", b"data", makepath=True)
        page.use(ro).open("#/ro/x")
        page.wait_node("/ro/x")
        badge = page.visible('[data-testid="mode-badge"]')
        assert badge.text == "read-only"
        assert "read-only" in page.text("mode-reason")

        controls = page.find_all("[data-change]")
        assert len(controls) >= 5
        assert [c.get_attribute("id") for c in controls if c.is_displayed() and c.is_enabled()] == []

        for method, path, body in [
            ("PUT", "api/node", {"path": "/ro/x", "data": b64(b"changed"), "version": -1}),
            ("POST", "api/node", {"path": "/ro/y", "data": "", "mode": "persistent"}),
            ("DELETE", "api/node?path=/ro/x&version=-1&recursive=true", None),
        ]:
            status, answer = page.fetch(method, path, body)
            assert status == 405 and answer["code"] == "READ_ONLY", (method, status, answer)
        assert c.get("/ro/x")[0] == b"data" and c.exists("/ro/y") is None
        page.shot("read-only")


def test_coordination_locks_and_elections(page: Console, zk: Client, server: ConsoleGroved) -> None:
    holder = zk.lock("/console-locks/db", "worker-1")
    assert holder.acquire(timeout=10)
    token = holder.token
    other = Client(server.client)
    waiter = other.lock("/console-locks/db", "worker-2")
    got: List[bool] = []
    waiting = threading.Thread(target=lambda: got.append(waiter.acquire(timeout=60)), daemon=True)
    waiting.start()
    wait_for(lambda: len(holder.contenders()) == 2, what="the waiter in line")

    election = zk.election("/elections/console", "node-a")
    stop, proclaim = threading.Event(), threading.Event()

    def lead() -> None:
        proclaim.wait(60)
        election.proclaim(b"10.0.0.7:8080")
        stop.wait(60)

    running = threading.Thread(target=election.run, args=(lead,), daemon=True)
    running.start()
    try:
        wait_for(lambda: election.is_leader, what="the election won")
        page.open()
        page.tab("coord")
        page.visible('[data-lock-path="/console-locks/db"]')
        entries = lambda: page.find_all('[data-lock-path="/console-locks/db"] [data-testid="lock-entry"]')  # noqa: E731
        page.wait(lambda: len(entries()) == 2, "holder and waiter")
        first, second = entries()
        cell = lambda row, f: row.find_element("css selector", f'[data-field="{f}"]').text  # noqa: E731
        # The Python client keeps its identifier in the entry's data, the owner is its own.
        assert cell(first, "state") == "holder" and cell(first, "data") == "worker-1"
        assert cell(first, "token") == str(token)
        assert int(cell(first, "session"), 16) == zk.session_id
        assert cell(first, "owner").startswith("py-")
        assert cell(second, "state") == "waiting #1" and cell(second, "data") == "worker-2"
        assert cell(second, "token") == "–"
        assert int(cell(second, "session"), 16) == other.session_id

        # An election: its leader, with the value it proclaims (first its identifier).
        elected = page.visible('[data-election-path="/elections/console"]')
        value = lambda: page.find('[data-election-path="/elections/console"] [data-field="value"]').text  # noqa: E731
        page.wait(lambda: value() == "node-a", "the leader's value")
        assert int(elected.find_element("css selector", '[data-field="leader"]').text, 16) == zk.session_id
        proclaim.set()
        page.wait(lambda: value() == "10.0.0.7:8080", "the proclaimed value")

        # The root's ACL is open, so anyone has ADMIN on /: the sessions are listed.
        page.visible(f'[data-session-id="{zk.session_id:#x}"]')
        page.shot("coordination")

        # Handed over: the page (polling) shows the new holder with a larger token.
        holder.release()
        waiting.join(10)
        assert got == [True] and waiter.token is not None and waiter.token > token
        new_holder = lambda rows: len(rows) == 1 and (cell(rows[0], "data"), cell(rows[0], "token")) == (  # noqa: E731
            "worker-2", str(waiter.token))
        page.wait(lambda: new_holder(entries()), "the new holder")
        waiter.release()
    finally:
        proclaim.set()
        stop.set()
        running.join(10)
        other.close()


def test_sessions_need_admin_on_root(page: Console, make_server) -> None:
    s = make_server()
    with Client(s.client) as c:
        c.set_acls("/", [make_acl("world", "anyone", read=True, write=True, create=True, delete=True),
                         make_digest_acl("root", "secret", all=True)])
        page.use(s).open()
        page.tab("coord")
        denied = page.visible('[data-testid="sessions-denied"]')
        assert "Log in as a user with ADMIN on /" in denied.text
        page.login("root", "secret")
        page.visible(f'[data-session-id="{c.session_id:#x}"]')
        page.gone('[data-testid="sessions-denied"]')


def test_cluster_tab_and_rate_chart(page: Console, zk: Client) -> None:
    zk.ensure_path("/console/cluster-load")
    page.open()
    page.tab("cluster")
    page.wait(lambda: page.text("cluster-mode") in ("leader", "standalone"), "the mode")
    me = page.visible("#members tr.self")
    assert me.find_element("css selector", '[data-field="role"]').text == "leader"
    assert me.find_element("css selector", '[data-field="health"]').text == "healthy"
    assert page.text("cluster-health") == "healthy"

    stop = threading.Event()

    def write() -> None:  # bounded: at most 20 s, or until the chart shows them
        for i in range(400):
            if stop.wait(0.05):
                return
            zk.set("/console/cluster-load", str(i).encode())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        chart = page.visible('[data-testid="rate-chart"]')
        samples = lambda: int(chart.get_attribute("data-samples"))  # noqa: E731
        writes = lambda: float(chart.get_attribute("data-max-writes"))  # noqa: E731
        page.wait(lambda: samples() >= 2 and writes() > 0, "write rates in the chart", timeout=20)
    finally:
        stop.set()
        writer.join(10)
    points = page.find('[data-testid="line-writes"]').get_attribute("points").split()
    assert len(points) >= 2
    assert re.fullmatch(r"\d+\.\d/s", page.text("rate-writes"))
    page.shot("cluster")


def test_keyboard_navigation_of_tree_and_tabs(page: Console, zk: Client) -> None:
    zk.create("/kbd/k1/deep", makepath=True)
    zk.create("/kbd/k2")
    page.open()
    page.select("/kbd")
    assert page.active_path() == "/kbd"
    key = lambda k: page.driver.switch_to.active_element.send_keys(k)  # noqa: E731

    key(Keys.ARROW_RIGHT)  # expands
    page.wait(lambda: page.item("/kbd").get_attribute("aria-expanded") == "true", "/kbd expanded")
    page.item("/kbd/k1")
    key(Keys.ARROW_RIGHT)  # into the first child
    page.wait(lambda: page.active_path() == "/kbd/k1", "focus on k1")
    key(Keys.ARROW_DOWN)
    page.wait(lambda: page.active_path() == "/kbd/k2", "focus on k2")
    key(Keys.ARROW_UP)
    page.wait(lambda: page.active_path() == "/kbd/k1", "focus back on k1")
    key(Keys.ENTER)  # opens k1 and expands it
    page.wait_node("/kbd/k1")
    page.wait(lambda: page.item("/kbd/k1").get_attribute("aria-expanded") == "true", "k1 expanded")
    assert page.item("/kbd/k1").get_attribute("aria-selected") == "true"
    key(Keys.ARROW_DOWN)
    page.wait(lambda: page.active_path() == "/kbd/k1/deep", "focus on deep")
    key(Keys.ARROW_LEFT)  # to the parent
    page.wait(lambda: page.active_path() == "/kbd/k1", "focus on k1 again")
    key(Keys.ARROW_LEFT)  # collapses it
    page.wait(lambda: page.item("/kbd/k1").get_attribute("aria-expanded") == "false", "k1 collapsed")
    key(Keys.ARROW_LEFT)
    page.wait(lambda: page.active_path() == "/kbd", "focus on /kbd")
    key(Keys.HOME)
    page.wait(lambda: page.active_path() == "/", "focus on the root")
    # A roving tabindex: the tree is one tab stop.
    assert [e.get_attribute("data-path") for e in page.find_all('[role="treeitem"][tabindex="0"]')] == ["/"]

    page.find("#tab-tree").click()
    key(Keys.ARROW_RIGHT)
    page.wait(lambda: page.find("#tab-coord").get_attribute("aria-selected") == "true", "the next tab")
    assert page.driver.switch_to.active_element.get_attribute("id") == "tab-coord"
    assert page.find("#panel-coord").is_displayed() and not page.find("#panel-tree").is_displayed()
    key(Keys.ARROW_LEFT)
    page.wait(lambda: page.find("#panel-tree").is_displayed(), "back on the tree")


def test_children_are_paginated(page: Console, zk: Client) -> None:
    t = zk.transaction()
    t.create("/console/many")
    for i in range(105):
        t.create(f"/console/many/n{i:03d}")
    t.commit()
    page.open()
    page.expand("/console")
    page.expand("/console/many")
    group = '[data-path="/console/many"] > [role="group"] > [role="treeitem"]'
    page.wait(lambda: len(page.find_all(group)) == 100, "the first page")
    assert page.item("/console/many").find_element("css selector", ".count").text == "105"
    more = page.visible('[data-path="/console/many"] [data-testid="load-more"]')
    assert "100 of 105" in more.text
    more.click()
    page.wait(lambda: len(page.find_all(group)) == 105, "the second page")
    page.gone('[data-path="/console/many"] [data-testid="load-more"]')
    assert page.find_all(group)[-1].get_attribute("data-path") == "/console/many/n104"


def test_phone_layout_and_dark_scheme(page: Console, zk: Client) -> None:
    zk.create("/console/phone/config", json.dumps({"replicas": 3, "zone": "eu-west"}).encode(), makepath=True)
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    page.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    page.open("#/console/phone/config")
    page.wait_node("/console/phone/config")
    tree, node = page.find(".tree-pane").rect, page.find("#node").rect
    assert node["y"] >= tree["y"] + tree["height"] - 1, (tree, node)  # stacked, not side by side
    assert page.driver.execute_script("return document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.shot("phone")

    page.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    dark = {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", dark)
    page.open("#/console/phone/config")
    page.wait_node("/console/phone/config")
    background = page.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    rgb = [int(x) for x in re.findall(r"\d+", background)[:3]]
    assert sum(rgb) < 3 * 60, rgb
    page.shot("dark")


def test_ui_without_slash(page: Console) -> None:
    page.driver.get(page.base.rstrip("/"))
    page.wait_started()
    assert urlparse(page.driver.current_url).path == "/ui/"
