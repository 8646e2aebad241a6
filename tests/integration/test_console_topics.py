"""The console's topics section and topic portal (crates/console/src/topics.rs,
catalog.rs): /topics (list, create), /topics/NAME (partitions, configs, consumers,
portal fields, add partitions, delete with confirmation), /catalog, and their JSON
API, in a real headless chromium and with real Kafka clients."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import browser as br
from browser import api, http, screenshot, wait_for

DEADLINE = 30.0


@pytest.fixture
def b(module_broker_alive):
    return module_broker_alive


def admin(b) -> AdminClient:
    return AdminClient({"bootstrap.servers": b.bootstrap})


def create_topic(b, name: str, partitions: int = 1, configs: dict | None = None) -> None:
    status, body = api(b.admin_url, "/api/v1/topics", "POST",
                       {"name": name, "partitions": partitions, "replication_factor": 1, "configs": configs or {}})
    assert status == 201, body


def topic_partitions(b, name: str) -> int | None:
    a = admin(b)
    md = a.list_topics(timeout=10)
    t = md.topics.get(name)
    return None if t is None or t.error is not None else len(t.partitions)


def describe(b, name: str) -> dict:
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    a = admin(b)  # kept alive until the answer is in
    return a.describe_configs([res])[res].result(timeout=15)


def produce(b, topic: str, values: list[bytes], partition: int = 0) -> None:
    p = Producer({"bootstrap.servers": b.bootstrap})
    errors = []
    for v in values:
        p.produce(topic, value=v, key=b"k", partition=partition,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors


def fill(d, element_id: str, value: str) -> None:
    el = d.find_element(By.ID, element_id)
    el.clear()
    el.send_keys(value)


def submit(d, form_css: str) -> None:
    d.find_element(By.CSS_SELECTOR, form_css + " button[type=submit]").click()


def test_create_a_topic_from_the_page_and_see_it_in_the_list(b, browser_page):
    d = browser_page
    d.get(b.admin_url + "/topics")
    wait_for(d, lambda d: d.find_element(By.ID, "new-name"), what="the create form")
    fill(d, "new-name", "orders.v1_eu")
    fill(d, "new-partitions", "3")
    fill(d, "new-rf", "1")
    fill(d, "new-retention", "3600000")
    Select(d.find_element(By.ID, "new-cleanup")).select_by_value("delete")
    submit(d, "form[action='/topics'][method='post']")
    wait_for(d, lambda d: "/topics/orders.v1_eu" in d.current_url and "Created topic orders.v1_eu" in d.page_source,
             what="the new topic's page")
    assert topic_partitions(b, "orders.v1_eu") == 3
    assert describe(b, "orders.v1_eu")["retention.ms"].value == "3600000"

    d.get(b.admin_url + "/topics")
    row = wait_for(d, lambda d: d.find_element(By.XPATH, "//table[@id='topics-table']//tr[td/a[text()='orders.v1_eu']]"),
                   what="the topic in the list")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1] == "3" and cells[2] == "1" and cells[5] == "1 h", cells
    # internal topics are hidden by default, shown with the toggle
    assert "__consumer_offsets" not in d.find_element(By.ID, "topics-table").text
    screenshot(d, "topics-list")
    d.get(b.admin_url + "/topics?internal=true")
    wait_for(d, lambda d: d.find_element(By.ID, "internal").is_selected(), what="the toggle on")
    _, hidden = api(b.admin_url, "/api/v1/topics")
    _, shown = api(b.admin_url, "/api/v1/topics?internal=true")
    internal = [t["name"] for t in shown["topics"] if t["internal"]]
    assert len(internal) == hidden["internal_hidden"] and all(n.startswith("_") for n in internal), (internal, hidden)
    # the search filters the table in the page
    d.get(b.admin_url + "/topics")
    fill(d, "q", "orders.v1")
    visible = wait_for(d, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#topics-table tbody tr")
                                     if r.is_displayed()], what="filtered rows")
    assert all("orders.v1" in r.text for r in visible)

    # the API lists it too
    status, body = api(b.admin_url, "/api/v1/topics")
    assert status == 200
    row = next(t for t in body["topics"] if t["name"] == "orders.v1_eu")
    assert row["partitions"] == 3 and row["replication_factor"] == 1 and row["retention_ms"] == 3600000
    assert not any(t["internal"] for t in body["topics"])

    # creating it again shows Kafka's error on the page
    d.get(b.admin_url + "/topics")
    fill(d, "new-name", "orders.v1_eu")
    submit(d, "form[action='/topics'][method='post']")
    wait_for(d, lambda d: "TOPIC_ALREADY_EXISTS" in d.find_element(By.CSS_SELECTOR, "p.error").text,
             what="the error on the page")


def test_create_errors_have_kafkas_codes(b):
    create_topic(b, "dup-topic")
    status, body = api(b.admin_url, "/api/v1/topics", "POST", {"name": "dup-topic", "partitions": 1})
    assert status == 409 and body["kafka_error"] == "TOPIC_ALREADY_EXISTS", body
    status, body = api(b.admin_url, "/api/v1/topics", "POST", {"name": "bad/name", "partitions": 1})
    assert status == 400 and body["kafka_error"] == "INVALID_TOPIC_EXCEPTION", body
    status, body = api(b.admin_url, "/api/v1/topics", "POST", {"name": "zero-parts", "partitions": 0})
    assert status == 400 and body["kafka_error"] == "INVALID_PARTITIONS", body
    status, body = api(b.admin_url, "/api/v1/topics", "POST",
                       {"name": "bad-config", "partitions": 1, "configs": {"retention.ms": "soon"}})
    assert status == 400 and body["kafka_error"] == "INVALID_CONFIG", body
    assert "retention.ms" in body["error"]
    assert topic_partitions(b, "bad-config") is None


def test_a_config_edit_from_the_page_is_visible_through_describe_configs(b, browser_page):
    create_topic(b, "cfg-edit")
    d = browser_page
    d.get(b.admin_url + "/topics/cfg-edit?config=retention.ms")
    wait_for(d, lambda d: d.find_element(By.ID, "config-value"), what="the config form")
    assert Select(d.find_element(By.ID, "config-name")).first_selected_option.text == "retention.ms"
    fill(d, "config-value", "7200000")
    d.find_element(By.CSS_SELECTOR, "form#edit button[value=set]").click()
    wait_for(d, lambda d: "Set retention.ms to 7200000" in d.page_source, what="the notice")
    entry = describe(b, "cfg-edit")["retention.ms"]
    assert entry.value == "7200000" and entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    row = d.find_element(By.XPATH, "//table[@id='configs-table']//tr[td/span[text()='retention.ms']]")
    assert "7200000" in row.text and "DYNAMIC_TOPIC_CONFIG" in row.text
    screenshot(d, "topic-page")
    d.execute_script("document.getElementById('configs').scrollIntoView()")
    screenshot(d, "topic-page-configs")

    # an invalid value: Kafka's message on the page, nothing changed
    Select(d.find_element(By.ID, "config-name")).select_by_value("cleanup.policy")
    fill(d, "config-value", "sometimes")
    d.find_element(By.CSS_SELECTOR, "form#edit button[value=set]").click()
    wait_for(d, lambda d: "INVALID_CONFIG" in d.find_element(By.CSS_SELECTOR, "p.error").text, what="the error")
    assert describe(b, "cfg-edit")["cleanup.policy"].value == "delete"

    # back to the default
    d.get(b.admin_url + "/topics/cfg-edit?config=retention.ms")
    d.find_element(By.CSS_SELECTOR, "form#edit button[value=delete]").click()
    wait_for(d, lambda d: "Reset retention.ms" in d.page_source, what="the reset notice")
    entry = describe(b, "cfg-edit")["retention.ms"]
    assert entry.source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value and entry.value == "604800000"

    # the API: set and delete in one call, answered with the new configs
    status, body = api(b.admin_url, "/api/v1/topics/cfg-edit/configs", "PATCH",
                       {"set": {"max.message.bytes": "2000000"}, "delete": ["retention.ms"]})
    assert status == 200, body
    assert {c["name"]: c for c in body}["max.message.bytes"]["value"] == "2000000"
    assert describe(b, "cfg-edit")["max.message.bytes"].value == "2000000"


def test_add_partitions_from_the_page(b, browser_page):
    create_topic(b, "grow-me", partitions=1)
    d = browser_page
    d.get(b.admin_url + "/topics/grow-me")
    wait_for(d, lambda d: d.find_element(By.ID, "partition-count"), what="the partitions form")
    fill(d, "partition-count", "4")
    submit(d, "form[action='/topics/grow-me/partitions']")
    wait_for(d, lambda d: "now has 4 partitions" in d.page_source, what="the notice")
    assert topic_partitions(b, "grow-me") == 4
    assert len(d.find_elements(By.CSS_SELECTOR, "#partitions-table tbody tr")) == 4
    # fewer than now: Kafka's INVALID_PARTITIONS, on the page and in the API
    fill(d, "partition-count", "2")
    d.execute_script("document.getElementById('partition-count').removeAttribute('min')")
    submit(d, "form[action='/topics/grow-me/partitions']")
    wait_for(d, lambda d: "INVALID_PARTITIONS" in d.find_element(By.CSS_SELECTOR, "p.error").text, what="the error")
    status, body = api(b.admin_url, "/api/v1/topics/grow-me/partitions", "POST", {"count": 2})
    assert status == 400 and body["kafka_error"] == "INVALID_PARTITIONS", body
    status, body = api(b.admin_url, "/api/v1/topics/grow-me/partitions", "POST", {"count": 6})
    assert status == 200 and body["partitions"] == 6, body
    assert topic_partitions(b, "grow-me") == 6


def test_delete_needs_the_typed_name(b, browser_page):
    create_topic(b, "doomed.topic")
    d = browser_page
    d.get(b.admin_url + "/topics/doomed.topic")
    d.find_element(By.LINK_TEXT, "Delete this topic…").click()
    wait_for(d, lambda d: d.current_url.endswith("/topics/doomed.topic/delete"), what="the confirmation page")
    screenshot(d, "topic-delete")
    fill(d, "confirm", "doomed")
    submit(d, "form[action='/topics/doomed.topic/delete']")
    wait_for(d, lambda d: "Nothing was deleted" in d.page_source, what="the refusal")
    assert topic_partitions(b, "doomed.topic") == 1
    # a POST without the confirmation: 400, nothing deleted
    status, _, page = http(b.admin_url + "/topics/doomed.topic/delete", "POST", b"",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"Nothing was deleted" in page
    assert topic_partitions(b, "doomed.topic") == 1
    fill(d, "confirm", "doomed.topic")
    submit(d, "form[action='/topics/doomed.topic/delete']")
    wait_for(d, lambda d: "Deleted topic doomed.topic" in d.page_source, what="the notice")
    assert topic_partitions(b, "doomed.topic") is None
    # the API deletes without a confirmation
    create_topic(b, "doomed2")
    status, body = api(b.admin_url, "/api/v1/topics/doomed2", "DELETE")
    assert status == 200 and body == {"deleted": "doomed2"}
    assert topic_partitions(b, "doomed2") is None


AVRO = json.dumps({"type": "record", "name": "Payment", "fields": [
    {"name": "id", "type": "string"}, {"name": "amount", "type": "long"}]})


def test_portal_fields_from_the_page_show_in_the_catalog_and_describe_configs(b, browser_page):
    create_topic(b, "payments.settled", partitions=2)
    create_topic(b, "unrelated.topic")
    status, _, _ = http(b.registry_url + "/subjects/payments.settled-value/versions", "POST",
                        json.dumps({"schema": AVRO}).encode(),
                        {"Content-Type": "application/vnd.schemaregistry.v1+json"})
    assert status == 200
    produce(b, "payments.settled", [json.dumps({"id": f"p{i}", "amount": i}).encode() for i in range(5)], partition=1)

    d = browser_page
    d.get(b.admin_url + "/topics/payments.settled")
    wait_for(d, lambda d: d.find_element(By.ID, "portal-description"), what="the portal form")
    fill(d, "portal-description", "Payments once settled by the bank, one per payment id.")
    fill(d, "portal-owner", "team-ledger")
    fill(d, "portal-tags", "payments, finance")
    fill(d, "portal-docs", "https://wiki.example/payments")
    submit(d, "form[action='/topics/payments.settled/portal']")
    wait_for(d, lambda d: "Saved the portal fields" in d.page_source, what="the notice")

    configs = describe(b, "payments.settled")
    assert configs["vltava.portal.owner"].value == "team-ledger"
    assert configs["vltava.portal.tags"].value == "payments,finance"
    assert configs["vltava.portal.docs.url"].value == "https://wiki.example/payments"
    assert configs["vltava.portal.description"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # the list shows the owner
    status, body = api(b.admin_url, "/api/v1/topics?q=team-ledger")
    assert [t["name"] for t in body["topics"]] == ["payments.settled"]

    # the catalog finds it by tag, by owner and by words of its description
    d.get(b.admin_url + "/catalog")
    wait_for(d, lambda d: d.find_element(By.ID, "catalog-tag"), what="the catalog")
    Select(d.find_element(By.ID, "catalog-tag")).select_by_value("finance")
    submit(d, "form[action='/catalog']")
    wait_for(d, lambda d: "tag=finance" in d.current_url, what="the tag search")
    names = [e.text for e in d.find_elements(By.CSS_SELECTOR, "article.catalog-entry h2")]
    assert names == ["payments.settled"], names
    entry = d.find_element(By.CSS_SELECTOR, "article.catalog-entry")
    assert "team-ledger" in entry.text and "Payments once settled" in entry.text
    assert "payments.settled-value v1 (AVRO" in entry.text
    d.get(b.admin_url + "/catalog")
    screenshot(d, "catalog")
    for q in ("team-ledger", "settled bank", "finance"):
        status, body = api(b.admin_url, "/api/v1/catalog?q=" + urllib.parse.quote(q))
        assert status == 200 and [t["name"] for t in body["topics"]] == ["payments.settled"], (q, body)
    status, body = api(b.admin_url, "/api/v1/catalog?tag=payments")
    t = body["topics"][0]
    assert t["owner"] == "team-ledger" and t["tags"] == ["payments", "finance"]
    assert t["value_schema"]["schema_type"] == "AVRO" and t["key_schema"] is None
    assert "finance" in body["tags"]

    # the card: schema and the last 3 records of the partition with data
    d.get(b.admin_url + "/catalog/payments.settled")
    rows = wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#examples tbody tr"), what="example messages")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["2", "3", "4"]
    # rendered as the message browser does: JSON pretty-printed
    assert '"id": "p4"' in rows[-1].text and '"amount": 4' in rows[-1].text, rows[-1].text
    assert "Payment" in d.find_element(By.CSS_SELECTOR, "pre.schema").text
    screenshot(d, "catalog-card")
    d.execute_script("document.getElementById('examples').scrollIntoView()")
    screenshot(d, "catalog-card-examples")
    status, card = api(b.admin_url, "/api/v1/catalog/payments.settled")
    assert [x["offset"] for x in card["examples"]] == [2, 3, 4] and card["examples"][0]["partition"] == 1

    # a bad docs link is Kafka's INVALID_CONFIG, also from the page
    status, body = api(b.admin_url, "/api/v1/topics/payments.settled/configs", "PATCH",
                       {"set": {"vltava.portal.docs.url": "javascript:alert(1)"}})
    assert status == 400 and body["kafka_error"] == "INVALID_CONFIG" and "http" in body["error"], body
    d.get(b.admin_url + "/topics/payments.settled")
    fill(d, "portal-docs", "ftp://example.org/x")
    d.execute_script("document.getElementById('portal-docs').type = 'text'")
    submit(d, "form[action='/topics/payments.settled/portal']")
    wait_for(d, lambda d: "INVALID_CONFIG" in d.find_element(By.CSS_SELECTOR, "p.error").text, what="the error")
    assert describe(b, "payments.settled")["vltava.portal.docs.url"].value == "https://wiki.example/payments"


def test_a_consumer_group_is_listed_with_its_lag(b, browser_page):
    create_topic(b, "lagging")
    produce(b, "lagging", [b"m%d" % i for i in range(10)])
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "lag-readers", "enable.auto.commit": False})
    try:
        # the first commit may meet a coordinator still loading: wait until one succeeds
        def committed(_):
            try:
                c.commit(offsets=[TopicPartition("lagging", 0, 4)], asynchronous=False)
                return True
            except KafkaException as e:
                if not e.args[0].retriable() and e.args[0].code() != KafkaError.NOT_COORDINATOR:
                    raise
                return False
        wait_for(browser_page, committed, what="a successful commit")
    finally:
        c.close()
    d = browser_page

    def lag_row(d):
        d.get(b.admin_url + "/topics/lagging")
        rows = d.find_elements(By.XPATH, "//table[@id='consumers-table']//tr[td/a[text()='lag-readers']]")
        return rows[0] if rows else None

    row = wait_for(d, lag_row, what="the group on the topic page")
    assert row.find_element(By.CSS_SELECTOR, "td.lag").text == "6"
    d.execute_script("document.getElementById('partitions').scrollIntoView()")
    screenshot(d, "topic-page-partitions-consumers")
    assert row.find_element(By.TAG_NAME, "a").get_attribute("href").endswith("/groups/lag-readers")
    status, body = api(b.admin_url, "/api/v1/topics/lagging")
    assert [(g["group"], g["total_lag"]) for g in body["consumers"]] == [("lag-readers", 6)]
    p0 = body["partitions"][0]
    assert (p0["start_offset"], p0["end_offset"], p0["leader"]) == (0, 10, p0["replicas"][0])
    assert p0["size_bytes"] > 0
    status, card = api(b.admin_url, "/api/v1/catalog/lagging")
    assert [(g["group"], g["total_lag"]) for g in card["consumer_lag"]] == [("lag-readers", 6)]


def test_bad_input_gets_clear_errors(b):
    status, body = api(b.admin_url, "/api/v1/topics/no-such-topic")
    assert status == 404 and body["kafka_error"] == "UNKNOWN_TOPIC_OR_PARTITION", body
    status, _, page = http(b.admin_url + "/topics/no-such-topic")
    assert status == 404 and b"UNKNOWN_TOPIC_OR_PARTITION" in page
    assert http(b.admin_url + "/catalog/no-such-topic")[0] == 404
    status, body = api(b.admin_url, "/api/v1/topics/no-such-topic", "DELETE")
    assert status == 404 and body["kafka_error"] == "UNKNOWN_TOPIC_OR_PARTITION", body

    create_topic(b, "bad-input", partitions=3)
    status, body = api(b.admin_url, "/api/v1/topics/bad-input/configs", "PATCH", {"set": {"retention.ms": "abc"}})
    assert status == 400 and body["kafka_error"] == "INVALID_CONFIG", body
    assert "Invalid value abc for configuration retention.ms" in body["error"]
    status, body = api(b.admin_url, "/api/v1/topics/bad-input/configs", "PATCH", {"set": {"no.such.config": "1"}})
    assert status == 400 and body["kafka_error"] == "INVALID_CONFIG", body
    status, body = api(b.admin_url, "/api/v1/topics/bad-input/partitions", "POST", {"count": 2})
    assert status == 400 and body["kafka_error"] == "INVALID_PARTITIONS", body
    for path, method in (("/api/v1/topics", "POST"), ("/api/v1/topics/bad-input/configs", "PATCH"),
                         ("/api/v1/topics/bad-input/partitions", "POST")):
        status, _, raw = http(b.admin_url + path, method, b"{not json", {"Content-Type": "application/json"})
        assert status == 400 and "invalid JSON" in json.loads(raw)["error"], (path, raw)
    status, _, raw = http(b.admin_url + "/api/v1/topics/bad-input/partitions", "POST", b'{"count": "many"}',
                          {"Content-Type": "application/json"})
    assert status == 400
    status, _, raw = http(b.admin_url + "/api/v1/topics/bad-input/partitions", "POST",
                          b'{"count": 99999999999}', {"Content-Type": "application/json"})
    assert status == 400
    status, _, page = http(b.admin_url + "/topics/bad-input/partitions", "POST", b"count=lots",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"whole number" in page
    # still alive, nothing changed
    assert topic_partitions(b, "bad-input") == 3
    assert api(b.admin_url, "/api/v1/topics")[0] == 200


def test_pages_in_a_narrow_window(b):
    create_topic(b, "narrow.view.topic", partitions=2)
    d = br.chrome(width=420, height=800)
    try:
        for path, name in (("/topics", "topics-list-narrow"), ("/topics/narrow.view.topic", "topic-page-narrow"),
                           ("/catalog", "catalog-narrow")):
            d.get(b.admin_url + path)
            wait_for(d, lambda d: d.find_element(By.TAG_NAME, "h1"), what="the page")
            # nothing wider than the window (tables scroll in their own box)
            screenshot(d, name)
            # (headless chromium's window is at least 500 px wide: compare with the viewport)
            overflow = d.execute_script("return document.documentElement.scrollWidth - "
                                        "document.documentElement.clientWidth")
            wide = d.execute_script(
                "return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > "
                "document.documentElement.clientWidth + 1 && !e.closest('.table-wrap')).slice(0, 5)"
                ".map(e => e.tagName + '#' + e.id + '.' + e.className)")
            assert overflow <= 0, (path, overflow, wide)
    finally:
        br.close(d)
