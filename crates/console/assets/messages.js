// vltava console: the message browser's live tail. The button polls
// /topics/NAME/messages/tail for the records after the last one shown and
// appends their rows; it stops when toggled off or when the page is hidden.
"use strict";
(function () {
  const ROWS_MAX = 2000; // the oldest rows go beyond this
  const EVERY_MS = 1500;
  function setup() {
    const button = document.getElementById("tail-toggle");
    const table = document.getElementById("messages");
    if (!button || !table) return;
    const status = document.getElementById("tail-status");
    const body = table.tBodies[0];
    let next = Number(button.dataset.nextOffset);
    let timer = null;
    let busy = false;
    const poll = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const r = await fetch(button.dataset.tailUrl + "&offset=" + next, { headers: { Accept: "text/html" } });
        if (!r.ok) {
          status.textContent = "Live tail: the broker answered HTTP " + r.status + "; trying again";
          return;
        }
        const html = await r.text();
        const n = r.headers.get("X-Vltava-Next-Offset");
        if (n !== null && timer !== null) next = Number(n);
        const before = body.rows.length;
        if (html.trim() !== "" && timer !== null) {
          body.insertAdjacentHTML("beforeend", html);
          while (body.rows.length > ROWS_MAX) body.deleteRow(0);
          const added = body.rows.length - Math.min(before, ROWS_MAX) ;
          status.textContent = "Live tail on: " + added + " new record" + (added === 1 ? "" : "s") +
            "; waiting for offset " + next;
        }
      } catch (e) {
        status.textContent = "Live tail: no answer; trying again";
      } finally {
        busy = false;
      }
    };
    const start = () => {
      button.setAttribute("aria-pressed", "true");
      button.textContent = "Stop live tail";
      status.textContent = "Live tail on: waiting for records from offset " + next;
      timer = setInterval(poll, EVERY_MS);
      poll();
    };
    const stop = (why) => {
      clearInterval(timer);
      timer = null;
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Live tail";
      status.textContent = why;
    };
    button.addEventListener("click", () => (timer === null ? start() : stop("Live tail off")));
    document.addEventListener("visibilitychange", () => {
      if (document.hidden && timer !== null) stop("Live tail stopped: the page was hidden");
    });
  }
  document.addEventListener("DOMContentLoaded", setup);
})();
