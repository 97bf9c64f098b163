/* The ILS queue dashboard's one script, served from /admin/static by the app itself.

   Why it is written this way:
   - The pages' Content-Security-Policy allows this file and nothing inline, so every
     page wires itself up from data- attributes the server rendered.
   - Data never becomes markup: text goes in with textContent, charts are SVG elements
     made one by one. A failure reason holding "<script>" stays text.
   - Every request that changes something carries the session's CSRF token
     (X-CSRF-Token), and every job action, and running or deleting a schedule, asks
     for confirmation first (pausing a schedule is undone by one click: it does not).
   - Polls chain with setTimeout, so a slow server never gets overlapping requests,
     and they rest while the tab is hidden.
   - Times come as <time datetime> in UTC; this script says them as "3 min ago" with
     the absolute time, in the viewer's own zone, in the title (the server cannot know
     the viewer's zone).
   - The forms of the queue and schedules pages are forms.js, loaded on those pages
     only; it uses the helpers exported here as window.ILSDashboard. */
"use strict";

(() => {
  const FLASH_KEY = "ils-dashboard-flash";
  const HOME = "/admin/queues";
  // A chart refetches at most this often when its queue's finished counts move, and
  // at least this often anyway (the hour window slides).
  const CHART_MIN_GAP_MS = 3000;
  const CHART_MAX_AGE_MS = 60000;

  // -- talking to the API -------------------------------------------------------------

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) return meta.content;
    // Pages rendered without a session (error pages) still let a signed-in user out.
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("ils_csrf="));
    return cookie ? decodeURIComponent(cookie.slice("ils_csrf=".length)) : "";
  }

  function signInAgain() {
    const here = location.pathname + location.search;
    location.assign("/admin/sign-in?next=" + encodeURIComponent(here));
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    return { ok: response.ok, status: response.status, data };
  }

  function problem(result) {
    const detail = result.data && result.data.detail;
    if (Array.isArray(detail)) return detail.map((d) => `${d.field}: ${d.message}`).join("; ");
    if (typeof detail === "string") return detail;
    return `the server answered ${result.status}`;
  }

  // -- messages -------------------------------------------------------------------------

  function flash(text, tone) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.dataset.tone = tone || "ok";
    box.hidden = false;
  }

  // An action that reloads the page tells its outcome on the reloaded page.
  function flashAfterReload(text, tone) {
    try {
      sessionStorage.setItem(FLASH_KEY, JSON.stringify({ text, tone }));
    } catch {
      // Storage refused (private mode): the message is lost, the action is not.
    }
  }

  function showStoredFlash() {
    let stored = null;
    try {
      stored = sessionStorage.getItem(FLASH_KEY);
      sessionStorage.removeItem(FLASH_KEY);
    } catch {
      return;
    }
    if (!stored) return;
    try {
      const { text, tone } = JSON.parse(stored);
      if (typeof text === "string") flash(text, tone);
    } catch {
      // Not ours: ignore.
    }
  }

  // -- live figures ---------------------------------------------------------------------

  function age(seconds) {
    const whole = Math.floor(seconds);
    if (whole < 60) return `${whole} s`;
    if (whole < 3600) return `${Math.floor(whole / 60)} min`;
    return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
  }

  // The same formats as the server's `shown` filter (pages.py), so a figure keeps its
  // look when the first refresh replaces it.
  const FORMATS = {
    text: (v) => String(v),
    int: (v) => String(v),
    status: (v) => String(v),
    yesno: (v) => (v ? "yes" : "no"),
    ms: (v) => `${Number(v).toFixed(2)} ms`,
    age: (v) => age(Number(v)),
    bytes: (v) => (Number(v) === 0 ? "no limit" : `${(Number(v) / 1048576).toFixed(1)} MiB`),
    count: (v) => {
      if (Array.isArray(v)) return String(v.length);
      if (v && typeof v === "object") return String(Object.keys(v).length);
      return String(v);
    },
  };
  const TONES = {
    status: (v) => ({ ok: "ok", degraded: "warn" })[v] || "bad",
    yesno: (v) => (v ? "ok" : "bad"),
  };

  function lookup(data, path) {
    return path
      .split(".")
      .reduce((value, key) => (value !== null && typeof value === "object" ? value[key] : undefined), data);
  }

  function fill(root, data) {
    for (const el of root.querySelectorAll("[data-field]")) {
      let value = lookup(data, el.dataset.field);
      if (value === undefined) {
        // A figure its object no longer carries (a dead Redis's memory) is shown as
        // unknown, not left at its last value; a field of an absent object is left.
        const parent = el.dataset.field.split(".").slice(0, -1).join(".");
        if (!parent || lookup(data, parent) === undefined) continue;
        value = null;
      }
      const format = FORMATS[el.dataset.format || "text"] || FORMATS.text;
      const text = value === null ? "—" : format(value);
      if (el.textContent !== text) {
        el.textContent = text;
        // Restart the highlight so a figure that moves again is noticed again.
        el.classList.remove("changed");
        void el.offsetWidth;
        el.classList.add("changed");
      }
      // A zero count is not news: it loses its state's colour (see .zero in the CSS).
      if (el.dataset.format === "int") el.classList.toggle("zero", value === 0);
      const toneKind = el.dataset.toneKind;
      if (toneKind && TONES[toneKind]) el.dataset.tone = value === null ? "" : TONES[toneKind](value);
    }
  }

  // The health report's problems, rebuilt from its body as text (never as markup): a
  // queue that loses its last worker shows here within one refresh.
  function showProblems(list, problems) {
    const items = problems.map((p) => {
      const item = document.createElement("li");
      item.className = `problem ${p.severity === "critical" ? "critical" : "warning"}`;
      item.dataset.code = p.code;
      const severity = document.createElement("strong");
      severity.textContent = p.severity;
      item.append(severity, ` ${p.message}`);
      // Internals (hosts, paths) come only in a platform admin's report.
      if (p.detail) {
        const detail = document.createElement("span");
        detail.className = "detail";
        detail.textContent = p.detail;
        item.append(" ", detail);
      }
      return item;
    });
    list.replaceChildren(...items);
    list.hidden = items.length === 0;
  }

  function poll(url, everyMs, onData, onTrouble) {
    async function tick() {
      if (!document.hidden) {
        try {
          const result = await api("GET", url);
          if (result.status === 401) {
            signInAgain();
            return;
          }
          if (result.ok) onData(result.data);
          else onTrouble(problem(result));
        } catch {
          onTrouble("no answer from the server");
        }
      }
      setTimeout(tick, everyMs);
    }
    setTimeout(tick, everyMs);
  }

  // -- times ----------------------------------------------------------------------------

  const LOCAL_TIME = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
  });

  // "3 min ago", "in 2 h", "5 days ago": near enough to act on, from this browser's clock.
  function relative(at) {
    const seconds = Math.round((Date.now() - at.getTime()) / 1000);
    const span = Math.abs(seconds);
    if (span < 45) return seconds >= 0 ? "just now" : "in a moment";
    let text;
    if (span < 5400) text = `${Math.max(1, Math.round(span / 60))} min`;
    else if (span < 129600) text = `${Math.round(span / 3600)} h`;
    else {
      const days = Math.round(span / 86400);
      text = `${days} day${days === 1 ? "" : "s"}`;
    }
    return seconds >= 0 ? `${text} ago` : `in ${text}`;
  }

  // Every <time data-relative> under root: relative text, and a title with the time in
  // the viewer's zone beside the server's UTC text (for comparing notes by phone).
  function localiseTimes(root) {
    for (const el of root.querySelectorAll("time[data-relative]")) {
      const at = new Date(el.dateTime);
      if (Number.isNaN(at.getTime())) continue;
      if (!el.dataset.utc) el.dataset.utc = el.title || el.textContent;
      el.title = `${LOCAL_TIME.format(at)} (${el.dataset.utc})`;
      el.textContent = relative(at);
    }
  }

  // -- charts ---------------------------------------------------------------------------

  // Drawn by charts.js (axis values, hover detail), loaded after this script on the
  // pages with charts; an answer that comes before it ran waits for it.
  function drawChart(figure, body) {
    const draw = () => window.ILSCharts.throughput(figure, body);
    if (window.ILSCharts) draw();
    else document.addEventListener("ils-charts-ready", draw, { once: true });
  }

  async function loadChart(chart) {
    chart.loadedAt = Date.now();
    chart.stale = false;
    try {
      const result = await api("GET", chart.figure.dataset.chartUrl);
      if (result.ok) drawChart(chart.figure, result.data);
      else if (result.status === 401) signInAgain();
      else chart.figure.querySelector("[data-chart-summary]").textContent = `unavailable (${problem(result)})`;
    } catch {
      chart.figure.querySelector("[data-chart-summary]").textContent = "unavailable (no answer)";
    }
  }

  // -- the overview ---------------------------------------------------------------------

  function startOverview() {
    const live = document.querySelector("[data-live]");
    if (!live) return;
    const updated = live.querySelector("[data-updated]");
    // Finished jobs per queue as the page was rendered: the first refresh that finds
    // more redraws that queue's chart.
    const shownCount = (queue, state) => {
      const cell = document.querySelector(`[data-field="${queue}.${state}"]`);
      return cell ? Number(cell.textContent) || 0 : 0;
    };
    const charts = [...document.querySelectorAll("[data-chart-url]")].map((figure) => {
      const queue = figure.closest("[data-queue]").dataset.queue;
      return {
        figure,
        queue,
        finished: shownCount(queue, "completed") + shownCount(queue, "failed"),
        loadedAt: 0,
        stale: false,
      };
    });
    const trouble = (text) => {
      live.dataset.tone = "bad";
      updated.textContent = `not updated: ${text}`;
    };

    poll(
      live.dataset.statsUrl,
      Number(live.dataset.statsMs) || 2000,
      (stats) => {
        for (const root of document.querySelectorAll('[data-source="stats"]')) fill(root, stats);
        live.dataset.tone = "ok";
        updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
        const now = Date.now();
        for (const chart of charts) {
          const counts = stats[chart.queue] || {};
          const finished = (counts.completed || 0) + (counts.failed || 0);
          if (finished !== chart.finished) chart.stale = true;
          chart.finished = finished;
          const due = chart.stale ? CHART_MIN_GAP_MS : CHART_MAX_AGE_MS;
          if (now - chart.loadedAt >= due) loadChart(chart);
        }
      },
      trouble,
    );
    poll(
      live.dataset.healthUrl,
      Number(live.dataset.healthMs) || 5000,
      (health) => {
        for (const root of document.querySelectorAll('[data-source="health"]')) fill(root, health);
        for (const list of document.querySelectorAll("[data-problems]")) showProblems(list, health.problems || []);
        for (const card of document.querySelectorAll("article[data-queue]")) {
          const facts = (health.queues || {})[card.dataset.queue];
          const badge = card.querySelector("[data-paused-badge]");
          if (facts && badge) badge.hidden = !facts.paused;
        }
      },
      trouble,
    );
    for (const chart of charts) loadChart(chart);
  }

  // -- actions --------------------------------------------------------------------------

  function selectedJobs() {
    return [...document.querySelectorAll('input[name="job"]:checked')].map((box) => box.value);
  }

  function describe(done, data) {
    if (!done) return "";
    if (data && Array.isArray(data.done)) {
      const skipped = Object.entries(data.skipped || {});
      let text = `${done}: ${data.done.length} job(s).`;
      if (skipped.length) {
        text += ` Skipped ${skipped.length}: ${skipped.map(([id, why]) => `${id} (${why})`).join(", ")}.`;
      }
      return text;
    }
    if (data && typeof data.count === "number") return `${done}: ${data.count} job(s).`;
    return `${done}.`;
  }

  async function runAction(button) {
    let body;
    const bulk = button.dataset.bulk;
    if (bulk) {
      const ids = selectedJobs();
      if (!ids.length) {
        flash("Select one or more jobs first.", "warn");
        return;
      }
      body = { action: bulk, job_ids: ids };
    }
    let question = button.dataset.confirm;
    if (question && body) question = `${question} (${body.job_ids.length} selected)`;
    if (question && !window.confirm(question)) return;
    button.disabled = true;
    try {
      const result = await api(button.dataset.method || "POST", button.dataset.url, body);
      if (result.status === 401) {
        signInAgain();
        return;
      }
      if (!result.ok) {
        flash(`Not done: ${problem(result)}.`, "bad");
        return;
      }
      const message = describe(button.dataset.done, result.data);
      const then = button.dataset.then || "";
      if (then === "reload" || then.startsWith("/")) {
        if (message) flashAfterReload(message, "ok");
        if (then === "reload") location.reload();
        else location.assign(then);
      } else if (message) {
        flash(message, "ok");
      }
    } catch {
      flash("Not done: no answer from the server.", "bad");
    } finally {
      button.disabled = false;
    }
  }

  // -- sign-in --------------------------------------------------------------------------

  function startSignIn(form) {
    const error = form.querySelector("[data-sign-in-error]");
    const button = form.querySelector('button[type="submit"]');
    const next = form.dataset.next || "";
    // The server's safe_next (pages.py) already checked it; the e-mails' pages too (issue 22).
    const allowed = next === "/" || ["/admin/", "/orders/", "/purchase-orders/", "/marketplace/"]
      .some((prefix) => next.startsWith(prefix));
    const target = allowed && !next.startsWith("//") && !next.includes("\\") ? next : HOME;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const email = form.elements.email.value.trim();
      const password = form.elements.password.value;
      if (!email || !password) {
        error.textContent = "Enter your e-mail and password.";
        error.hidden = false;
        return;
      }
      button.disabled = true;
      try {
        const result = await api("POST", "/api/auth/sign-in", { email, password });
        if (result.ok) {
          location.assign(target);
          return;
        }
        error.textContent =
          result.status === 401 ? "Wrong e-mail or password." : `Sign-in failed: ${problem(result)}.`;
      } catch {
        error.textContent = "Sign-in failed: no answer from the server.";
      }
      error.hidden = false;
      button.disabled = false;
    });
  }

  // -- start ----------------------------------------------------------------------------

  showStoredFlash();
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    event.preventDefault();
    runAction(button);
  });
  document.addEventListener("change", (event) => {
    if (!event.target.matches("[data-select-all]")) return;
    for (const box of document.querySelectorAll('input[name="job"]')) box.checked = event.target.checked;
  });
  const signIn = document.getElementById("sign-in");
  if (signIn) startSignIn(signIn);
  localiseTimes(document);
  setInterval(() => localiseTimes(document), 30000);
  window.ILSDashboard = Object.freeze({ api, problem, flash, flashAfterReload, signInAgain, localiseTimes });
  startOverview();
})();
