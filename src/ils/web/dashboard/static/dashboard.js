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
     and they rest while the tab is hidden. */
"use strict";

(() => {
  const FLASH_KEY = "ils-dashboard-flash";
  const SVG_NS = "http://www.w3.org/2000/svg";
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
      const value = lookup(data, el.dataset.field);
      if (value === undefined) continue;
      const format = FORMATS[el.dataset.format || "text"] || FORMATS.text;
      const text = value === null ? "—" : format(value);
      if (el.textContent !== text) {
        el.textContent = text;
        // Restart the highlight so a figure that moves again is noticed again.
        el.classList.remove("changed");
        void el.offsetWidth;
        el.classList.add("changed");
      }
      const toneKind = el.dataset.toneKind;
      if (toneKind && TONES[toneKind]) el.dataset.tone = value === null ? "" : TONES[toneKind](value);
    }
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

  // -- charts ---------------------------------------------------------------------------

  function svg(name, attributes) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
    return el;
  }

  function clock(iso) {
    const at = new Date(iso);
    return Number.isNaN(at.getTime())
      ? "?"
      : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function drawChart(figure, body) {
    const points = Array.isArray(body.points) ? body.points : [];
    const slot = 10;
    const width = Math.max(points.length, 1) * slot;
    const height = 100;
    const busiest = Math.max(0, ...points.map((p) => p.completed + p.failed));
    const peak = Math.max(1, busiest);
    let completed = 0;
    let failed = 0;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: "none",
      role: "img",
      class: "bars",
    });
    chart.appendChild(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: "axis" }));
    points.forEach((point, index) => {
      completed += point.completed;
      failed += point.failed;
      if (!point.completed && !point.failed) return;
      const group = svg("g", {});
      const title = document.createElementNS(SVG_NS, "title");
      title.textContent = `${clock(point.at)}: ${point.completed} completed, ${point.failed} failed`;
      group.appendChild(title);
      const scale = (n) => (n ? Math.max((n / peak) * (height - 4), 2) : 0);
      const done = scale(point.completed);
      const lost = scale(point.failed);
      const x = index * slot + 1;
      if (done) group.appendChild(svg("rect", { x, y: height - done, width: slot - 2, height: done, class: "completed" }));
      if (lost) group.appendChild(svg("rect", { x, y: height - done - lost, width: slot - 2, height: lost, class: "failed" }));
      chart.appendChild(group);
    });
    const summary = `${completed} completed, ${failed} failed`;
    chart.setAttribute("aria-label", `${summary} in the last ${points.length} minutes`);
    const axis = document.createElement("div");
    axis.className = "axis-labels";
    for (const text of [points.length ? clock(points[0].at) : "", `peak ${busiest}/min`, "now"]) {
      const span = document.createElement("span");
      span.textContent = text;
      axis.appendChild(span);
    }
    figure.querySelector("[data-plot]").replaceChildren(chart, axis);
    figure.dataset.completed = String(completed);
    figure.dataset.failed = String(failed);
    const caption = figure.querySelector("[data-chart-summary]");
    if (caption) caption.textContent = summary;
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
    const target = next.startsWith("/admin/") && !next.startsWith("//") ? next : HOME;
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

  // -- the schedules page's form ----------------------------------------------------------

  // The body of POST /api/schedules from the form. Only what was filled in is sent, and
  // nothing is checked here: the API's 422 names each problem, and the page shows it.
  function scheduleBody(form) {
    const fields = form.elements;
    const option = fields.job.selectedOptions[0];
    const job = option ? JSON.parse(option.dataset.job) : null;
    if (job && option.hasAttribute("data-metric")) job.data.metricType = fields.metric.value;
    const body = { name: fields.name.value.trim(), catch_up: fields.catch_up.value, jobs: job ? [job] : [] };
    const cron = fields.cron.value.trim();
    if (cron) body.cron = cron;
    const minutes = fields.every_min.value.trim();
    if (minutes) body.every_s = Math.round(Number(minutes) * 60);
    const zone = fields.time_zone.value.trim();
    if (zone) body.time_zone = zone;
    if (fields.company_wide && fields.company_wide.checked) body.company_wide = true;
    return body;
  }

  // The API's field names that are a form field (every_s is typed in minutes).
  const SCHEDULE_FIELDS = { name: "name", cron: "cron", every_s: "every_min", time_zone: "time_zone", catch_up: "catch_up" };

  function showScheduleErrors(form, result) {
    const list = form.querySelector("[data-form-errors]");
    const detail = result.data && result.data.detail;
    const problems = Array.isArray(detail) ? detail : [{ field: "", message: problem(result) }];
    list.replaceChildren(
      ...problems.map((p) => {
        const field = p.field || "";
        const item = document.createElement("li");
        item.textContent = field ? `${field}: ${p.message}` : p.message;
        const input = form.elements[SCHEDULE_FIELDS[field] || (field.startsWith("jobs") ? "job" : "")];
        if (input) input.setAttribute("aria-invalid", "true");
        return item;
      }),
    );
    list.hidden = false;
  }

  function startScheduleForm(form) {
    const metric = form.querySelector("[data-metric-field]");
    const button = form.querySelector('button[type="submit"]');
    const showMetric = () => {
      const option = form.elements.job.selectedOptions[0];
      metric.hidden = !(option && option.hasAttribute("data-metric"));
    };
    form.elements.job.addEventListener("change", showMetric);
    showMetric();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const list = form.querySelector("[data-form-errors]");
      list.hidden = true;
      for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
      const body = scheduleBody(form);
      button.disabled = true;
      try {
        const result = await api("POST", form.dataset.url, body);
        if (result.status === 401) {
          signInAgain();
          return;
        }
        if (result.ok) {
          flashAfterReload(`Schedule “${result.data.name}” created.`, "ok");
          location.reload();
          return;
        }
        showScheduleErrors(form, result);
      } catch {
        showScheduleErrors(form, { status: 0, data: { detail: "no answer from the server" } });
      }
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
  const scheduleForm = document.getElementById("schedule-form");
  if (scheduleForm) startScheduleForm(scheduleForm);
  startOverview();
})();
