"""The web console's shell (vltava-console): served on the admin listener, assets
embedded, errors as pages or JSON, logins with the SASL users, cross-site writes
refused. Each section's pages have their own test_console_*.py."""

from __future__ import annotations

import base64
import json

from browser import http, screenshot, wait_for


def test_assets_are_embedded_and_unknown_paths_answer_404(broker):
    status, headers, body = http(broker.admin_url + "/assets/uPlot.iife.min.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"uPlot" in body
    status, headers, body = http(broker.admin_url + "/api/v1/no-such-thing")
    assert status == 404 and headers["content-type"] == "application/json"
    assert "nothing at /api/v1/no-such-thing" in json.loads(body)["error"]
    status, headers, body = http(broker.admin_url + "/no-such-page")
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert b"nothing at /no-such-page" in body
    # the admin listener's own routes are still there
    assert http(broker.admin_url + "/health/live")[0] == 200


def test_a_cross_site_write_is_refused(broker):
    status, _, body = http(broker.admin_url + "/logout", "POST", b"",
                           {"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and b"cross-site" in body
    # the console's own origin (and a client sending no Origin, like curl) may
    status, _, _ = http(broker.admin_url + "/logout", "POST", b"", {"Origin": broker.admin_url})
    assert status == 303


def test_console_disabled(start_broker):
    b = start_broker({"console.enabled": "false"})
    status, _, body = http(b.admin_url + "/api/v1/topics")
    assert status == 404 and b"console.enabled=false" in body
    assert http(b.admin_url + "/metrics")[0] == 200


SASL_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
             'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-pw";')


def sasl_broker(start_broker):
    return start_broker({
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": SASL_JAAS,
        "console.authentication": "sasl",
    })


def test_login_with_a_sasl_user(start_broker, browser_page):
    b = sasl_broker(start_broker)
    d = browser_page
    # the API wants credentials: basic with a SASL user works for scripts
    status, headers, _ = http(b.admin_url + "/api/v1/nothing-here")
    assert status == 401 and "Basic" in headers.get("www-authenticate", "")
    auth = "Basic " + base64.b64encode(b"alice:alice-pw").decode()
    assert http(b.admin_url + "/api/v1/nothing-here", headers={"Authorization": auth})[0] == 404
    bad = "Basic " + base64.b64encode(b"alice:wrong").decode()
    assert http(b.admin_url + "/api/v1/nothing-here", headers={"Authorization": bad})[0] == 401

    # a page sends the browser to the login form, then back
    d.get(b.admin_url + "/no-such-page?x=1")
    wait_for(d, lambda d: "/login" in d.current_url, what="the login page")
    screenshot(d, "login")
    d.find_element("id", "username").send_keys("alice")
    d.find_element("id", "password").send_keys("wrong")
    d.find_element("css selector", "form.login button[type=submit]").click()
    wait_for(d, lambda d: "Wrong user name or password" in d.page_source, what="the failed login")
    assert "wrong" not in d.current_url, "no password in URLs"
    d.find_element("id", "username").send_keys("alice")
    d.find_element("id", "password").send_keys("alice-pw")
    d.find_element("css selector", "form.login button[type=submit]").click()
    wait_for(d, lambda d: "/no-such-page?x=1" in d.current_url, what="the page asked for")
    assert "nothing at /no-such-page" in d.page_source
    cookie = d.get_cookie("vltava_console")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict"
    # the broker's own log lines (the harness's "===== start" line shows its command line)
    logged = [line for line in b.log_tail(500).splitlines() if not line.startswith("=====")]
    assert logged and not any("alice-pw" in line or "wrong" in line for line in logged)
