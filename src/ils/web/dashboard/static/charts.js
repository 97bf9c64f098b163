/* The queue dashboard's charts: the overview's finished jobs per minute, and the queue
   page's wait and run times (p50 and p95) over the last hour or day. Loaded after
   dashboard.js on the pages that have charts, and built on its helpers
   (window.ILSDashboard: the API call, problems as text, signing in again).

   Why it is written this way:
   - The same rules as dashboard.js: nothing inline (the Content-Security-Policy allows
     this app's files only), and data never becomes markup: SVG elements are made one
     by one and every text goes in with textContent.
   - Charts are drawn at the plot's own pixel size rather than stretched from a
     viewBox, so axis text keeps its size and shape on a phone and on a wide screen;
     they are drawn again when the window is resized.
   - Axis values on both axes: time on x, in the viewer's own zone (the API gives UTC
     bucket starts; the browser knows the zone), with ticks on whole local minutes or
     hours; counts or durations on y, on round steps (250 ms, 1 s, 5 min...).
   - Hover detail: moving over a chart (or touching it, or the arrow keys on a chart
     that has focus) picks the nearest bucket that has data and shows its time span
     and every value in it, so a single busy minute among empty ones is easy to hit.
   - A chart draws what one request answered; the queue page asks again every 30 s
     (resting while the tab is hidden) and the newest answer wins. */
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MARGIN = { top: 10, right: 12, bottom: 22, left: 50 };
  const MINUTE = 60000;
  // Tick spacings of the time axis, and of a duration axis: round numbers a person reads.
  const TIME_STEPS = [5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440].map((m) => m * MINUTE);
  const DURATION_STEPS = [
    1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 15000, 30000,
    60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000, 14400000, 43200000, 86400000,
  ];
  const LATENCY_REFRESH_MS = 30000;
  const RESIZE_PAUSE_MS = 150;
  const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const DAY_CLOCK = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  // Every drawn plot and what it shows, to draw it again at a new width.
  const drawn = new Map();

  function svg(name, attributes) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
    return el;
  }

  // -- numbers and times ----------------------------------------------------------------

  function oneDecimal(n) {
    return n >= 10 ? String(Math.round(n)) : String(Math.round(n * 10) / 10);
  }

  // 850 ms, 1.5 s, 12 s, 2.5 min, 3 h: a duration at a glance.
  function duration(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < MINUTE) return `${oneDecimal(ms / 1000)} s`;
    if (ms < 60 * MINUTE) return `${oneDecimal(ms / MINUTE)} min`;
    return `${oneDecimal(ms / (60 * MINUTE))} h`;
  }

  function count(n) {
    return String(Math.round(n));
  }

  // 1, 2 or 5 times a power of ten, at least `raw` (and at least 1: no half jobs).
  function countStep(raw) {
    const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
    return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) || 10 * power;
  }

  function durationStep(raw) {
    return DURATION_STEPS.find((step) => step >= raw) || countStep(raw);
  }

  // The bucket's span in the viewer's zone: "14:05–14:06", or "Tue 14:00–14:15".
  function bucketSpan(startMs, bucketMs) {
    const first = (bucketMs >= 15 * MINUTE ? DAY_CLOCK : CLOCK).format(new Date(startMs));
    return `${first}–${CLOCK.format(new Date(startMs + bucketMs))}`;
  }

  // The first tick at or after `ms` on a whole `step` of the viewer's local clock.
  function firstTick(ms, step) {
    const offset = -new Date(ms).getTimezoneOffset() * MINUTE;
    return Math.ceil((ms + offset) / step) * step - offset;
  }

  // -- drawing --------------------------------------------------------------------------

  /* Draw `spec` into `plot` (an element; its width is the chart's):
       times:    bucket starts (epoch ms), oldest first
       bucketMs: the buckets' width
       kind:     "bars" (series stacked) or "lines" (series side by side, gaps at null)
       series:   [{ label, className, values }]
       format:   a y value as text (count or duration)
       extra:    optional; index -> more lines for the hover detail
       label:    what the chart says, for screen readers */
  function draw(plot, spec) {
    drawn.set(plot, spec);
    plot.classList.add("drawn");
    const width = Math.max(Math.floor(plot.clientWidth), 200);
    const height = Number(plot.dataset.height) || 130;
    const m = MARGIN;
    const innerW = width - m.left - m.right;
    const innerH = height - m.top - m.bottom;
    const n = spec.times.length;
    const slot = innerW / Math.max(n, 1);
    const bars = spec.kind === "bars";
    const valueAt = (series, i) => series.values[i];
    const has = (i) => spec.series.some((s) => valueAt(s, i) !== null && valueAt(s, i) !== undefined);
    const tops = spec.times.map((_, i) =>
      bars
        ? spec.series.reduce((sum, s) => sum + (valueAt(s, i) || 0), 0)
        : Math.max(0, ...spec.series.map((s) => valueAt(s, i) || 0)),
    );
    const top = Math.max(0, ...tops);
    const step = (bars ? countStep : durationStep)(Math.max(top, bars ? 1 : 10) / 3);
    const yMax = Math.max(step, Math.ceil(top / step) * step);
    const y = (v) => m.top + innerH - (v / yMax) * innerH;
    const x = (i) => m.left + (i + 0.5) * slot;

    const chart = svg("svg", {
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      class: `ils-chart kind-${spec.kind}`,
      role: "img",
      tabindex: 0,
      "aria-label": spec.label,
    });

    // The y axis: round values and grid lines across the plot.
    const yAxis = svg("g", { class: "axis-y" });
    for (let v = 0; v <= yMax + step / 1000; v += step) {
      yAxis.appendChild(svg("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: v ? "grid" : "base" }));
      const label = svg("text", { x: m.left - 6, y: y(v), "text-anchor": "end", dy: "0.32em" });
      label.textContent = spec.format(v);
      yAxis.appendChild(label);
    }
    chart.appendChild(yAxis);

    // The x axis: local clock times, at most one per 60 pixels.
    const xAxis = svg("g", { class: "axis-x" });
    if (n) {
      const start = spec.times[0];
      const total = n * spec.bucketMs;
      const most = Math.max(2, Math.floor(innerW / 60));
      const tick = TIME_STEPS.find((s) => total / s <= most) || TIME_STEPS[TIME_STEPS.length - 1];
      for (let t = firstTick(start, tick); t <= start + total; t += tick) {
        const at = m.left + ((t - start) / total) * innerW;
        xAxis.appendChild(svg("line", { x1: at, x2: at, y1: m.top + innerH, y2: m.top + innerH + 4, class: "tick" }));
        const anchor = at < m.left + 16 ? "start" : at > width - m.right - 16 ? "end" : "middle";
        const label = svg("text", { x: at, y: height - 6, "text-anchor": anchor });
        label.textContent = CLOCK.format(new Date(t));
        xAxis.appendChild(label);
      }
    }
    chart.appendChild(xAxis);

    // The data.
    const data = svg("g", { class: "data" });
    if (bars) {
      const gap = slot > 4 ? 1 : 0;
      spec.times.forEach((_, i) => {
        let base = 0;
        for (const series of spec.series) {
          const value = valueAt(series, i) || 0;
          if (!value) continue;
          const h = Math.max(y(base) - y(base + value), 1.5);
          data.appendChild(
            svg("rect", { x: m.left + i * slot + gap, y: y(base) - h, width: Math.max(slot - 2 * gap, 1), height: h, class: series.className }),
          );
          base += value;
        }
      });
    } else {
      for (const series of spec.series) {
        let path = "";
        let drawing = false;
        spec.times.forEach((_, i) => {
          const value = valueAt(series, i);
          if (value === null || value === undefined) {
            drawing = false;
            return;
          }
          path += `${drawing ? "L" : "M"}${x(i).toFixed(1)},${y(value).toFixed(1)}`;
          drawing = true;
          data.appendChild(svg("circle", { cx: x(i), cy: y(value), r: 2.5, class: `dot ${series.className}`, "data-index": i }));
        });
        if (path) data.insertBefore(svg("path", { d: path, class: `line ${series.className}` }), data.firstChild);
      }
    }
    chart.appendChild(data);

    // Hover detail: a guide at the picked bucket, its values marked, and a text box.
    const guide = svg("line", { y1: m.top, y2: m.top + innerH, class: "guide", visibility: "hidden" });
    const marks = svg("g", { class: "marks" });
    chart.append(guide, marks);
    chart.appendChild(svg("rect", { x: m.left, y: m.top, width: innerW, height: innerH, class: "hit" }));
    const tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.dataset.chartTip = "";
    tip.setAttribute("role", "status");
    tip.hidden = true;

    // The bucket under the pointer, or the nearest one that has data.
    const nearest = (i) => {
      const at = Math.min(Math.max(i, 0), n - 1);
      if (bars) return at;
      for (let d = 0; d < n; d += 1) {
        if (at - d >= 0 && has(at - d)) return at - d;
        if (at + d < n && has(at + d)) return at + d;
      }
      return -1;
    };
    let picked = -1;
    const show = (i) => {
      picked = i;
      marks.replaceChildren();
      if (i < 0) {
        guide.setAttribute("visibility", "hidden");
        tip.hidden = true;
        return;
      }
      guide.setAttribute("x1", x(i));
      guide.setAttribute("x2", x(i));
      guide.setAttribute("visibility", "visible");
      const lines = [{ text: bucketSpan(spec.times[i], spec.bucketMs), className: "when" }];
      let base = 0;
      for (const series of spec.series) {
        const value = valueAt(series, i);
        const known = value !== null && value !== undefined;
        lines.push({ text: `${series.label}: ${known ? spec.format(value) : "—"}`, key: series.className });
        if (!known) continue;
        const level = bars ? base + value : value;
        base += bars ? value : 0;
        if (!bars || value) marks.appendChild(svg("circle", { cx: x(i), cy: y(level), r: 4, class: `mark ${series.className}` }));
      }
      for (const text of spec.extra ? spec.extra(i) : []) lines.push({ text, className: "extra" });
      tip.replaceChildren(
        ...lines.map((line) => {
          const row = document.createElement("div");
          if (line.className) row.className = line.className;
          if (line.key) {
            const key = document.createElement("span");
            key.className = `key ${line.key}`;
            row.appendChild(key);
          }
          row.appendChild(document.createTextNode(line.text));
          return row;
        }),
      );
      tip.hidden = false;
      // Beside the guide, on whichever side has room (CSSOM, which the CSP allows).
      const room = plot.clientWidth - x(i) - 12;
      tip.style.left = room >= tip.offsetWidth ? `${x(i) + 10}px` : `${Math.max(x(i) - tip.offsetWidth - 10, 0)}px`;
      tip.style.top = `${m.top}px`;
    };
    const fromPointer = (event) => {
      const box = chart.getBoundingClientRect();
      show(nearest(Math.floor((event.clientX - box.left - m.left) / slot)));
    };
    chart.addEventListener("pointermove", fromPointer);
    chart.addEventListener("pointerdown", fromPointer);
    chart.addEventListener("pointerleave", () => {
      if (document.activeElement !== chart) show(-1);
    });
    chart.addEventListener("focus", () => show(nearest(n - 1)));
    chart.addEventListener("blur", () => show(-1));
    chart.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -n, End: n };
      if (!(event.key in moves) || picked < 0) return;
      event.preventDefault();
      let at = picked + moves[event.key];
      // Step over buckets without data, towards the key's direction.
      while (!bars && at > 0 && at < n - 1 && !has(at)) at += Math.sign(moves[event.key]);
      show(nearest(at));
    });
    plot.replaceChildren(chart, tip);
  }

  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const [plot, spec] of drawn) {
        if (plot.isConnected) draw(plot, spec);
        else drawn.delete(plot);
      }
    }, RESIZE_PAUSE_MS);
  });

  // -- the overview: finished jobs per minute -------------------------------------------

  // The body of GET /api/queue/{queue}/throughput into the figure dashboard.js polls
  // (data-completed and data-failed say the totals drawn, for the refresh logic).
  function throughput(figure, body) {
    const points = Array.isArray(body.points) ? body.points : [];
    const completed = points.reduce((sum, p) => sum + p.completed, 0);
    const failed = points.reduce((sum, p) => sum + p.failed, 0);
    const summary = `${completed} completed, ${failed} failed`;
    draw(figure.querySelector("[data-plot]"), {
      kind: "bars",
      times: points.map((p) => Date.parse(p.at)),
      bucketMs: (body.bucket_s || 60) * 1000,
      series: [
        { label: "completed", className: "completed", values: points.map((p) => p.completed) },
        { label: "failed", className: "failed", values: points.map((p) => p.failed) },
      ],
      format: count,
      label: `Finished jobs per minute: ${summary} in the last ${points.length} minutes`,
    });
    figure.dataset.completed = String(completed);
    figure.dataset.failed = String(failed);
    const caption = figure.querySelector("[data-chart-summary]");
    if (caption) caption.textContent = summary;
  }

  // -- the queue page: wait and run times ---------------------------------------------------

  const MEASURES = {
    wait: "wait (due to start)",
    run: "run (start to finish)",
  };

  function drawLatency(section, body) {
    const points = Array.isArray(body.points) ? body.points : [];
    const span = body.window === "day" ? "the last day" : "the last hour";
    for (const [measure, title] of Object.entries(MEASURES)) {
      const figure = section.querySelector(`[data-latency-chart="${measure}"]`);
      if (!figure) continue;
      const p50 = points.map((p) => p[`${measure}_p50_ms`]);
      const p95 = points.map((p) => p[`${measure}_p95_ms`]);
      const known = p95.filter((v) => v !== null);
      const summary = known.length ? `p95 up to ${duration(Math.max(...known))}` : "no finished jobs";
      draw(figure.querySelector("[data-plot]"), {
        kind: "lines",
        times: points.map((p) => Date.parse(p.at)),
        bucketMs: (body.bucket_s || 60) * 1000,
        series: [
          { label: "p50", className: "p50", values: p50 },
          { label: "p95", className: "p95", values: p95 },
        ],
        format: duration,
        extra: (i) => [`${points[i].jobs} job${points[i].jobs === 1 ? "" : "s"} finished`],
        label: `${title}, p50 and p95 over ${span}: ${summary}`,
      });
      figure.querySelector("[data-chart-summary]").textContent = summary;
    }
    const note = section.querySelector("[data-latency-note]");
    const missing = Array.isArray(body.unavailable) ? body.unavailable : [];
    note.textContent = missing.length ? `Not counted: the ${missing.join(" and ")} store did not answer.` : "";
    note.hidden = !missing.length;
  }

  function startLatency(section) {
    const ILS = window.ILSDashboard;
    if (!ILS) return;
    const buttons = [...section.querySelectorAll("button[data-window]")];
    let shown = section.dataset.window || "hour";
    let asked = 0;
    let timer = 0;
    const trouble = (text) => {
      for (const caption of section.querySelectorAll("[data-chart-summary]")) caption.textContent = `unavailable (${text})`;
    };
    async function load() {
      clearTimeout(timer);
      if (!document.hidden) {
        asked += 1;
        const mine = asked;
        const windowAsked = shown;
        try {
          const result = await ILS.api("GET", `${section.dataset.latencyUrl}?window=${encodeURIComponent(windowAsked)}`);
          if (mine !== asked) return; // a newer request (another window) is on its way
          if (result.status === 401) {
            ILS.signInAgain();
            return;
          }
          if (result.ok) {
            section.dataset.shownWindow = windowAsked;
            drawLatency(section, result.data);
          } else trouble(ILS.problem(result));
        } catch {
          if (mine === asked) trouble("no answer");
        }
      }
      timer = setTimeout(load, LATENCY_REFRESH_MS);
    }
    for (const button of buttons) {
      button.addEventListener("click", () => {
        shown = button.dataset.window;
        for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
        load();
      });
    }
    load();
  }

  window.ILSCharts = Object.freeze({ draw, throughput, duration });
  for (const section of document.querySelectorAll("[data-latency-url]")) startLatency(section);
  // dashboard.js may have a chart's data before this script ran.
  document.dispatchEvent(new Event("ils-charts-ready"));
})();
