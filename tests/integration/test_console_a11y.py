"""Every console page in a real browser against what a keyboard and screen-reader user
needs: labelled controls, one h1, named buttons and links, unique ids, a language, a
skip link that is the first Tab stop and moves focus to the content, and no page
wider than the window at 1280x800. Share groups are listed with the other types."""

from __future__ import annotations

import json
import time

from confluent_kafka import Producer, ShareConsumer

import helpers as h
from browser import api, screenshot, wait_for

CHECKS = """
const problems = [];
for (const c of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  const byFor = c.id && document.querySelector('label[for="' + CSS.escape(c.id) + '"]');
  if (!(byFor || c.closest('label') || c.getAttribute('aria-label') || c.getAttribute('aria-labelledby')))
    problems.push('unlabelled control: ' + c.outerHTML.slice(0, 120));
}
const h1 = document.querySelectorAll('h1').length;
if (h1 !== 1) problems.push(h1 + ' h1 elements');
for (const b of document.querySelectorAll('button'))
  if (!b.textContent.trim() && !b.getAttribute('aria-label')) problems.push('unnamed button: ' + b.outerHTML.slice(0, 120));
for (const a of document.querySelectorAll('a[href]'))
  if (!a.textContent.trim() && !a.getAttribute('aria-label')) problems.push('unnamed link: ' + a.outerHTML.slice(0, 120));
const seen = new Set();
for (const e of document.querySelectorAll('[id]')) {
  if (seen.has(e.id)) problems.push('duplicate id: ' + e.id);
  seen.add(e.id);
}
if (!document.documentElement.lang) problems.push('no lang attribute');
if (!document.title.trim()) problems.push('no title');
if (document.documentElement.scrollWidth > window.innerWidth + 1)
  problems.push('page wider than the window: ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
return problems;
"""


def test_every_page_is_usable_by_keyboard_and_screen_reader(module_broker_alive, browser_page):
    b, d = module_broker_alive, browser_page
    topic, group, share_group = h.unique("a11y"), h.unique("a11y-group"), h.unique("a11y-share")
    h.create_topic(b.bootstrap, topic, 2)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(5):
        p.produce(topic, key=f"k{i}".encode(), value=json.dumps({"i": i}).encode(), partition=0)
    assert p.flush(30) == 0
    from test_console_groups import commit
    commit(b.bootstrap, group, topic, {0: 2})
    # a share group exists once a share consumer has joined
    share = ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": share_group})
    share.subscribe([topic])
    try:
        deadline = time.monotonic() + 60
        while True:
            share.poll(0.5)
            status, body = api(b.admin_url, "/api/v1/groups")
            types = {g["group"]: g["group_type"] for g in (body or {}).get("groups", [])}
            if types.get(share_group) == "share":
                break
            assert time.monotonic() < deadline, f"share group {share_group} never listed: {types}"
        assert types.get(group) == "classic"

        pages = ["/", "/topics", f"/topics/{topic}", f"/topics/{topic}/messages?partition=0&offset=0",
                 f"/topics/{topic}/delete", "/catalog", f"/catalog/{topic}", "/groups", f"/groups/{group}",
                 f"/groups/{group}/reset", f"/groups/{share_group}", "/brokers", "/brokers/1", "/schemas",
                 "/acls", "/users", "/quotas", "/login"]
        failures = {}
        for path in pages:
            d.get(b.admin_url + path)
            wait_for(d, lambda d: d.execute_script("return document.readyState") == "complete", what=path)
            problems = d.execute_script(CHECKS)
            if problems:
                failures[path] = problems
        assert not failures, json.dumps(failures, indent=1)

        # the share group's page names its type
        d.get(b.admin_url + f"/groups/{share_group}")
        wait_for(d, lambda d: "share" in d.find_element("tag name", "main").text, what="the share group's type")
        screenshot(d, "a11y-share-group")

        # keyboard: the first Tab stop is the skip link, and it moves focus to the content
        d.get(b.admin_url + "/topics")
        body = d.find_element("tag name", "body")
        from selenium.webdriver.common.keys import Keys
        body.send_keys(Keys.TAB)
        focused = d.switch_to.active_element
        assert focused.get_attribute("class") == "skip" and focused.is_displayed(), focused.get_attribute("outerHTML")
        focused.send_keys(Keys.ENTER)
        wait_for(d, lambda d: d.switch_to.active_element.get_attribute("id") == "main", what="focus on the content")
    finally:
        share.close()
