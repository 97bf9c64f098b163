/* The forms of the queue dashboard's queue and schedules pages: cleaning old jobs, and
   making a schedule with a preview of its next runs. Loaded after dashboard.js on
   those pages only, and built on its helpers (window.ILSDashboard: the API call with
   the CSRF token, messages, the <time> localiser).

   Why it is written this way:
   - Nothing is decided here that the API decides: the form sends what was typed and
     shows the API's 422 next to the field it names, so the rules live in one place
     (ils.web.services.schedules) and read the same in the API and the page.
   - The preview asks POST /api/schedules/preview while the admin types (debounced,
     newest answer wins), so the next five runs are seen before anything is saved.
   - Data never becomes markup: every text goes in with textContent. */
"use strict";

(() => {
  const ILS = window.ILSDashboard;
  if (!ILS) return;

  // -- the queue page's clean form -------------------------------------------------------

  const MAX_CLEAN_AGE_S = 365 * 86400;

  // POST /api/queue/{queue}/clean after a confirmation that says what goes: the state,
  // the queue, whose jobs and from what age. The API audits it.
  function startCleanForm(form) {
    const error = form.querySelector("[data-clean-error]");
    const button = form.querySelector('button[type="submit"]');
    const fail = (text) => {
      error.textContent = text;
      error.hidden = false;
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const fields = form.elements;
      const age = Number(fields.age.value);
      const unit = fields.unit.selectedOptions[0];
      const seconds = age * Number(unit.value);
      if (fields.age.value.trim() === "" || !Number.isInteger(age) || age < 0) {
        fail("Give the age as a whole number, 0 or more.");
        return;
      }
      if (seconds > MAX_CLEAN_AGE_S) {
        fail("The age can be at most 365 days.");
        return;
      }
      const state = fields.state.value;
      const units = age === 1 ? unit.textContent.replace(/s$/, "") : unit.textContent;
      const older = age ? ` older than ${age} ${units}` : ", however new";
      const question =
        `Delete every ${state} job of ${form.dataset.queue}${form.dataset.scope}${older}? ` +
        "This cannot be undone.";
      if (!window.confirm(question)) return;
      button.disabled = true;
      try {
        const result = await ILS.api("POST", form.dataset.url, { state, older_than_s: seconds });
        if (result.status === 401) {
          ILS.signInAgain();
          return;
        }
        if (result.ok) {
          ILS.flashAfterReload(`Cleaned: ${result.data.count} ${state} job(s) deleted.`, "ok");
          location.reload();
          return;
        }
        fail(`Not cleaned: ${ILS.problem(result)}.`);
      } catch {
        fail("Not cleaned: no answer from the server.");
      }
      button.disabled = false;
    });
  }

  // -- the schedules page's form ----------------------------------------------------------

  const PREVIEW_DELAY_MS = 350;
  // The API's field (its first part: "jobs.0.data" is the job's) -> the form's error slot.
  const ERROR_SLOTS = {
    name: "name",
    cron: "cron",
    every_s: "every_s",
    time_zone: "time_zone",
    company_id: "company_id",
    company_wide: "company_id",
    jobs: "jobs",
  };
  const TIMING = ["cron", "every_s", "time_zone"];

  function sentence(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".") : "";
  }

  function chosenJob(form) {
    const option = form.elements.job.selectedOptions[0];
    if (!option) return null;
    const job = JSON.parse(option.dataset.job);
    const param = option.dataset.param;
    if (param) job.data[param] = form.elements[`param-${param}`].value;
    return job;
  }

  // When the schedule runs, as the API's timing fields (only what was filled in).
  function timing(form) {
    const fields = form.elements;
    const body = {};
    const cron = fields.cron.value.trim();
    if (cron) body.cron = cron;
    const minutes = fields.every_min.value.trim();
    if (minutes) body.every_s = Math.round(Number(minutes) * 60);
    const zone = fields.time_zone.value.trim();
    if (zone) body.time_zone = zone;
    return body;
  }

  // The body of POST /api/schedules. Nothing is checked here: the API's 422 names each
  // problem, and the page shows it beside its field.
  function scheduleBody(form) {
    const fields = form.elements;
    const job = chosenJob(form);
    const body = {
      name: fields.name.value.trim(),
      catch_up: fields.catch_up.value,
      jobs: job ? [job] : [],
      ...timing(form),
    };
    if (fields.company) {
      if (fields.company.value) body.company_id = fields.company.value;
      else body.company_wide = true;
    }
    return body;
  }

  function clearErrors(form, slots) {
    for (const slot of form.querySelectorAll("[data-error-for]")) {
      if (slots && !slots.includes(slot.dataset.errorFor)) continue;
      slot.hidden = true;
      slot.textContent = "";
      const input = form.querySelector(`[aria-describedby~="${slot.id}"]`);
      if (input) input.removeAttribute("aria-invalid");
    }
    if (!slots) form.querySelector("[data-form-errors]").hidden = true;
  }

  // The API's problems beside their fields; any without a field of the form in the list
  // under it. Returns how many were shown.
  function showErrors(form, result, only) {
    const detail = result.data && result.data.detail;
    const problems = Array.isArray(detail) ? detail : [{ field: "", message: ILS.problem(result) }];
    const rest = [];
    let shown = 0;
    for (const p of problems) {
      const field = String(p.field || "");
      const slotName = ERROR_SLOTS[field.split(".")[0]];
      if (only && !only.includes(slotName)) continue;
      const slot = slotName && form.querySelector(`[data-error-for="${slotName}"]`);
      shown += 1;
      if (!slot) {
        rest.push(field && field !== "body" ? `${field}: ${p.message}` : p.message);
        continue;
      }
      slot.textContent = [slot.textContent, sentence(p.message)].filter(Boolean).join(" ");
      slot.hidden = false;
      const input = form.querySelector(`[aria-describedby~="${slot.id}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    }
    const list = form.querySelector("[data-form-errors]");
    if (rest.length) {
      list.replaceChildren(
        ...rest.map((text) => {
          const item = document.createElement("li");
          item.textContent = sentence(text);
          return item;
        }),
      );
      list.hidden = false;
    }
    return shown;
  }

  function startPreview(form) {
    const note = form.querySelector("[data-preview-note]");
    const runs = form.querySelector("[data-preview-runs]");
    let timer = 0;
    let asked = 0;
    const say = (text) => {
      note.textContent = text;
      note.hidden = false;
      runs.hidden = true;
      runs.replaceChildren();
    };
    async function ask() {
      const body = timing(form);
      const mine = ++asked;
      if (!body.cron && body.every_s === undefined) {
        clearErrors(form, TIMING);
        say("Type a cron expression or an interval to see when it runs.");
        return;
      }
      let result;
      try {
        result = await ILS.api("POST", form.dataset.previewUrl, body);
      } catch {
        if (mine === asked) say("The preview is unavailable: no answer from the server.");
        return;
      }
      if (mine !== asked) return; // the admin typed on; a newer answer is coming
      clearErrors(form, TIMING);
      if (result.status === 401) {
        ILS.signInAgain();
        return;
      }
      if (!result.ok) {
        if (result.status === 422 && showErrors(form, result, TIMING)) {
          say("Fix the field marked above to see the next runs.");
        } else {
          say(`The preview is unavailable: ${ILS.problem(result)}.`);
        }
        return;
      }
      const found = result.data.runs;
      if (!found.length) {
        say("This schedule has no run after now.");
        return;
      }
      runs.replaceChildren(
        ...found.map((run) => {
          const item = document.createElement("li");
          const local = document.createElement("span");
          local.textContent = run.local;
          const when = document.createElement("time");
          when.dateTime = run.at;
          when.dataset.relative = "";
          when.title = new Date(run.at).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
          item.append(local, " · ", when);
          return item;
        }),
      );
      ILS.localiseTimes(runs);
      note.hidden = true;
      runs.hidden = false;
    }
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(ask, PREVIEW_DELAY_MS);
    };
    for (const name of ["cron", "every_min", "time_zone"]) form.elements[name].addEventListener("input", later);
    return { later, now: ask };
  }

  // A platform admin's company select: the zone follows the company until the admin
  // types one, and a platform schedule (no company) offers only jobs of no company.
  function startCompany(form, preview) {
    const company = form.elements.company;
    if (!company) return;
    const zone = form.elements.time_zone;
    let zoneTyped = false;
    zone.addEventListener("input", () => {
      zoneTyped = true;
    });
    const follow = () => {
      const option = company.selectedOptions[0];
      const platform = !company.value;
      for (const job of form.elements.job.options) job.disabled = platform && job.hasAttribute("data-company-job");
      const chosen = form.elements.job.selectedOptions[0];
      if (chosen && chosen.disabled) {
        const first = [...form.elements.job.options].find((o) => !o.disabled);
        if (first) form.elements.job.value = first.value;
        form.elements.job.dispatchEvent(new Event("change"));
      }
      if (!zoneTyped && option && option.dataset.zone) {
        zone.value = option.dataset.zone;
        preview.later();
      }
    };
    company.addEventListener("change", follow);
    follow();
  }

  function startScheduleForm(form) {
    const button = form.querySelector('button[type="submit"]');
    const showParam = () => {
      const option = form.elements.job.selectedOptions[0];
      const wanted = option ? option.dataset.param : "";
      for (const field of form.querySelectorAll("[data-param-field]")) field.hidden = field.dataset.paramField !== wanted;
    };
    form.elements.job.addEventListener("change", showParam);
    showParam();
    const preview = startPreview(form);
    startCompany(form, preview);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      button.disabled = true;
      try {
        const result = await ILS.api("POST", form.dataset.url, scheduleBody(form));
        if (result.status === 401) {
          ILS.signInAgain();
          return;
        }
        if (result.ok) {
          ILS.flashAfterReload(`Schedule “${result.data.name}” created.`, "ok");
          location.reload();
          return;
        }
        showErrors(form, result);
      } catch {
        showErrors(form, { status: 0, data: { detail: "no answer from the server" } });
      }
      button.disabled = false;
    });
  }

  // -- start ----------------------------------------------------------------------------

  const cleanForm = document.getElementById("clean-form");
  if (cleanForm) startCleanForm(cleanForm);
  const scheduleForm = document.getElementById("schedule-form");
  if (scheduleForm) startScheduleForm(scheduleForm);
})();
