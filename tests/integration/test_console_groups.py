"""The console's groups pages (/groups, /groups/NAME) in a real browser: a group's
lag, members and assignment, classic and KIP-848 groups listed with their type, a
share group's share partitions (start offset, delivery counts, lag),
resetting a stopped group's offsets with a preview and a confirmation (refused for
a group with a live member), deleting a group with confirmation, and the lag
chart's samples."""

from __future__ import annotations

import json
import urllib.parse

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

import helpers as h
from browser import api, http, screenshot, wait_for


def produce(bootstrap: str, topic: str, n: int, partition: int = 0) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(n):
        p.produce(topic, value=json.dumps({"i": i}).encode(), key=f"k{i}".encode(), partition=partition)
    assert p.flush(30) == 0


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """A classic consumer of `group` commits `offsets` (partition -> offset), then closes."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]

        def done():
            # the first commit may find __consumer_offsets still being created
            try:
                c.commit(offsets=tps, asynchronous=False)
                return True
            except KafkaException as e:
                if not e.args[0].retriable() and e.args[0].code() != KafkaError.NOT_COORDINATOR:
                    raise
                return False
        h.wait_until(done, 60, f"a commit for {group}")
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str, partitions) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in partitions], 30)}
    finally:
        c.close()


def lag_cell(d, topic: str, partition: int):
    rows = d.find_elements("css selector", f"#lag tr[data-topic='{topic}'][data-partition='{partition}'] td.lag")
    return rows[0].text if rows else None


def test_a_group_with_known_lag_shows_it(module_broker_alive, browser):
    b, d = module_broker_alive, browser
    topic, group = h.unique("lagged"), h.unique("lag-group")
    h.create_topic(b.bootstrap, topic, partitions=2)
    produce(b.bootstrap, topic, 10, partition=0)
    produce(b.bootstrap, topic, 3, partition=1)
    commit(b.bootstrap, group, topic, {0: 4, 1: 3})

    d.get(b.admin_url + "/groups/" + group)
    wait_for(d, lambda d: lag_cell(d, topic, 0) == "6", what="lag 10-4 on partition 0")
    assert lag_cell(d, topic, 1) == "0"
    assert d.find_element("id", "total-lag").text == "6"
    assert d.find_element("id", "group-state").text == "Empty"
    assert d.find_elements("css selector", "div.chart[data-chart-url]"), "the lag chart"
    screenshot(d, "groups-detail")

    # the list shows it with its type and total lag; the filter narrows it
    d.get(b.admin_url + "/groups")
    wait_for(d, lambda d: group in d.find_element("id", "groups").text, what="the group in the list")
    row = [r for r in d.find_elements("css selector", "#groups tbody tr") if group in r.text][0]
    cells = [c.text for c in row.find_elements("tag name", "td")]
    assert cells[1] == "classic" and cells[2] == "Empty" and cells[5] == "6", cells
    d.find_element("id", "group-filter").send_keys(group)
    wait_for(d, lambda d: all(group in r.text for r in d.find_elements("css selector", "#groups tbody tr")
                              if r.is_displayed()), what="the filter")
    screenshot(d, "groups-list")

    # the JSON API says the same
    status, g = api(b.admin_url, "/api/v1/groups/" + group)
    assert status == 200 and g["total_lag"] == 6 and g["group_type"] == "classic"
    assert {(p["partition"], p["committed"], p["end_offset"], p["lag"]) for p in g["partitions"]} == \
        {(0, 4, 10, 6), (1, 3, 3, 0)}

    # the sampler (every 5 s, in-process) fills the lag chart's series
    def sampled():
        status, chart = api(b.admin_url, f"/api/v1/groups/{group}/lag-history")
        assert status == 200
        labels = {s["label"]: s["values"] for s in chart["series"]}
        return labels.get("total") and labels["total"][-1] == 6 and labels.get(f"{topic}:0", [None])[-1] == 6
    h.wait_until(sampled, 60, "the lag samples")

    # unknown group: 404 page and JSON
    status, body = api(b.admin_url, "/api/v1/groups/no-such-group")
    assert status == 404 and "no group no-such-group" in body["error"]
    assert http(b.admin_url + "/groups/no-such-group")[0] == 404


def share_row(d, topic: str, partition: int) -> dict[str, str] | None:
    rows = d.find_elements("css selector", f"#share-partitions tr[data-topic='{topic}'][data-partition='{partition}']")
    if not rows:
        return None
    return {c: rows[0].find_element("css selector", f"td.{c}").text for c in ("start", "acknowledged", "archived", "lag")}


def test_a_share_groups_page_shows_its_share_partitions(module_broker_alive, browser):
    """A share group read 20 records and acknowledged them, then 5 more arrived that
    nobody read: its share partition starts at 20 with lag 5, on the page and in the API."""
    from test_share_groups import new_queue, poll_until, share_consumer
    from test_share_groups import produce as produce_queue
    b, d = module_broker_alive, browser
    topic, group = new_queue(b)     # one partition, share.auto.offset.reset=earliest
    produce_queue(b, topic, 20)
    c = share_consumer(b, group)
    try:
        c.subscribe([topic])
        got = poll_until(c, lambda got: len(got) >= 20, "the 20 records")
        assert sorted(m.offset() for m in got) == list(range(20))
        c.commit_sync()     # implicit acknowledgement: accepts what the polls delivered
    finally:
        c.close()
    produce_queue(b, topic, 5, start=20)

    want = {"topic": topic, "partition": 0, "start_offset": 20, "in_flight": 0, "acknowledged": 0,
            "archived": 0, "end_offset": 25, "lag": 5}

    def described():
        status, g = api(b.admin_url, "/api/v1/groups/" + group)
        assert status == 200, g
        return g["share_partitions"] == [want] and g
    g = h.wait_until(described, 60, "the share partition at start offset 20 with lag 5")
    assert g["group_type"] == "share" and g["total_lag"] == 5 and g["share_counts_error"] is None, g
    assert g["partitions"] == [], "share groups commit no offsets"

    d.get(b.admin_url + "/groups/" + group)
    wait_for(d, lambda d: share_row(d, topic, 0) == {"start": "20", "acknowledged": "0", "archived": "0", "lag": "5"},
             what="the share partition's row")
    assert d.find_element("id", "total-lag").text == "5"
    assert not d.find_elements("id", "lag"), "no committed-offset lag table for a share group"
    assert not d.find_elements("id", "share-counts-error")
    screenshot(d, "groups-share-detail")


def test_reset_offsets_preview_then_apply_with_confirmation(module_broker_alive, browser):
    b, d = module_broker_alive, browser
    topic, group = h.unique("reset"), h.unique("reset-group")
    h.create_topic(b.bootstrap, topic, partitions=2)
    produce(b.bootstrap, topic, 10, partition=0)
    produce(b.bootstrap, topic, 8, partition=1)
    commit(b.bootstrap, group, topic, {0: 7, 1: 5})

    d.get(b.admin_url + f"/groups/{group}/reset")
    wait_for(d, lambda d: d.find_elements("id", "target"), what="the reset form")
    from selenium.webdriver.support.ui import Select
    Select(d.find_element("id", "scope")).select_by_value("all")
    Select(d.find_element("id", "target")).select_by_value("shift")
    d.find_element("id", "value").send_keys("-3")
    screenshot(d, "groups-reset-form")
    d.find_element("css selector", "form.stack button[type=submit]").click()
    wait_for(d, lambda d: d.find_elements("id", "preview"), what="the preview")
    rows = {tuple(c.text for c in r.find_elements("tag name", "td"))
            for r in d.find_elements("css selector", "#preview tbody tr")}
    assert rows == {(topic, "0", "7", "4"), (topic, "1", "5", "2")}, rows
    screenshot(d, "groups-reset-preview")
    # nothing changed yet
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 7, 1: 5}

    # applying without the confirmation is refused and changes nothing
    form = urllib.parse.urlencode({"scope": "all", "target": "shift", "value": "-3", "action": "apply"}).encode()
    status, _, body = http(b.admin_url + f"/groups/{group}/reset", "POST", form,
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"confirm" in body
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 7, 1: 5}

    # with it, the offsets change
    d.find_element("id", "confirm").send_keys(group)
    d.find_element("css selector", "button.danger").click()
    wait_for(d, lambda d: "Reset the offsets of 2 partitions" in d.page_source, what="the notice")
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 4, 1: 2}

    # the API: each target, dry runs change nothing
    def reset(**kw):
        return api(b.admin_url, f"/api/v1/groups/{group}/reset-offsets", "POST", {"dry_run": True, **kw})
    status, r = reset(scope="partition", topic=topic, partition=1, target="earliest")
    assert status == 200 and r["partitions"] == [{"topic": topic, "partition": 1, "current": 2, "new": 0}]
    status, r = reset(scope="topic", topic=topic, target="latest")
    assert [p["new"] for p in r["partitions"]] == [10, 8]
    status, r = reset(scope="all", target="offset", value=9)
    assert [p["new"] for p in r["partitions"]] == [9, 8], "clamped to the end"
    status, r = reset(scope="all", target="timestamp", value="2000-01-01T00:00:00Z")
    assert [p["new"] for p in r["partitions"]] == [0, 0]
    status, r = reset(scope="all", target="timestamp", value=str(h.base_ts() + 3_600_000))
    assert [p["new"] for p in r["partitions"]] == [10, 8], "a future time: the end"
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 4, 1: 2}
    status, r = api(b.admin_url, f"/api/v1/groups/{group}/reset-offsets", "POST",
                    {"dry_run": False, "scope": "topic", "topic": topic, "target": "earliest"})
    assert status == 200 and not r["dry_run"]
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 0, 1: 0}

    # bad input: clear 400/404s
    assert reset(target="sideways")[0] == 400
    assert reset(target="timestamp", value="yesterday")[0] == 400
    assert reset(target="offset", value="99999999999999999999999")[0] == 400
    assert reset(scope="partition", topic=topic, partition=7, target="earliest")[0] == 404
    status, body = reset(scope="topic", topic="no-such-topic", target="earliest")
    assert status == 404 and "no-such-topic" in body["error"]


def test_live_members_show_and_block_a_reset(module_broker_alive, browser):
    b, d = module_broker_alive, browser
    topic = h.unique("live")
    classic, kip848 = h.unique("classic-group"), h.unique("kip848-group")
    h.create_topic(b.bootstrap, topic, partitions=2)
    produce(b.bootstrap, topic, 5, partition=0)
    consumers = []
    try:
        for group, protocol, client_id in ((classic, "classic", "console-classic-client"),
                                           (kip848, "consumer", "console-848-client")):
            conf = {"bootstrap.servers": b.bootstrap, "group.id": group, "client.id": client_id,
                    "auto.offset.reset": "earliest", "group.protocol": protocol}
            if protocol == "classic":
                conf["session.timeout.ms"] = 45000
            c = Consumer(conf)
            c.subscribe([topic])
            consumers.append(c)

        def members_assigned(group):
            for c in consumers:
                c.poll(0.1)
            status, g = api(b.admin_url, "/api/v1/groups/" + group)
            return status == 200 and g["state"] == "Stable" and g["members"] and \
                sorted(p for m in g["members"] for a in m["assignment"] for p in a["partitions"]) == [0, 1]
        h.wait_until(lambda: members_assigned(classic), 60, "the classic group's assignment")
        h.wait_until(lambda: members_assigned(kip848), 60, "the KIP-848 group's assignment")

        d.get(b.admin_url + "/groups/" + classic)
        wait_for(d, lambda d: d.find_elements("id", "members"), what="the members table")
        text = d.find_element("id", "members").text
        assert "console-classic-client" in text and f"{topic}: 0, 1" in text, text
        assert "Resetting offsets and deleting need a stopped group" in d.page_source
        screenshot(d, "groups-detail-live")
        d.get(b.admin_url + "/groups/" + kip848)
        wait_for(d, lambda d: d.find_elements("id", "members"), what="the KIP-848 members")
        assert "console-848-client" in d.find_element("id", "members").text

        # both in the list with their type
        status, listed = api(b.admin_url, "/api/v1/groups")
        types = {g["group"]: (g["group_type"], g["members"]) for g in listed["groups"]}
        assert types[classic] == ("classic", 1) and types[kip848] == ("consumer", 1), types
        d.get(b.admin_url + "/groups")
        wait_for(d, lambda d: kip848 in d.find_element("id", "groups").text, what="the list")
        rows = {r.find_elements("tag name", "td")[0].text: r.find_elements("tag name", "td")[1].text
                for r in d.find_elements("css selector", "#groups tbody tr")}
        assert rows[classic] == "classic" and rows[kip848] == "consumer"

        # a reset (and a delete) of a group with a live member is refused
        for group in (classic, kip848):
            status, body = api(b.admin_url, f"/api/v1/groups/{group}/reset-offsets", "POST",
                               {"dry_run": True, "scope": "topic", "topic": topic, "target": "earliest"})
            assert status == 409 and "Stable" in body["error"] and "stop its consumers" in body["error"], body
        status, body = api(b.admin_url, f"/api/v1/groups/{classic}", "DELETE")
        assert status == 409 and body["kafka_error"] == "NON_EMPTY_GROUP"
    finally:
        for c in consumers:
            c.close()
    assert http(b.admin_url + "/")[0] in (200, 404), "the broker is alive"


def test_delete_group_needs_confirmation(module_broker_alive, browser):
    b, d = module_broker_alive, browser
    topic, group = h.unique("del"), h.unique("del-group")
    h.create_topic(b.bootstrap, topic)
    produce(b.bootstrap, topic, 2)
    commit(b.bootstrap, group, topic, {0: 1})

    form = urllib.parse.urlencode({"confirm": "not-the-name"}).encode()
    status, _, body = http(b.admin_url + f"/groups/{group}/delete", "POST", form,
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"nothing was deleted" in body
    assert api(b.admin_url, "/api/v1/groups/" + group)[0] == 200

    d.get(b.admin_url + f"/groups/{group}")
    wait_for(d, lambda d: d.find_elements("link text", "Delete group…"), what="the delete link")
    d.find_element("link text", "Delete group…").click()
    wait_for(d, lambda d: d.find_elements("id", "confirm"), what="the confirmation page")
    screenshot(d, "groups-delete")
    d.find_element("id", "confirm").send_keys(group)
    d.find_element("css selector", "button.danger").click()
    wait_for(d, lambda d: f"Deleted group {group}" in d.page_source, what="the notice")
    assert api(b.admin_url, "/api/v1/groups/" + group)[0] == 404
    assert committed(b.bootstrap, group, topic, [0]) == {0: -1001}, "its offsets are gone"


def test_narrow_window(module_broker_alive):
    import browser as br
    b = module_broker_alive
    d = br.chrome(width=420, height=800)
    try:
        d.get(b.admin_url + "/groups")
        wait_for(d, lambda d: d.find_elements("id", "groups"), what="the list")
        screenshot(d, "groups-list-narrow")
        group = api(b.admin_url, "/api/v1/groups")[1]["groups"][0]["group"]
        d.get(b.admin_url + "/groups/" + group)
        wait_for(d, lambda d: d.find_elements("id", "total-lag"), what="a group")
        screenshot(d, "groups-detail-narrow")
        width, window = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= window, f"the page is {width}px wide in a {window}px window (no horizontal scrolling)"
    finally:
        br.close(d)
