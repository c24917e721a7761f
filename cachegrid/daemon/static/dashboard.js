// CacheGrid's dashboard. It reads the HTTP API like any client: /stats on
// every refresh, /admin/keys (with its cursor) for the key browser, a peek
// (GET /cache/{key}?peek=true) to open a key, DELETE to delete one. Rates are
// the change of a counter between two refreshes over the change of the
// server's uptime. The charts are drawn here on canvases. Every element is
// filled with textContent: keys and values are never read as HTML.
// A limited token (docs/acl.md) is first asked what it may do
// (GET /dashboard?access=1): the parts it may not use are left out and
// named, never shown as errors; a 403 met later leaves its part out too.
"use strict";

(function () {
  const TOKEN_KEY = "cachegrid.token";
  const HISTORY_SECONDS = 300;
  const KEYS_PER_REQUEST = 100;
  const KEYS_PER_CLICK = 100;
  const REQUESTS_PER_CLICK = 50; // a page of the listing may be empty before its end
  const requested = Number(new URLSearchParams(window.location.search).get("refresh"));
  const REFRESH_MS = requested >= 0.25 ? requested * 1000 : 1000; // ?refresh=SECONDS
  const tokenRequired = document.documentElement.dataset.tokenRequired === "true";

  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat("en-US");
  const rate = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

  class Refused extends Error {}

  let token = window.sessionStorage.getItem(TOKEN_KEY);
  let access = null; // the token's name, permissions and prefixes (null: not known, assume all)
  let timer = null;
  let previous = null;
  const history = [];

  // -- the API ---------------------------------------------------------------

  async function api(path, options) {
    const headers = new Headers((options && options.headers) || {});
    if (token) {
      headers.set("Authorization", "Bearer " + token);
    }
    const response = await fetch(path, Object.assign({}, options, { headers: headers, cache: "no-store" }));
    if (response.status === 401) {
      throw new Refused(token ? "The server refused this token (401). Check CACHEGRID_AUTH_TOKEN and give it again."
        : "This server needs a token.");
    }
    return response;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.message || body.error || "HTTP " + response.status;
    } catch (error) {
      return "HTTP " + response.status;
    }
  }

  // -- the token ---------------------------------------------------------------

  function askForToken(message) {
    stop();
    const panel = $("token-panel");
    panel.hidden = false;
    panel.classList.toggle("refused", Boolean(message));
    $("token-title").textContent = message ? "Token refused" : "This server needs a token";
    $("token-message").textContent = message ||
      "Give the bearer token the server was started with (CACHEGRID_AUTH_TOKEN). " +
      "It is kept in this browser tab only (session storage).";
    setStatus("token needed", "error");
    $("token-input").focus();
  }

  function refused(error) {
    if (!(error instanceof Refused)) {
      return false;
    }
    const hadToken = Boolean(token);
    token = null;
    window.sessionStorage.removeItem(TOKEN_KEY);
    askForToken(hadToken ? error.message : null);
    return true;
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token-input").value.trim();
    $("token-input").value = "";
    window.sessionStorage.setItem(TOKEN_KEY, token);
    $("token-panel").hidden = true;
    start();
  });

  $("change-token").addEventListener("click", () => {
    token = null;
    window.sessionStorage.removeItem(TOKEN_KEY);
    askForToken(null);
  });

  // -- what the token may do -------------------------------------------------------

  // What each part of the page needs, and how the page says it is left out.
  const PARTS = [
    { permission: "metrics", ids: ["identity", "numbers", "charts"],
      missing: "The server's numbers and charts: they need the metrics permission." },
    { permission: "read", ids: ["keys", "changes"],
      missing: "The key browser and the change stream: they need the read permission." },
    { permission: "write", ids: ["delete-key"], missing: "Deleting a key: it needs the write permission." },
  ];

  function may(permission) {
    return !access || access.permissions.includes(permission);
  }

  async function loadAccess() {
    const response = await api("/dashboard?access=1"); // a 401 throws Refused
    return response.ok ? response.json() : null; // another answer: assume everything, and meet the 403s
  }

  // A permission the server turned out to refuse (a 403): left out from now on.
  function lacks(permission) {
    if (!may(permission)) return;
    const permissions = ["read", "write", "admin", "metrics"].filter((name) => name !== permission && may(name));
    access = Object.assign({ token: null, prefixes: null }, access, { permissions: permissions });
    showAccess();
  }

  function showAccess() {
    const missing = [];
    for (const part of PARTS) {
      for (const id of part.ids) $(id).hidden = !may(part.permission);
      if (!may(part.permission)) missing.push(part.missing);
    }
    const prefixes = access && access.prefixes;
    const panel = $("access-panel");
    panel.hidden = !missing.length && !prefixes;
    if (panel.hidden) return;
    const name = access.token === null ? "This token" : "The token \u201c" + access.token + "\u201d";
    const keys = prefixes ? "keys starting with " + prefixes.join(", ") : "every key";
    const rights = access.permissions.length ? access.permissions.join(", ") : "nothing";
    const scope = name + " may use: " + rights + ", on " + keys + ".";
    $("access-scope").textContent = missing.length ? scope + " Not shown here:" : scope;
    const list = $("access-missing");
    list.replaceChildren();
    for (const text of missing) {
      const item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    }
    if (prefixes && !$("pattern").value) $("pattern").placeholder = prefixes[0];
  }

  // -- the numbers ---------------------------------------------------------------

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + (kind || "");
  }

  function bytes(count) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = count;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? String(value) : value.toFixed(value < 10 ? 2 : 1)) + " " + units[unit];
  }

  function duration(seconds) {
    const whole = Math.floor(seconds);
    const days = Math.floor(whole / 86400);
    const hours = Math.floor((whole % 86400) / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    if (days) return days + " d " + hours + " h";
    if (hours) return hours + " h " + String(minutes).padStart(2, "0") + " min";
    if (minutes) return minutes + " min " + String(whole % 60).padStart(2, "0") + " s";
    return whole + " s";
  }

  function fill(id, fraction) {
    const bar = $(id);
    const clamped = Math.max(0, Math.min(1, fraction || 0));
    bar.style.width = (clamped * 100).toFixed(1) + "%";
    bar.classList.toggle("high", clamped >= 0.9);
  }

  // Rates between two /stats documents, per second of the server's uptime;
  // null before there are two, or when a counter went back (a restart).
  function rates(now, before) {
    if (!before) return null;
    const seconds = now.uptime_seconds - before.uptime_seconds;
    const delta = (name) => (now[name] || 0) - (before[name] || 0);
    const names = ["hits", "misses", "sets", "deletes", "evictions", "expired"];
    if (!(seconds > 0) || names.some((name) => delta(name) < 0)) return null;
    const lookups = delta("hits") + delta("misses");
    return {
      reads: lookups / seconds,
      writes: delta("sets") / seconds,
      deletes: delta("deletes") / seconds,
      evictions: delta("evictions") / seconds,
      expirations: delta("expired") / seconds,
      ratio: lookups ? delta("hits") / lookups : null,
    };
  }

  function render(stats) {
    $("node-id").textContent = stats.node_id;
    $("policy").textContent = stats.policy;
    $("worker").textContent = stats.worker || "in process";
    $("uptime").textContent = duration(stats.uptime_seconds);
    $("items").textContent = number.format(stats.current_size);
    $("max-items").textContent = number.format(stats.max_size);
    fill("items-bar", stats.current_size / stats.max_size);
    $("memory").textContent = bytes(stats.memory_usage_bytes);
    $("max-memory").textContent = bytes(stats.max_memory_bytes);
    fill("memory-bar", stats.memory_usage_bytes / stats.max_memory_bytes);
    const ratio = $("hit-ratio");
    ratio.dataset.value = String(stats.hit_ratio);
    ratio.textContent = stats.hits + stats.misses ? (stats.hit_ratio * 100).toFixed(2) + " %" : "-";
    $("hits").textContent = number.format(stats.hits);
    $("misses").textContent = number.format(stats.misses);
    $("evictions").textContent = number.format(stats.evictions);
    $("expired").textContent = number.format(stats.expired || 0);

    const change = rates(stats, previous);
    const shown = (value) => (change ? rate.format(value) : "-");
    $("rate-reads").textContent = shown(change && change.reads);
    $("rate-writes").textContent = shown(change && change.writes);
    $("rate-deletes").textContent = shown(change && change.deletes);
    $("rate-evictions").textContent = shown(change && change.evictions);
    $("rate-expirations").textContent = shown(change && change.expirations);
    if (change) {
      history.push({ t: stats.uptime_seconds, reads: change.reads, writes: change.writes, deletes: change.deletes,
        ratio: change.ratio, items: stats.current_size, memory: stats.memory_usage_bytes });
      while (history.length && history[0].t < stats.uptime_seconds - HISTORY_SECONDS) history.shift();
    }
    previous = stats;
    drawCharts(stats);
  }

  // -- the charts ------------------------------------------------------------------

  function chart(canvas, series, options) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const top = 14;
    const bottom = height - 4;
    let highest = options.max;
    if (highest === undefined) {
      highest = 0;
      for (const point of history) {
        for (const name of series) {
          if (point[name] !== null && point[name] > highest) highest = point[name];
        }
      }
      highest = highest > 0 ? highest * 1.1 : 1;
    }
    context.strokeStyle = style.getPropertyValue("--line");
    context.lineWidth = 1;
    context.beginPath();
    context.moveTo(0, top + 0.5);
    context.lineTo(width, top + 0.5);
    context.moveTo(0, bottom + 0.5);
    context.lineTo(width, bottom + 0.5);
    context.stroke();
    context.fillStyle = style.getPropertyValue("--muted");
    context.font = "10px system-ui, sans-serif";
    context.fillText(options.label(highest), 2, top - 3);
    if (!history.length) {
      context.fillText("collecting...", width / 2 - 25, (top + bottom) / 2);
      return;
    }
    // The window grows with the history, up to HISTORY_SECONDS.
    const end = history[history.length - 1].t;
    const span = Math.max(end - history[0].t, 1);
    const x = (t) => width - ((end - t) / span) * width;
    const label = span >= 120 ? "last " + Math.round(span / 60) + " min" : "last " + Math.round(span) + " s";
    context.fillText(label, width - context.measureText(label).width - 2, top - 3);
    const y = (value) => bottom - (value / highest) * (bottom - top);
    series.forEach((name, index) => {
      context.strokeStyle = style.getPropertyValue("--s" + index);
      context.lineWidth = 1.5;
      context.beginPath();
      let drawing = false;
      for (const point of history) {
        if (point[name] === null) {
          drawing = false;
          continue;
        }
        if (drawing) context.lineTo(x(point.t), y(point[name]));
        else context.moveTo(x(point.t), y(point[name]));
        drawing = true;
      }
      context.stroke();
    });
  }

  function drawCharts(stats) {
    chart($("chart-requests"), ["reads", "writes", "deletes"], { label: (value) => rate.format(value) + "/s" });
    chart($("chart-hit-ratio"), ["ratio"], { max: 1, label: () => "100 %" });
    chart($("chart-items"), ["items"], { label: (value) => number.format(Math.round(value)) });
    chart($("chart-memory"), ["memory"], { label: (value) => bytes(Math.round(value)) });
  }

  // -- refreshing ---------------------------------------------------------------------

  async function refresh() {
    timer = null;
    try {
      const response = await api("/stats");
      if (response.status === 403) {
        lacks("metrics");
        showSignedIn();
        return;
      }
      if (!response.ok) throw new Error(await errorText(response));
      render(await response.json());
      setStatus("live, every " + REFRESH_MS / 1000 + " s", "live");
    } catch (error) {
      if (refused(error)) return;
      setStatus("cannot reach the server: " + error.message, "error");
    }
    timer = window.setTimeout(refresh, REFRESH_MS);
  }

  async function start() {
    stop();
    $("change-token").hidden = !tokenRequired;
    try {
      access = await loadAccess();
    } catch (error) {
      if (refused(error)) return;
      setStatus("cannot reach the server: " + error.message, "error");
      timer = window.setTimeout(start, REFRESH_MS);
      return;
    }
    showAccess();
    if (may("metrics")) refresh();
    else showSignedIn();
  }

  // The status of a page that does not poll /stats: whose token it is.
  function showSignedIn() {
    setStatus(access && access.token !== null ? "signed in as " + access.token : "signed in", "live");
  }

  function stop() {
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
  }

  // -- the change stream (GET /events, docs/events.md): opened on demand ------------------
  // A streaming fetch, not EventSource: EventSource cannot send the bearer
  // header, and a token never goes in a URL.

  const MAX_CHANGES = 50;
  let following = null; // the AbortController of the open stream

  function showChange(block) {
    let kind = null;
    let data = null;
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) kind = line.slice(7);
      else if (line.startsWith("data: ")) data = JSON.parse(line.slice(6));
    }
    if (!kind || !data) return; // a heartbeat
    const name = "tag" in data ? "tag " + data.tag : data.key === null ? "(everything)" : data.key;
    const item = document.createElement("li");
    item.textContent = kind + " " + name; // text, never markup: a key may hold anything
    const list = $("change-list");
    list.prepend(item);
    while (list.children.length > MAX_CHANGES) list.lastChild.remove();
  }

  function stopFollowing(message) {
    if (following) following.abort();
    following = null;
    $("follow-changes").textContent = "Follow changes";
    $("changes-status").textContent = message;
  }

  async function followChanges() {
    if (following) {
      stopFollowing("stopped");
      return;
    }
    const controller = new AbortController();
    following = controller;
    $("follow-changes").textContent = "Stop";
    try {
      const response = await api("/events", { signal: controller.signal });
      if (response.status === 403) {
        stopFollowing("");
        lacks("read");
        return;
      }
      if (!response.ok) throw new Error(await errorText(response));
      $("changes-status").textContent = "following";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          showChange(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
      if (following === controller) stopFollowing("the server ended the stream");
    } catch (error) {
      if (controller.signal.aborted || following !== controller) return;
      if (refused(error)) {
        stopFollowing("");
        return;
      }
      stopFollowing("stream lost: " + error.message);
    }
  }

  $("follow-changes").addEventListener("click", followChanges);

  // -- the key browser ------------------------------------------------------------------

  const browser = { pattern: "", cursor: null, count: 0, open: null };

  function keyMessage(text, isError) {
    const message = $("key-message");
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  async function loadKeys() {
    const list = $("key-list");
    let found = 0;
    try {
      for (let request = 0; request < REQUESTS_PER_CLICK && found < KEYS_PER_CLICK; request += 1) {
        const query = new URLSearchParams({ limit: String(KEYS_PER_REQUEST) });
        if (browser.pattern) query.set("pattern", browser.pattern);
        if (browser.cursor) query.set("cursor", browser.cursor);
        const response = await api("/admin/keys?" + query.toString());
        if (response.status === 403) {
          lacks("read");
          return;
        }
        if (!response.ok) {
          keyMessage(await errorText(response), true);
          return;
        }
        const page = await response.json();
        for (const key of page.keys) {
          const item = document.createElement("li");
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = key;
          button.dataset.key = key;
          button.addEventListener("click", () => openKey(key, button));
          item.appendChild(button);
          list.appendChild(item);
        }
        found += page.keys.length;
        browser.count += page.keys.length;
        browser.cursor = page.cursor;
        if (!browser.cursor) break;
      }
    } catch (error) {
      if (!refused(error)) keyMessage("cannot reach the server: " + error.message, true);
      return;
    }
    $("more-keys").hidden = !browser.cursor;
    const what = browser.pattern ? " matching " + browser.pattern : "";
    $("key-count").textContent = number.format(browser.count) + (browser.cursor ? "+ keys" : " keys") + what;
    keyMessage(browser.count ? "" : "No keys" + what + ".");
  }

  $("key-search").addEventListener("submit", (event) => {
    event.preventDefault();
    browser.pattern = $("pattern").value;
    browser.cursor = null;
    browser.count = 0;
    $("key-list").replaceChildren();
    $("key-detail").hidden = true;
    loadKeys();
  });

  $("more-keys").addEventListener("click", loadKeys);

  function typeOf(value) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "array (" + value.length + " items)";
    if (typeof value === "object") return "object (" + Object.keys(value).length + " fields)";
    return typeof value;
  }

  const HEX_PREVIEW = 256;  // bytes of a binary value shown, 16 a line

  function hexPreview(raw) {
    const lines = [];
    for (let start = 0; start < Math.min(raw.length, HEX_PREVIEW); start += 16) {
      const row = Array.from(raw.subarray(start, Math.min(start + 16, HEX_PREVIEW)),
                             (byte) => byte.toString(16).padStart(2, "0"));
      lines.push(start.toString(16).padStart(8, "0") + "  " + row.join(" "));
    }
    if (raw.length > HEX_PREVIEW) lines.push("... " + (raw.length - HEX_PREVIEW) + " more bytes");
    return lines.length ? lines.join("\n") : "(empty)";
  }

  async function openKey(key, button) {
    let response;
    try {
      response = await api("/cache/" + encodeURIComponent(key) + "?peek=true");
    } catch (error) {
      if (!refused(error)) keyMessage("cannot reach the server: " + error.message, true);
      return;
    }
    if (response.status === 404) {
      keyMessage(key + " is gone (expired, evicted or deleted).", true);
      button.closest("li").remove();
      return;
    }
    if (!response.ok) {
      keyMessage(await errorText(response), true);
      return;
    }
    const binary = response.headers.get("X-Cache-Type") === "binary";
    const raw = new Uint8Array(await response.arrayBuffer());
    for (const other of document.querySelectorAll("#key-list button[aria-current]")) {
      other.removeAttribute("aria-current");
    }
    button.setAttribute("aria-current", "true");
    browser.open = { key: key, button: button };
    $("detail-key").textContent = key;
    $("detail-size").textContent = bytes(raw.length);
    const ttl = response.headers.get("X-Cache-TTL");
    $("detail-ttl").textContent = ttl === null ? "no expiry" : ttl + " s";
    $("detail-etag").textContent = response.headers.get("ETag") || "-";
    if (binary) {
      // Raw bytes (a pickle, an image): never decoded as text; the first ones in hex.
      $("detail-type").textContent = "binary (application/octet-stream)";
      $("detail-value").textContent = hexPreview(raw);
    } else {
      const text = new TextDecoder().decode(raw);
      try {
        const value = JSON.parse(text);
        $("detail-type").textContent = typeOf(value);
        $("detail-value").textContent = JSON.stringify(value, null, 2);
      } catch (error) {
        $("detail-type").textContent = "not JSON";
        $("detail-value").textContent = text;
      }
    }
    $("key-detail").hidden = false;
    keyMessage("");
  }

  $("delete-key").addEventListener("click", () => {
    if (!browser.open) return;
    $("confirm-key").textContent = browser.open.key;
    $("confirm-delete").showModal();
  });

  $("confirm-delete").addEventListener("close", async () => {
    const dialog = $("confirm-delete");
    const open = browser.open;
    if (dialog.returnValue !== "delete" || !open) return;
    dialog.returnValue = "";
    try {
      const response = await api("/cache/" + encodeURIComponent(open.key), { method: "DELETE" });
      if (response.status === 403) { // the permission, or a prefix: the server says which
        const body = await response.json().catch(() => ({}));
        keyMessage(body.message || "HTTP 403", true);
        if (body.permission === "write") lacks("write");
        return;
      }
      if (!response.ok) {
        keyMessage(await errorText(response), true);
        return;
      }
      const answer = await response.json();
      open.button.closest("li").remove();
      browser.open = null;
      browser.count = Math.max(0, browser.count - 1);
      $("key-detail").hidden = true;
      keyMessage(answer.deleted ? "Deleted " + open.key + "." : open.key + " was already gone.");
    } catch (error) {
      if (!refused(error)) keyMessage("cannot reach the server: " + error.message, true);
    }
  });

  // -- start ----------------------------------------------------------------------------

  if (tokenRequired && !token) {
    askForToken(null);
  } else {
    start();
  }
})();
