"""The console's security pages (/acls, /users, /quotas) on a broker with SASL/PLAIN
and SCRAM users and the StandardAuthorizer, logged in with `console.authentication=sasl`:
an ACL created from the page is what the AdminClient describes, a SCRAM user made
from the page authenticates a Kafka client, quotas set from the page, and a user
without permissions gets "not authorized" and sees only what ACLs let them describe
(the console acts as the logged-in principal)."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)
from selenium.webdriver.support.ui import Select

import helpers as h
from browser import api, http, screenshot, wait_for
from conftest import free_port
from test_console_groups import commit

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-pw";')


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    """(broker, SASL port): PLAINTEXT (User:ANONYMOUS, a super user, for the brokers'
    own traffic and the test's setup) and SASL_PLAINTEXT with PLAIN and SCRAM."""
    from conftest import Broker
    sasl = free_port()
    b = Broker(tmp_path_factory.mktemp("secure-broker"), {
        "listeners": f"PLAINTEXT://127.0.0.1:{free_port()},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": AUTHORIZER,
        "super.users": "User:ANONYMOUS;User:admin",
        "console.authentication": "sasl",
        "group.initial.rebalance.delay.ms": 0,
    })
    b.start()
    yield b, sasl
    alive = b.is_running()
    b.kill()
    assert alive, b.log_tail(150)


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def login(d, base: str, user: str, password: str, path: str = "/acls") -> None:
    d.delete_all_cookies()
    d.get(base + path)
    wait_for(d, lambda d: "/login" in d.current_url, what="the login page")
    d.find_element("id", "username").send_keys(user)
    d.find_element("id", "password").send_keys(password)
    d.find_element("css selector", "form.login button[type=submit]").click()
    wait_for(d, lambda d: "/login" not in d.current_url, what="the login")


def sasl_conf(port: int, mechanism: str, user: str, password: str) -> dict:
    return {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}


def test_create_and_delete_an_acl_from_the_page(secure, browser):
    b, sasl = secure
    d = browser
    login(d, b.admin_url, "admin", "admin-secret")
    wait_for(d, lambda d: d.find_elements("id", "acls"), what="the ACL table")
    topic = h.unique("acl-topic")
    Select(d.find_element("id", "resource_type")).select_by_value("TOPIC")
    d.find_element("id", "resource_name").send_keys(topic)
    d.find_element("id", "principal").send_keys("User:alice")
    Select(d.find_element("id", "operation")).select_by_value("DESCRIBE")
    d.find_element("css selector", "form[action='/acls'] button[type=submit]").click()
    wait_for(d, lambda d: "Created: ALLOW User:alice DESCRIBE" in d.page_source, what="the notice")
    assert topic in d.find_element("id", "acls").text
    screenshot(d, "security-acls")

    admin = AdminClient(sasl_conf(sasl, "PLAIN", "admin", "admin-secret"))
    flt = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.ANY, None, None,
                           AclOperation.ANY, AclPermissionType.ANY)
    found = admin.describe_acls(flt).result(30)
    assert [(a.principal, a.operation, a.permission_type, a.host) for a in found] == \
        [("User:alice", AclOperation.DESCRIBE, AclPermissionType.ALLOW, "*")]

    # deleting needs the confirmation
    row = [r for r in d.find_elements("css selector", "#acls tbody tr") if topic in r.text][0]
    row.find_element("link text", "Delete…").click()
    wait_for(d, lambda d: d.find_elements("id", "confirm"), what="the confirmation page")
    screenshot(d, "security-acl-delete")
    form = {k: d.find_element("css selector", f"input[name={k}]").get_attribute("value")
            for k in ("resource_type", "resource_name", "pattern_type", "principal", "host", "operation", "permission")}
    status, _, body = http(b.admin_url + "/acls/delete", "POST", urllib.parse.urlencode(form).encode(),
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "Cookie": f"vltava_console={d.get_cookie('vltava_console')['value']}"})
    assert status == 400 and b"nothing was deleted" in body
    assert len(admin.describe_acls(flt).result(30)) == 1
    d.find_element("id", "confirm").send_keys(topic)
    d.find_element("css selector", "button.danger").click()
    wait_for(d, lambda d: "Deleted the ACL" in d.page_source, what="the notice")
    assert admin.describe_acls(flt).result(30) == []

    # bad input: a clear 400
    status, body = api(b.admin_url, "/api/v1/acls", "POST",
                       {"resource_type": "TOPIC", "resource_name": "x", "principal": "alice", "operation": "READ"},
                       basic("admin", "admin-secret"))
    assert status == 400 and "Type:name" in body["error"]


def test_a_scram_user_made_from_the_page_can_log_in(secure, browser):
    b, sasl = secure
    d = browser
    login(d, b.admin_url, "admin", "admin-secret", "/users")
    wait_for(d, lambda d: d.find_elements("id", "users"), what="the users table")
    user, password = h.unique("carol"), "carol-Secret-1"
    d.find_element("id", "name").send_keys(user)
    d.find_element("id", "password").send_keys(password)
    Select(d.find_element("id", "mechanism")).select_by_value("SCRAM-SHA-512")
    d.find_element("css selector", "form[action='/users'] button[type=submit]").click()
    wait_for(d, lambda d: f"Saved the SCRAM-SHA-512 credential of {user}" in d.page_source, what="the notice")
    assert password not in d.current_url and password not in d.page_source
    assert password not in b.log(), "no password in the logs"
    screenshot(d, "security-users")
    status, users = api(b.admin_url, "/api/v1/users", headers=basic("admin", "admin-secret"))
    mine = [u for u in users["users"] if u["user"] == user]
    assert mine == [{"user": user, "credentials": [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}]}]

    # the new user authenticates a Kafka client (a metadata request succeeds)
    admin = AdminClient(sasl_conf(sasl, "SCRAM-SHA-512", user, password))
    admin.list_topics(timeout=30)
    bad = Consumer({**sasl_conf(sasl, "SCRAM-SHA-512", user, "wrong"), "group.id": "x"})
    try:
        with pytest.raises(Exception):
            bad.list_topics(timeout=5)
    finally:
        bad.close()

    # delete needs the confirmation
    d.get(b.admin_url + f"/users/{user}/delete")
    wait_for(d, lambda d: d.find_elements("id", "confirm"), what="the confirmation page")
    d.find_element("id", "confirm").send_keys(user)
    d.find_element("css selector", "button.danger").click()
    wait_for(d, lambda d: f"Deleted user {user}" in d.page_source, what="the notice")
    status, users = api(b.admin_url, "/api/v1/users", headers=basic("admin", "admin-secret"))
    assert user not in [u["user"] for u in users["users"]]


def test_quotas_set_and_removed_from_the_page(secure, browser):
    b, _ = secure
    d = browser
    login(d, b.admin_url, "admin", "admin-secret", "/quotas")
    wait_for(d, lambda d: d.find_elements("id", "quotas"), what="the quotas table")
    client = h.unique("client")
    Select(d.find_element("id", "entity_type")).select_by_value("client-id")
    d.find_element("id", "entity_name").send_keys(client)
    Select(d.find_element("id", "key")).select_by_value("producer_byte_rate")
    d.find_element("id", "value").send_keys("1048576")
    d.find_element("css selector", "form[action='/quotas'] button[type=submit]").click()
    wait_for(d, lambda d: f"Set producer_byte_rate = 1048576 for client-id={client}" in d.page_source,
             what="the notice")
    screenshot(d, "security-quotas")
    status, q = api(b.admin_url, "/api/v1/quotas", headers=basic("admin", "admin-secret"))
    assert {"entity": {"client-id": client}, "values": {"producer_byte_rate": 1048576.0}} in q["quotas"]
    row = [r for r in d.find_elements("css selector", "#quotas tbody tr") if client in r.text][0]
    row.find_element("css selector", "button").click()
    wait_for(d, lambda d: f"Removed producer_byte_rate of client-id={client}" in d.page_source, what="removed")
    status, q = api(b.admin_url, "/api/v1/quotas", headers=basic("admin", "admin-secret"))
    assert all(e["entity"] != {"client-id": client} for e in q["quotas"])


def test_a_user_without_acls_is_not_authorized(secure, browser):
    b, sasl = secure
    d = browser
    mine, other = h.unique("alice-group"), h.unique("other-group")
    topic = h.unique("secured")
    h.create_topic(b.bootstrap, topic)
    for g in (mine, other):
        commit(b.bootstrap, g, topic, {0: 0})
    admin_auth = basic("admin", "admin-secret")
    status, _ = api(b.admin_url, "/api/v1/acls", "POST",
                    {"resource_type": "GROUP", "resource_name": "alice-group", "pattern_type": "PREFIXED",
                     "principal": "User:alice", "operation": "DESCRIBE"}, admin_auth)
    assert status == 200

    # alice sees only the groups she may describe
    def alice_groups():
        status, body = api(b.admin_url, "/api/v1/groups", headers=basic("alice", "alice-pw"))
        assert status == 200, body
        return {g["group"] for g in body["groups"]}
    h.wait_until(lambda: mine in alice_groups(), 30, "alice's group")
    assert other not in alice_groups()
    status, all_groups = api(b.admin_url, "/api/v1/groups", headers=admin_auth)
    assert {mine, other} <= {g["group"] for g in all_groups["groups"]}

    # the ACL list needs DESCRIBE on the cluster: a clear "not authorized" page
    login(d, b.admin_url, "alice", "alice-pw", "/acls")
    wait_for(d, lambda d: "CLUSTER_AUTHORIZATION_FAILED" in d.page_source, what="the refusal")
    screenshot(d, "security-not-authorized")
    status, body = api(b.admin_url, "/api/v1/acls", headers=basic("alice", "alice-pw"))
    assert status == 403 and body["kafka_error"] == "CLUSTER_AUTHORIZATION_FAILED"
    status, body = api(b.admin_url, f"/api/v1/groups/{other}/lag-history", headers=basic("alice", "alice-pw"))
    assert status == 403 and "User:alice" in body["error"]
    # a group she may not describe is not found; one she may is shown (the topic's
    # offsets need DESCRIBE on the topic, which she lacks)
    assert api(b.admin_url, f"/api/v1/groups/{other}", headers=basic("alice", "alice-pw"))[0] == 404
    status, body = api(b.admin_url, f"/api/v1/users", headers=basic("alice", "alice-pw"))
    assert status == 403, body


def test_pages_without_an_authorizer_and_narrow(start_broker):
    import browser as br
    b = start_broker()
    d = br.chrome(width=420, height=800)
    try:
        d.get(b.admin_url + "/acls")
        wait_for(d, lambda d: d.find_elements("id", "no-authorizer"), what="the no-authorizer notice")
        assert "No authorizer is configured" in d.page_source
        screenshot(d, "security-acls-no-authorizer-narrow")
        status, body = api(b.admin_url, "/api/v1/acls")
        assert status == 200 and body == {"authorizer": False, "acls": []}
        for page in ("users", "quotas"):
            d.get(b.admin_url + "/" + page)
            wait_for(d, lambda d: d.find_elements("id", page), what=page)
            screenshot(d, f"security-{page}-narrow")
            width, window = d.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width <= window, f"/{page} is {width}px wide in a {window}px window"
    finally:
        br.close(d)
