"""The console's overview (`/`), brokers (`/brokers`, `/brokers/ID`) and schemas
(`/schemas`, `/schemas/SUBJECT`) pages and their /api/v1 twins, in a real browser
(headless chromium) against the real binary."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

import browser as b
from browser import api, http, screenshot, wait_for
from conftest import Broker
from helpers import admin, create_topic, make_producer, unique, wait_until

WAIT = 60.0  # a deadline, not a verdict: throughput is sampled every 5 s


@pytest.fixture(scope="module")
def cb(tmp_path_factory):
    """One broker for the module, with a static config the broker page shows."""
    broker = Broker(tmp_path_factory.mktemp("console-cluster"), {"num.partitions": 3})
    broker.start()
    yield broker
    alive = broker.is_running()
    broker.kill()
    assert alive, f"the broker died during the module\n{broker.log_tail(150)}"


@pytest.fixture(scope="module")
def topics(cb):
    """Two topics created for the module: {name: partitions}."""
    made = {unique("overview-a"): 4, unique("overview-b"): 2}
    for name, n in made.items():
        create_topic(cb.bootstrap, name, partitions=n)
    return made


def partitions_by_metadata(bootstrap: str) -> tuple[int, int]:
    md = admin(bootstrap).list_topics(timeout=10)
    ts = [t for t in md.topics.values() if t.error is None]
    return len(ts), sum(len(t.partitions) for t in ts)


def cluster(cb) -> dict:
    status, body = api(cb.admin_url, "/api/v1/cluster")
    assert status == 200, body
    return body


# -- API ---------------------------------------------------------------------------

def test_cluster_api_counts_match_the_metadata(cb, topics):
    # the counts settle once the topics are in the image (internal topics included)
    def same():
        c = cluster(cb)
        n_topics, n_partitions = partitions_by_metadata(cb.bootstrap)
        h = c["partitions"]
        return (h["topics"], h["partitions"]) == (n_topics, n_partitions) and c
    c = wait_until(same, 30, "the overview's counts to match Metadata")
    assert c["node_id"] == 1 and c["active_controller"] == 1 and c["cluster_id"]
    h = c["partitions"]
    assert h["partitions"] >= sum(topics.values())
    assert h["replicas"] == h["partitions"], "replication factor 1"
    assert (h["under_replicated"], h["offline"], h["under_min_isr"]) == (0, 0, 0) and c["problems"] == []
    [broker] = c["brokers"]
    assert broker["id"] == 1 and broker["state"] == "running" and not broker["fenced"]
    assert broker["controller"] and broker["active_controller"] and broker["this_node"]
    assert broker["leaders"] == h["partitions"] and broker["replicas"] == h["partitions"]
    assert c["quorum"]["leader"] == 1 and c["quorum"]["voters"] == [1]
    assert [(m["id"], m["role"], m["leader"]) for m in c["controllers"]] == [(1, "voter", True)]
    [d] = c["log_dirs"]
    assert d["online"] and d["partitions"] == h["partitions"] and d["total_bytes"] > 0
    assert 0 <= d["usable_bytes"] <= d["total_bytes"]
    assert set(c["throughput"]) == {"bytes_in", "bytes_out", "messages_in"}


def test_throughput_is_sampled_per_node_and_per_topic(cb, topics):
    name = next(iter(topics))
    p = make_producer(cb.bootstrap)
    for i in range(200):
        p.produce(name, value=json.dumps({"i": i, "pad": "x" * 200}).encode(), partition=i % 4)
    assert p.flush(60) == 0

    def rated(path, label):
        status, chart = api(cb.admin_url, path)
        assert status == 200, chart
        series = {s["label"]: s["values"] for s in chart["series"]}
        assert len(chart["t"]) == len(series[label])
        return any(v and v > 0 for v in series[label]) and chart
    wait_until(lambda: rated("/api/v1/cluster/throughput", "bytes in/s"), WAIT, "a bytes-in rate")
    wait_until(lambda: rated("/api/v1/cluster/throughput", "messages in/s"), WAIT, "a messages-in rate")
    chart = wait_until(lambda: rated(f"/api/v1/cluster/throughput?topic={name}", "messages in/s"), WAIT,
                       "the topic's messages-in rate")
    assert [s["label"] for s in chart["series"]] == ["bytes in/s", "messages in/s"]
    status, chart = api(cb.admin_url, "/api/v1/cluster/throughput?kind=bytes")
    assert status == 200 and [s["label"] for s in chart["series"]] == ["bytes in/s", "bytes out/s"]
    status, body = api(cb.admin_url, "/api/v1/cluster/throughput?kind=volume")
    assert status == 400 and "kind is bytes or messages" in body["error"]
    status, body = api(cb.admin_url, "/api/v1/cluster/throughput?topic=no-such-topic")
    assert status == 404 and "no topic no-such-topic" in body["error"]


def test_brokers_api_and_bad_ids(cb, topics):
    status, body = api(cb.admin_url, "/api/v1/brokers")
    assert status == 200 and body["active_controller"] == 1
    [broker] = body["brokers"]
    assert broker["id"] == 1 and broker["leaders"] > 0
    status, d = api(cb.admin_url, "/api/v1/brokers/1")
    assert status == 200, d
    assert d["broker"]["id"] == 1 and d["log_dirs_error"] is None and d["configs_error"] is None
    configs = {c["name"]: c for c in d["configs"]}
    assert configs["num.partitions"]["value"] == "3"
    assert configs["num.partitions"]["source"] == "STATIC_BROKER_CONFIG"
    assert configs["log.retention.ms"]["source"] in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG")
    assert d["log_dirs"][0]["online"]
    # bad ids: a clear error with the right status, JSON for the API, HTML for pages
    status, e = api(cb.admin_url, "/api/v1/brokers/42")
    assert status == 404 and "no broker 42" in e["error"]
    status, e = api(cb.admin_url, "/api/v1/brokers/abc")
    assert status == 400 and "integer" in e["error"]
    status, e = api(cb.admin_url, "/api/v1/brokers/99999999999")
    assert status == 400
    status, headers, page = http(cb.admin_url + "/brokers/42")
    assert status == 404 and headers["content-type"].startswith("text/html") and b"no broker 42" in page
    assert http(cb.admin_url + "/brokers/x")[0] == 400
    assert cb.is_running()


def register(cb, subject: str, schema: dict) -> int:
    client = SchemaRegistryClient({"url": cb.registry_url})
    return client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))


PAYMENT = {"type": "record", "name": "Payment", "namespace": "shop",
           "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"}]}


def test_schemas_api(cb):
    subject = unique("payments") + "-value"
    schema_id = register(cb, subject, PAYMENT)
    v2 = dict(PAYMENT, fields=PAYMENT["fields"] + [{"name": "note", "type": ["null", "string"], "default": None}])
    id2 = register(cb, subject, v2)

    def listed():
        status, body = api(cb.admin_url, "/api/v1/schemas")
        assert status == 200
        return next((s for s in body["subjects"] if s["subject"] == subject and s["versions"] == 2), None) and body
    body = wait_until(listed, 30, "the subject in the console's list")
    assert body["enabled"] and body["url"] == cb.registry_url
    assert body["compatibility"] == "BACKWARD" and body["mode"] == "READWRITE"
    s = next(s for s in body["subjects"] if s["subject"] == subject)
    assert (s["latest_version"], s["latest_id"], s["schema_type"]) == (2, id2, "AVRO")
    status, d = api(cb.admin_url, f"/api/v1/schemas/{subject}")
    assert status == 200, d
    assert [(v["version"], v["id"], v["deleted"]) for v in d["versions"]] == [(1, schema_id, False), (2, id2, False)]
    assert json.loads(d["versions"][0]["pretty"]) == json.loads(d["versions"][0]["schema"])
    assert "\n" in d["versions"][0]["pretty"], "pretty-printed"
    assert d["compatibility"] == "BACKWARD" and d["versions"][0]["references"] == []
    status, e = api(cb.admin_url, "/api/v1/schemas/no-such-subject")
    assert status == 404 and "no subject no-such-subject" in e["error"]


def test_schemas_page_says_when_the_registry_is_off(start_broker, browser_page):
    off = start_broker({"schema.registry.listeners": ""})
    status, body = api(off.admin_url, "/api/v1/schemas")
    assert status == 200 and body["enabled"] is False and body["url"] is None
    d = browser_page
    d.get(off.admin_url + "/schemas")
    note = wait_for(d, lambda d: d.find_element("css selector", "p.notice"), what="the registry-off note")
    assert "schema.registry.listeners" in note.text
    screenshot(d, "cluster-schemas-off")


# -- pages -------------------------------------------------------------------------

def card(d, label: str) -> str:
    for c in d.find_elements("css selector", "#health .card"):
        if c.find_element("css selector", ".label").text == label:
            return c.find_element("css selector", ".value").text
    raise AssertionError(f"no card {label!r}")


def test_overview_page_shows_counts_and_draws_the_throughput_chart(cb, topics, browser_page):
    name = next(iter(topics))
    p = make_producer(cb.bootstrap)
    for i in range(50):
        p.produce(name, value=b"v" * 100, partition=0)
    assert p.flush(60) == 0
    n_topics, n_partitions = partitions_by_metadata(cb.bootstrap)
    d = browser_page
    d.get(cb.admin_url + "/")
    wait_for(d, lambda d: d.title.startswith("Overview"), what="the overview")
    assert card(d, "partitions") == str(n_partitions)
    assert card(d, "topics") == str(n_topics)
    assert card(d, "brokers running") == "1 of 1"
    assert card(d, "active controller") == "1"
    assert card(d, "offline") == "0" and card(d, "under-replicated") == "0"
    rows = d.find_elements("css selector", "#brokers tbody tr")
    assert len(rows) == 1 and "running" in rows[0].text and "active controller" in rows[0].text
    assert "online" in d.find_element("css selector", "#log-dirs tbody tr").text
    # the chart draws once the samples have a point (the page refreshes it every 10 s)
    wait_for(d, lambda d: d.find_elements("css selector", "#throughput-chart canvas"), timeout=WAIT,
             what="the throughput chart's canvas")
    wait_until(lambda: (cluster(cb)["throughput"]["bytes_in"] or 0) > 0 or
               any(v for v in api(cb.admin_url, "/api/v1/cluster/throughput")[1]["series"][0]["values"]),
               WAIT, "a bytes-in sample")
    d.get(cb.admin_url + "/")
    wait_for(d, lambda d: d.find_elements("css selector", "#throughput-chart canvas"), timeout=WAIT,
             what="the chart with data")
    screenshot(d, "cluster-overview")


def test_brokers_pages(cb, topics, browser_page):
    c = cluster(cb)
    leaders = c["brokers"][0]["leaders"]
    d = browser_page
    d.get(cb.admin_url + "/brokers")
    row = wait_for(d, lambda d: d.find_element("css selector", "#brokers tbody tr"), what="the brokers table")
    cells = [td.text for td in row.find_elements("css selector", "td")]
    assert cells[0].startswith("1") and cells[2].startswith("running")
    assert cells[3] == str(leaders), cells
    screenshot(d, "cluster-brokers")
    row.find_element("css selector", "a").click()
    wait_for(d, lambda d: d.title.startswith("Broker 1"), what="the broker's page")
    config = wait_for(d, lambda d: next((r for r in d.find_elements("css selector", "#configs tbody tr")
                                         if r.find_element("css selector", "td").text == "num.partitions"), None),
                      what="the num.partitions config row")
    assert "3" in config.text and "STATIC_BROKER_CONFIG" in config.text
    assert "online" in d.find_element("css selector", "#log-dirs tbody tr").text
    # the filter narrows the configs
    d.find_element("id", "config-filter").send_keys("num.partitions")
    wait_for(d, lambda d: all(("num.partitions" in r.text) == r.is_displayed()
                              for r in d.find_elements("css selector", "#configs tbody tr")),
             what="the filtered configs")
    assert config.is_displayed()
    d.find_element("id", "config-filter").clear()
    screenshot(d, "cluster-broker-1")
    d.get(cb.admin_url + "/brokers/42")
    wait_for(d, lambda d: "no broker 42" in d.page_source, what="the 404 page")


def test_schemas_pages(cb, browser_page):
    subject = unique("orders") + "-value"
    register(cb, subject, PAYMENT)
    d = browser_page
    d.get(cb.admin_url + "/schemas")

    def link(d):
        d.refresh()
        return next((a for a in d.find_elements("css selector", "#subjects tbody a") if a.text == subject), None)
    wait_for(d, link, what="the subject in the list")
    screenshot(d, "cluster-schemas")
    link(d).click()
    wait_for(d, lambda d: d.title.startswith(f"Schema {subject}"), what="the subject's page")
    pre = d.find_element("css selector", "section.schema-version pre")
    assert json.loads(pre.text) == PAYMENT
    assert '\n  "name": "Payment"' in pre.text or '"name": "Payment"' in pre.text
    assert "AVRO" in d.find_element("css selector", "section.schema-version h2").text
    screenshot(d, "cluster-schema-subject")


def test_narrow_window(cb, topics):
    d = b.chrome(width=420, height=800)
    try:
        for path, name in (("/", "overview"), ("/brokers/1", "broker-1"), ("/schemas", "schemas")):
            d.get(cb.admin_url + path)
            wait_for(d, lambda d: d.find_element("css selector", "main h1"), what=f"{path} at 420 px")
            # nothing but tables (which scroll in their wrapper) is wider than the window
            wide = d.execute_script(
                "return document.documentElement.scrollWidth > window.innerWidth + 1")
            screenshot(d, f"cluster-{name}-narrow")
            assert not wide, f"{path} scrolls sideways at 420 px"
    finally:
        b.close(d)


def test_a_three_node_cluster_as_node_1_sees_it(tmp_path):
    """Brokers, controllers and partition health of a 3-node cluster; another node's
    configs and log dirs come from that node; a dead node shows as fenced with
    under-replicated partitions."""
    import cluster as cl
    from conftest import free_port
    admin_port = free_port()
    with cl.Cluster(tmp_path, n=3, node_settings={1: {"admin.listeners": f"http://127.0.0.1:{admin_port}"}}) as c:
        c.wait_ready()
        base = f"http://127.0.0.1:{admin_port}"
        c.create_topic("replicated", partitions=6, replication_factor=3)
        status, overview = api(base, "/api/v1/cluster")
        assert status == 200
        assert [b["id"] for b in overview["brokers"]] == [1, 2, 3]
        assert sorted(overview["quorum"]["voters"]) == [1, 2, 3]
        assert overview["active_controller"] in (1, 2, 3)
        assert sum(b["leaders"] for b in overview["brokers"]) == overview["partitions"]["partitions"]
        status, d = api(base, "/api/v1/brokers/2")
        assert status == 200 and d["configs_error"] is None and d["log_dirs_error"] is None, d
        assert {x["name"]: x["value"] for x in d["configs"]}["broker.id"] == "2"
        assert d["log_dirs"][0]["partitions"] >= 6 and "node2" in d["log_dirs"][0]["path"]
        c.kill(3)

        def degraded():
            s, o = api(base, "/api/v1/cluster")
            b3 = next(b for b in o["brokers"] if b["id"] == 3)
            return b3["fenced"] and o["partitions"]["under_replicated"] >= 6 and o
        o = wait_until(degraded, 60, "broker 3 fenced and its partitions under-replicated")
        assert any(p["problem"] == "under-replicated" for p in o["problems"])
        status, d = api(base, "/api/v1/brokers/3")
        assert status == 200 and d["broker"]["state"] == "fenced"
        assert d["configs"] is None and "broker 3" in d["configs_error"]
