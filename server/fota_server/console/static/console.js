// The console's live part: keeps "Updates in progress" current by polling /live/progress.json
// (a small JSON route) every POLL_MS while the page is open. Built with DOM calls and textContent
// only: nothing from the server is parsed as HTML.
"use strict";
(function () {
  const POLL_MS = 700;
  const list = document.querySelector("ul[data-live]");
  if (!list) return;
  const base = "/live/progress.json" + (list.dataset.live ? "?" + list.dataset.live : "");
  const watched = new Set();
  const finished = new Map(); // updates that ended while the page was open: shown with their outcome
  list.querySelectorAll("li[data-update]").forEach((li) => watched.add(li.dataset.update));

  function row(u) {
    const li = document.createElement("li");
    li.dataset.update = String(u.id);
    const what = document.createElement("span");
    what.className = "live-what";
    const a = document.createElement("a");
    a.href = "/devices/" + encodeURIComponent(u.device_id);
    a.textContent = u.device_id;
    what.append(a, " → " + u.version + " (slot " + u.target_slot + ")");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = u.percent;
    bar.textContent = u.percent + "%";
    bar.setAttribute("aria-label", "update " + u.id + " progress");
    const text = document.createElement("span");
    text.className = "live-text";
    text.textContent = u.percent + "% · " + u.step + (u.reason ? ": " + u.reason : "");
    li.append(what, bar, text);
    return li;
  }

  async function poll() {
    const ids = Array.from(watched).slice(0, 20).map((id) => "id=" + encodeURIComponent(id));
    const url = base + (ids.length ? (base.includes("?") ? "&" : "?") + ids.join("&") : "");
    try {
      const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const items = (await r.json()).items;
      items.forEach((u) => {
        const id = String(u.id);
        if (u.status === "offered" || u.status === "in_progress") watched.add(id);
        else {
          watched.delete(id); // no need to ask again: it has its outcome
          finished.set(id, u);
        }
      });
      const open = items.filter((u) => !finished.has(String(u.id)));
      const rows = open.concat(Array.from(finished.values()).reverse()).map(row);
      if (rows.length === 0) {
        const none = document.createElement("li");
        none.className = "none";
        none.textContent = "No update in progress.";
        rows.push(none);
      }
      list.replaceChildren(...rows);
    } catch (e) {
      // the server is restarting or the network is down: try again at the next tick
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  setTimeout(poll, POLL_MS);
})();
