// corral dashboard: apply the events stream to the page, no reload, no framework.
"use strict";
(function () {
  const live = document.getElementById("live");
  function ago(seconds) {
    if (!seconds) return "";
    const d = Math.max(0, Date.now() / 1000 - seconds);
    if (d < 60) return Math.floor(d) + " s ago";
    if (d < 3600) return Math.floor(d / 60) + " min ago";
    return Math.floor(d / 3600) + " h ago";
  }
  function tick() {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = ago(parseFloat(el.dataset.since));
    });
  }
  function apply(event) {
    const row = document.getElementById("node-" + event.node);
    if (!row || event.kind !== "state") return;
    const data = event.data || {};
    row.className = "s-" + data.state;
    row.querySelector(".state span").textContent = data.state;
    row.querySelector(".since").dataset.since = event.time;
    if (data.peers !== undefined) row.querySelector(".peers").textContent = data.peers;
    if (data.bytes !== undefined && data.total) {
      row.querySelector(".progress").textContent = Math.min(100, Math.floor(100 * data.bytes / data.total)) + "%";
    }
    row.querySelector(".error").textContent = data.state === "failed" ? (data.error || "") : "";
  }
  const table = document.getElementById("nodes");
  if (table) {
    const source = new EventSource("/ui/events?since=" + table.dataset.cursor);
    source.addEventListener("state", function (msg) { apply(JSON.parse(msg.data)); });
    source.onopen = function () { live.textContent = "live"; };
    source.onerror = function () { live.textContent = "reconnecting…"; };
  }
  tick();
  setInterval(tick, 1000);
})();
