"""The console's message browser (/topics/NAME/messages and /api/v1/topics/NAME/messages):
records produced with confluent-kafka found at their offsets and rendered as JSON, text,
hex or decoded through the schema registry (Avro, JSON Schema, Protobuf); jumps to an
offset and a time; filters by key and value; the produce form (read back with a
consumer); the live tail; bad input answered with clear errors."""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from selenium.webdriver.common.by import By

from browser import api, chrome, close, http, screenshot, wait_for
from helpers import create_topic, unique, wait_until
from test_schema_registry import protobuf_message_class

WAIT_S = 60  # a deadline, not a verdict


@pytest.fixture(scope="module")
def b(module_broker):
    return module_broker


@pytest.fixture(autouse=True)
def _alive(module_broker_alive):
    yield


def produce(bootstrap, topic, records, partitioner=None):
    """records: (key, value, headers, timestamp|None, partition|None); returns [(partition, offset)]."""
    conf = {"bootstrap.servers": bootstrap, "acks": "all"}
    if partitioner:
        conf["partitioner"] = partitioner
    p = Producer(conf)
    got = []

    def report(err, msg):
        got.append((err, msg.partition(), msg.offset()))

    for key, value, headers, ts, partition in records:
        kw = {"key": key, "value": value, "headers": headers, "on_delivery": report}
        if ts is not None:
            kw["timestamp"] = ts
        if partition is not None:
            kw["partition"] = partition
        p.produce(topic, **kw)
    assert p.flush(30) == 0
    assert all(err is None for err, _, _ in got), got
    return [(part, off) for _, part, off in got]


def rows(d):
    return {int(r.get_attribute("data-offset")): r for r in d.find_elements(By.CSS_SELECTOR, "#messages tbody tr")}


def browse(b, topic, **params):
    return api(b.admin_url, f"/api/v1/topics/{topic}/messages?" + urllib.parse.urlencode(params))


def test_json_records_are_found_at_their_offsets_pretty_printed(b, browser_page):
    d = browser_page
    topic = unique("msg-json")
    create_topic(b.bootstrap, topic, partitions=2)
    records = [(f"order-{i}".encode(), json.dumps({"id": i, "item": f"thing-{i}", "tags": ["a", "b"]}).encode(),
                [("source", b"test"), ("n", str(i).encode())], None, 0) for i in range(5)]
    offsets = produce(b.bootstrap, topic, records)
    assert offsets == [(0, i) for i in range(5)]

    # the API: the records at their offsets, JSON pretty-printed
    status, page = browse(b, topic, partition=0, offset=0)
    assert status == 200, page
    assert [r["offset"] for r in page["records"]] == [0, 1, 2, 3, 4]
    assert (page["log_start_offset"], page["end_offset"], page["at_end"]) == (0, 5, True)
    r3 = page["records"][3]
    assert r3["key"]["text"] == "order-3" and r3["key"]["format"] == "text"
    assert r3["value"]["format"] == "json"
    assert json.loads(r3["value"]["text"]) == {"id": 3, "item": "thing-3", "tags": ["a", "b"]}
    assert '\n  "id": 3' in r3["value"]["text"], "pretty-printed"
    assert [(h["key"], h["value"]["text"]) for h in r3["headers"]] == [("source", "test"), ("n", "3")]
    # the default: the last `limit` records of partition 0
    status, page = browse(b, topic, limit=2)
    assert status == 200 and [r["offset"] for r in page["records"]] == [3, 4]
    assert page["previous_offset"] == 1

    # the page shows the same
    d.get(f"{b.admin_url}/topics/{topic}/messages?partition=0&offset=0")
    wait_for(d, lambda d: len(rows(d)) == 5, what="five rows")
    row = rows(d)[3]
    assert "order-3" in row.find_element(By.CSS_SELECTOR, "td.key").text
    value = row.find_element(By.CSS_SELECTOR, "td.value pre").text
    assert json.loads(value)["item"] == "thing-3" and '\n  "item": "thing-3"' in value
    assert "source = test" in row.find_element(By.CSS_SELECTOR, "td.headers").text
    assert d.find_element(By.TAG_NAME, "h1").text == f"Messages of {topic}"
    screenshot(d, "messages-json")

    # text and hex views
    d.get(f"{b.admin_url}/topics/{topic}/messages?partition=0&offset=0&format=text")
    wait_for(d, lambda d: len(rows(d)) == 5, what="five rows as text")
    assert rows(d)[1].find_element(By.CSS_SELECTOR, "td.value pre").text == records[1][1].decode()
    screenshot(d, "messages-text")
    d.get(f"{b.admin_url}/topics/{topic}/messages?partition=0&offset=0&format=hex")
    wait_for(d, lambda d: len(rows(d)) == 5, what="five rows as hex")
    hex_text = rows(d)[0].find_element(By.CSS_SELECTOR, "td.value pre").text
    assert hex_text.startswith("00000000  7b 22 69 64 22 3a 20 30"), hex_text
    assert "|{\"id\": 0, \"item\"|" in hex_text
    screenshot(d, "messages-hex")
    status, page = browse(b, topic, offset=0, format="hex", limit=1)
    assert page["records"][0]["value"]["format"] == "hex"
    assert page["records"][0]["key"]["text"].startswith("00000000  6f 72 64 65 72 2d 30")


def test_jump_to_an_offset_and_to_a_time(b, browser_page):
    d = browser_page
    topic = unique("msg-jump")
    create_topic(b.bootstrap, topic)
    base = int(time.time() * 1000) - 3_600_000
    produce(b.bootstrap, topic, [(f"k{i}".encode(), f"v{i}".encode(), None, base + i * 60_000, None)
                                 for i in range(20)])
    d.get(f"{b.admin_url}/topics/{topic}/messages?limit=5")
    wait_for(d, lambda d: sorted(rows(d)) == [15, 16, 17, 18, 19], what="the last five records")
    # jump to an offset with the form
    d.find_element(By.CSS_SELECTOR, "form.browse input[name=offset]").send_keys("7")
    d.find_element(By.CSS_SELECTOR, "form.browse button[type=submit]").click()
    wait_for(d, lambda d: sorted(rows(d)) == [7, 8, 9, 10, 11], what="offsets 7 to 11")
    # previous / next / earliest links
    d.find_element(By.CSS_SELECTOR, "nav.pager a[rel=next]").click()
    wait_for(d, lambda d: sorted(rows(d)) == [12, 13, 14, 15, 16], what="the next page")
    d.find_element(By.CSS_SELECTOR, "nav.pager a[rel=prev]").click()
    wait_for(d, lambda d: sorted(rows(d)) == [7, 8, 9, 10, 11], what="the previous page")
    d.find_element(By.LINK_TEXT, "Earliest").click()
    wait_for(d, lambda d: sorted(rows(d)) == [0, 1, 2, 3, 4], what="the earliest page")
    # jump to a time: the first record at or after it
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 12 * 60_000 - 30_000) / 1000)) + "Z"
    d.find_element(By.CSS_SELECTOR, "form.browse input[name=timestamp]").send_keys(at)
    d.find_element(By.CSS_SELECTOR, "form.browse button[type=submit]").click()
    wait_for(d, lambda d: min(rows(d) or [-1]) == 12, what="the record after the time")
    assert "is at offset 12" in d.find_element(By.CSS_SELECTOR, "p.notice").text
    screenshot(d, "messages-timestamp")
    status, page = browse(b, topic, timestamp=base + 3 * 60_000, limit=2)
    assert status == 200 and [r["offset"] for r in page["records"]] == [3, 4]
    assert page["records"][0]["timestamp"] == base + 3 * 60_000
    assert page["records"][0]["timestamp_type"] == "CreateTime"
    # a time after the last record: the end, with a notice
    status, page = browse(b, topic, timestamp=base + 3_600_000 * 5)
    assert status == 200 and page["records"] == [] and page["start_offset"] == 20
    assert any("no record at or after" in n for n in page["notices"])


def test_filters_by_key_and_value_scan_a_bounded_number_of_records(b, browser_page):
    d = browser_page
    topic = unique("msg-filter")
    create_topic(b.bootstrap, topic)
    produce(b.bootstrap, topic, [(f"user-{i}".encode(), json.dumps({"n": i, "city": "Praha" if i % 10 == 3 else "Brno"}).encode(),
                                  None, None, None) for i in range(40)])
    status, page = browse(b, topic, offset=0, key="user-7", key_match="exact")
    assert status == 200 and [r["offset"] for r in page["records"]] == [7]
    assert page["scanned_records"] == 40 and page["at_end"]
    status, page = browse(b, topic, offset=0, key="user-1")
    assert [r["offset"] for r in page["records"]] == [1] + list(range(10, 20))
    status, page = browse(b, topic, offset=0, value_contains="Praha", limit=2)
    assert [r["offset"] for r in page["records"]] == [3, 13]
    assert page["next_offset"] == 14 and not page["at_end"]
    status, page = browse(b, topic, offset=14, value_contains="Praha", limit=2)
    assert [r["offset"] for r in page["records"]] == [23, 33]

    d.get(f"{b.admin_url}/topics/{topic}/messages?offset=0")
    d.find_element(By.CSS_SELECTOR, "form.browse input[name=key]").send_keys("user-2")
    d.find_element(By.CSS_SELECTOR, "form.browse input[name=value_contains]").send_keys("Praha")
    d.find_element(By.CSS_SELECTOR, "form.browse input[name=offset]").send_keys("0")
    d.find_element(By.CSS_SELECTOR, "form.browse button[type=submit]").click()
    wait_for(d, lambda d: sorted(rows(d)) == [23], what="the one record matching both filters")
    assert "scanned 40 records" in d.find_element(By.CSS_SELECTOR, "p.summary").text
    screenshot(d, "messages-filter")


def test_produce_from_the_form_and_read_it_with_a_consumer(b, browser_page):
    d = browser_page
    topic = unique("msg-produce")
    create_topic(b.bootstrap, topic, partitions=3)
    d.get(f"{b.admin_url}/topics/{topic}/messages")
    d.find_element(By.ID, "p-partition").send_keys("2")
    d.find_element(By.ID, "p-key").send_keys("form-key")
    d.find_element(By.ID, "p-headers").send_keys("trace=abc-123\nsource=console")
    d.find_element(By.ID, "p-value").send_keys('{"hello": "world"}')
    screenshot(d, "messages-produce-form")
    d.find_element(By.CSS_SELECTOR, "form.produce button[type=submit]").click()
    notice = wait_for(d, lambda d: re.search(r"Produced a record to partition (\d+) at offset (\d+)",
                                             d.find_element(By.TAG_NAME, "main").text), what="the produce notice")
    partition, offset = int(notice.group(1)), int(notice.group(2))
    assert partition == 2
    wait_for(d, lambda d: offset in rows(d), what="the produced record on the page")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique("g"), "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        msg = wait_until(lambda: (m := c.poll(1.0)) is not None and not m.error() and m, WAIT_S, "the record")
    finally:
        c.close()
    assert (msg.partition(), msg.offset()) == (partition, offset)
    assert msg.key() == b"form-key" and msg.value() == b'{"hello": "world"}'
    assert sorted(msg.headers()) == [("source", b"console"), ("trace", b"abc-123")]

    # the API; a keyed record without a partition goes where Kafka's default
    # partitioner (murmur2) sends it
    for key in ["alpha", "beta", "gamma", "delta"]:
        status, out = api(b.admin_url, f"/api/v1/topics/{topic}/messages", "POST",
                          {"key": key, "value": "v", "headers": {"h": "1"}})
        assert status == 201, out
        [(p, _)] = produce(b.bootstrap, topic, [(key.encode(), b"x", None, None, None)], partitioner="murmur2_random")
        assert out["partition"] == p, key
        status, page = browse(b, topic, partition=p, offset=out["offset"], limit=1)
        assert page["records"][0]["key"]["text"] == key


def test_produce_errors_are_clear(b, browser_page):
    topic = unique("msg-small")
    create_topic(b.bootstrap, topic, config={"max.message.bytes": "200"})
    status, out = api(b.admin_url, f"/api/v1/topics/{topic}/messages", "POST", {"value": "x" * 1000})
    assert status == 400 and out["kafka_error"] == "MESSAGE_TOO_LARGE", out
    status, out = api(b.admin_url, f"/api/v1/topics/{topic}/messages", "POST", {"partition": 9, "value": "x"})
    assert status == 404 and "no partition 9" in out["error"]
    status, _, body = http(f"{b.admin_url}/api/v1/topics/{topic}/messages", "POST", b"{not json",
                           {"Content-Type": "application/json"})
    assert status == 400 and b"invalid JSON body" in body
    d = browser_page
    d.get(f"{b.admin_url}/topics/{topic}/messages")
    d.find_element(By.ID, "p-value").send_keys("y" * 500)
    d.find_element(By.CSS_SELECTOR, "form.produce button[type=submit]").click()
    wait_for(d, lambda d: "MESSAGE_TOO_LARGE" in d.find_element(By.CSS_SELECTOR, "p.error").text,
             what="the error page")
    screenshot(d, "messages-produce-error")


def test_live_tail_shows_a_record_produced_after_the_page_opened(b, browser_page):
    d = browser_page
    topic = unique("msg-tail")
    create_topic(b.bootstrap, topic)
    produce(b.bootstrap, topic, [(b"old", b"before", None, None, None)])
    d.get(f"{b.admin_url}/topics/{topic}/messages")
    wait_for(d, lambda d: sorted(rows(d)) == [0], what="the first record")
    toggle = d.find_element(By.ID, "tail-toggle")
    toggle.click()
    wait_for(d, lambda d: toggle.get_attribute("aria-pressed") == "true", what="the tail on")
    wait_for(d, lambda d: "Live tail on" in d.find_element(By.ID, "tail-status").text, what="the tail's status")
    produce(b.bootstrap, topic, [(b"new", b"after the page opened", None, None, None)])
    wait_for(d, lambda d: 1 in rows(d), timeout=WAIT_S, what="the tailed record")
    assert "after the page opened" in rows(d)[1].text
    screenshot(d, "messages-live-tail")
    toggle.click()
    wait_for(d, lambda d: toggle.get_attribute("aria-pressed") == "false", what="the tail off")
    assert d.find_element(By.ID, "tail-status").get_attribute("aria-live") == "polite"


def test_schema_registry_records_are_decoded(b, browser_page):
    d = browser_page
    sr = SchemaRegistryClient({"url": b.registry_url})
    topic = unique("msg-schema")
    create_topic(b.bootstrap, topic, partitions=3)
    ctx = SerializationContext(topic, MessageField.VALUE)
    avro = AvroSerializer(sr, json.dumps({
        "type": "record", "name": "User", "namespace": "com.example",
        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"},
                   {"name": "email", "type": ["null", "string"], "default": None}]}))
    produce(b.bootstrap, topic, [(b"u1", avro({"name": "Ada", "age": 36, "email": "ada@example.com"}, ctx),
                                  None, None, 0)])
    topic_json = unique("msg-jsonschema")
    create_topic(b.bootstrap, topic_json)
    ctx_json = SerializationContext(topic_json, MessageField.VALUE)
    js = JSONSerializer(json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "title": "Order",
                                    "type": "object", "properties": {"id": {"type": "integer"},
                                                                     "item": {"type": "string"}}}), sr)
    produce(b.bootstrap, topic_json, [(None, js({"id": 7, "item": "lamp"}, ctx_json), None, None, None)])
    topic_proto = unique("msg-proto")
    create_topic(b.bootstrap, topic_proto)
    Reading = protobuf_message_class()
    pb = ProtobufSerializer(Reading, sr, {"use.deprecated.format": False})
    produce(b.bootstrap, topic_proto, [(None, pb(Reading(sensor="s-9", value=2.5),
                                                 SerializationContext(topic_proto, MessageField.VALUE)), None, None, None)])

    status, page = browse(b, topic, partition=0, offset=0)
    v = page["records"][0]["value"]
    assert (v["format"], v["schema_type"]) == ("schema", "AVRO"), v
    assert json.loads(v["text"]) == {"name": "Ada", "age": 36, "email": "ada@example.com"}
    status, page = browse(b, topic_json, offset=0)
    v = page["records"][0]["value"]
    assert (v["format"], v["schema_type"]) == ("schema", "JSON") and json.loads(v["text"]) == {"id": 7, "item": "lamp"}
    status, page = browse(b, topic_proto, offset=0)
    v = page["records"][0]["value"]
    assert (v["format"], v["schema_type"]) == ("schema", "PROTOBUF"), v
    assert json.loads(v["text"]) == {"sensor": "s-9", "value": 2.5}
    # hex still shows the wire header
    status, page = browse(b, topic, partition=0, offset=0, format="hex")
    assert page["records"][0]["value"]["text"].startswith("00000000  00 00 00 00")
    # a value filter matches the decoded form
    status, page = browse(b, topic, partition=0, offset=0, value_contains="ada@example")
    assert len(page["records"]) == 1

    d.get(f"{b.admin_url}/topics/{topic}/messages?partition=0&offset=0")
    wait_for(d, lambda d: 0 in rows(d), what="the Avro record")
    cell = rows(d)[0].find_element(By.CSS_SELECTOR, "td.value")
    assert "avro schema" in cell.text and '"name": "Ada"' in cell.text
    screenshot(d, "messages-avro")
    d.get(f"{b.admin_url}/topics/{topic_proto}/messages")
    wait_for(d, lambda d: 0 in rows(d), what="the Protobuf record")
    assert '"sensor": "s-9"' in rows(d)[0].find_element(By.CSS_SELECTOR, "td.value").text
    screenshot(d, "messages-protobuf")


def test_bad_input_gets_clear_errors(b):
    topic = unique("msg-bad")
    create_topic(b.bootstrap, topic, partitions=2)
    produce(b.bootstrap, topic, [(None, b"one", None, None, 0), (None, b"two", None, None, 0)])
    status, out = api(b.admin_url, "/api/v1/topics/no-such-topic/messages")
    assert status == 404 and "no topic no-such-topic" in out["error"]
    status, out = browse(b, topic, partition=2)
    assert status == 404 and "has no partition 2" in out["error"]
    # an offset far beyond the end: clamped, with a notice
    status, out = browse(b, topic, offset=10**15)
    assert status == 200 and out["records"] == [] and out["start_offset"] == 2
    assert any("beyond the end" in n for n in out["notices"]), out["notices"]
    for params, what in [({"offset": -1}, "offset must not be negative"), ({"offset": "abc"}, "offset must be"),
                         ({"partition": "x"}, "partition must be"), ({"limit": 0}, "limit must be"),
                         ({"format": "xml"}, "format must be"), ({"timestamp": "soon"}, "timestamp must be"),
                         ({"offset": 1, "timestamp": 5}, "not both")]:
        status, out = browse(b, topic, **params)
        assert status == 400 and what in out["error"], (params, out)
    status, out = browse(b, topic, limit=100000)
    assert status == 200 and out["limit"] == 500 and out["notices"]
    # the pages answer the same statuses, as HTML
    status, headers, body = http(f"{b.admin_url}/topics/{topic}/messages?offset=-5")
    assert status == 400 and headers["content-type"].startswith("text/html") and b"must not be negative" in body
    status, _, body = http(f"{b.admin_url}/topics/{topic}/messages?offset=1000000000000000")
    assert status == 200 and b"beyond the end" in body
    assert http(f"{b.admin_url}/topics/nope/messages")[0] == 404
    assert http(f"{b.admin_url}/topics/{topic}/messages/tail?partition=0")[0] == 400


def test_narrow_window(b):
    topic = unique("msg-narrow")
    create_topic(b.bootstrap, topic)
    produce(b.bootstrap, topic, [(b"narrow-key", json.dumps({"a": 1, "b": [1, 2, 3]}).encode(), [("h", b"v")], None, None)])
    d = chrome(width=420, height=800)
    try:
        d.get(f"{b.admin_url}/topics/{topic}/messages")
        wait_for(d, lambda d: 0 in rows(d), what="the record")
        screenshot(d, "messages-narrow")
        wide = d.execute_script(
            "return Array.from(document.querySelectorAll('main *')).filter(e => e.getBoundingClientRect().right > "
            "document.documentElement.clientWidth + 1).map(e => e.tagName + '.' + e.className).slice(0, 10)")
        width, client = d.execute_script("return [document.documentElement.scrollWidth, "
                                         "document.documentElement.clientWidth]")
        assert width <= client, f"the page scrolls sideways in a narrow window ({width} > {client}): {wide}"
        # the whole page, scrolled down to the produce form
        d.execute_script("document.getElementById('produce-h').scrollIntoView()")
        screenshot(d, "messages-narrow-produce")
    finally:
        close(d)


def test_read_committed_hides_aborted_transactions(b):
    topic = unique("msg-txn")
    create_topic(b.bootstrap, topic)
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": unique("tx"), "acks": "all"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, key=b"a", value=b"aborted")
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, key=b"c", value=b"committed")
    p.commit_transaction(30)
    # offsets: 0 aborted, 1 abort marker, 2 committed, 3 commit marker
    status, page = browse(b, topic, offset=0)
    assert status == 200, page
    assert [(r["offset"], r["value"]["text"]) for r in page["records"]] == [(2, "committed")]
    assert page["records"][0]["transactional"] and page["hidden_records"] == 3
    status, page = browse(b, topic, offset=0, isolation="read_uncommitted")
    assert [(r["offset"], r["value"]["text"]) for r in page["records"]] == [(0, "aborted"), (2, "committed")]
    assert page["hidden_records"] == 2, "the markers"
