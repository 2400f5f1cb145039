// street-vision review page (#/review): the events with filters, one event's snapshots, clips and history,
// the operator's verdict (confirm, false alarm, close by hand), and the figures per camera and type.
// Loaded before app.js, whose helpers (api, getJson, imageUrl, el, badge, every, fail) it uses.
"use strict";

const PAGE_SIZE = 20;
const LIST_REFRESH_MS = 5000;

function seconds(duration) {
  if (!duration) return "–";
  const fmt = (s) => (s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
  return `${fmt(duration.p50)} / ${fmt(duration.mean)} (${duration.count})`;
}

async function figuresTable(box) {
  let figures;
  try { figures = await getJson("/api/figures"); } catch (e) { return fail(box, e); }
  const heads = ["Camera", "Type", "Opened", "Confirmed", "False alarms", "Verified fixed",
    "Failed verifications", "Closed by hand", "Open → handled (p50 / mean)", "Open → closed (p50 / mean)"];
  const rows = figures.map((f) => el("tr", { "data-figure": `${f.camera}/${f.type}` },
    el("td", {}, f.camera), el("td", {}, f.type),
    ...["opened", "confirmed", "rejected", "verified_fixed", "failed_verifications", "closed_by_operator"]
      .map((k) => el("td", { "data-key": k }, String(f[k]))),
    el("td", {}, seconds(f.open_to_handled)), el("td", {}, seconds(f.open_to_closed))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: String(heads.length) }, "No tickets yet.")));
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows)));
}

function filterForm(params, cameras) {
  const form = el("form", { class: "filters", id: "review-filters" });
  const camera = el("select", { name: "camera" }, el("option", { value: "" }, "any camera"),
    ...cameras.map((c) => el("option", { value: c.id }, c.id)));
  const state = el("select", { name: "state" }, el("option", { value: "" }, "any state"),
    ...["open", "resolving", "resolved"].map((s) => el("option", { value: s }, s)));
  const type = el("input", { name: "type", placeholder: "type (e.g. crowd)" });
  const since = el("input", { name: "since", type: "datetime-local", title: "from (your time)" });
  const until = el("input", { name: "until", type: "datetime-local", title: "until (your time)" });
  const local = (iso) => { // ISO UTC -> the datetime-local input's form, in the browser's time zone
    const d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  };
  camera.value = params.get("camera") || "";
  state.value = params.get("state") || "";
  type.value = params.get("type") || "";
  if (params.get("since")) since.value = local(params.get("since"));
  if (params.get("until")) until.value = local(params.get("until"));
  form.append(camera, type, state, since, until, el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const query = new URLSearchParams();
    for (const input of [camera, type, state]) if (input.value) query.set(input.name, input.value);
    for (const input of [since, until]) if (input.value) query.set(input.name, new Date(input.value).toISOString());
    location.hash = `#/review?${query}`;
  });
  return form;
}

async function reviewView(eventId, params) {
  const figures = el("div", { id: "figures" });
  const list = el("tbody");
  const pager = el("div", { class: "buttons" });
  const detail = el("section", { id: "event-detail" });
  let cameras = [];
  try { cameras = await getJson("/api/cameras"); } catch (e) { return fail(view, e); }
  view.append(el("h1", {}, "Review"), el("h2", {}, "Figures"), figures, el("h2", {}, "Events"),
    filterForm(params, cameras),
    el("div", { class: "review" },
      el("div", {}, el("table", { id: "review-list" }, el("thead", {}, el("tr", {},
        ...["Type", "Camera / zone", "State", "Opened", "Close reason"].map((h) => el("th", {}, h)))), list), pager),
      detail));
  const offset = Number(params.get("offset") || 0);
  const hashFor = (id, moreParams = {}) => {
    const query = new URLSearchParams(params);
    for (const [k, v] of Object.entries(moreParams)) query.set(k, v);
    return `#/review${id ? `/${id}` : ""}?${query}`;
  };

  async function refreshList() {
    const query = new URLSearchParams(params);
    query.set("limit", String(PAGE_SIZE + 1));
    query.set("offset", String(offset));
    let events;
    try { events = await getJson(`/api/events?${query}`); } catch (e) { return fail(list, e); }
    const rows = events.slice(0, PAGE_SIZE).map((event) => el("tr", {
      "data-event": event.event_id, "data-state": event.state,
      class: event.event_id === eventId ? "selected" : "",
      onclick: () => { location.hash = hashFor(event.event_id); },
    }, el("td", {}, event.type), el("td", {}, `${event.camera} / ${event.zone}`), el("td", {}, badge(event.state)),
    el("td", {}, event.wall_time ? new Date(event.wall_time).toLocaleString() : `${(event.opened_at ?? event.first_seen).toFixed(1)} s`),
    el("td", {}, event.close_reason || "")));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "5" }, "No events.")));
    list.replaceChildren(...rows);
    pager.replaceChildren(
      ...(offset > 0 ? [el("a", { href: hashFor(null, { offset: Math.max(0, offset - PAGE_SIZE) }) }, "← newer")] : []),
      ...(events.length > PAGE_SIZE ? [el("a", { href: hashFor(null, { offset: offset + PAGE_SIZE }), id: "older" }, "older →")] : []));
  }

  every(LIST_REFRESH_MS, () => { refreshList(); figuresTable(figures); });
  if (eventId) await showEvent(eventId, detail, () => { refreshList(); figuresTable(figures); });
  else detail.append(el("p", { class: "hint" }, "Pick an event to see its snapshots, clips and history."));
}

function historyRows(event) {
  // one timeline: each transition (committed), the message that sent it and how its delivery went, and
  // the reports that came back, by wall time; a message sorts right after its transition
  const at = Object.fromEntries(event.transitions.map((t) => [t.seq, t.recorded_at || ""]));
  const rows = [];
  for (const t of event.transitions) {
    const seen = t.wall_time ? `seen ${new Date(t.wall_time).toISOString()}` : "";
    rows.push([[at[t.seq], 0], t.recorded_at || "", "camera", `${t.kind} at ${t.pts.toFixed(1)} s`, seen]);
  }
  for (const m of event.deliveries) {
    const how = m.status === "delivered" ? `delivered ${m.delivered_at}` : `${m.status}, ${m.attempts} attempt(s)`;
    rows.push([[at[m.seq] ?? m.recorded_at, 1], m.recorded_at, "sent", `${m.transition} #${m.event_seq}`,
      how + (m.last_error ? `: ${m.last_error}` : "")]);
  }
  for (const r of event.reports) {
    rows.push([[r.received_at, 0], r.received_at, r.source, r.status, (r.note || "") + (r.applied ? "" : " (not applied yet)")]);
  }
  rows.sort(([a], [b]) => a[0].localeCompare(b[0]) || a[1] - b[1]);
  return rows.map((row) => row.slice(1));
}

async function showEvent(eventId, box, changed, message = null) {
  let event;
  try { event = await getJson(`/api/events/${encodeURIComponent(eventId)}`); } catch (e) { return fail(box, e); }
  const status = el("p", { id: "review-status", role: "status" });
  const reason = el("textarea", { id: "close-reason", rows: "2", maxlength: "500",
    placeholder: "Reason (required to close by hand; sent with the close)" });
  const say = (text, ok = true) => { status.textContent = text; status.className = ok ? "ok" : "error"; };

  async function act(action) {
    const body = { action };
    if (reason.value.trim()) body.reason = reason.value.trim();
    try {
      const receipt = await (await api(`/api/events/${encodeURIComponent(eventId)}/review`, { method: "POST", body })).json();
      const said = `${action}: the event is ${receipt.state}` +
        (receipt.close_reason ? ` (${receipt.close_reason})` : "") +
        (receipt.applied ? "." : "; its camera applies it when it runs.");
      changed();
      await showEvent(eventId, box, changed, said); // the event as it is now, with the answer
    } catch (e) {
      say(e.status === 403 ? "This token can only look: sign in with the admin token to review." : e.message, false);
    }
  }

  const shots = el("div", { class: "shots" });
  const clips = el("div", { class: "clips" });
  const history = el("tbody", { id: "history" },
    ...historyRows(event).map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c)))));
  box.dataset.state = event.state;
  if (message) say(message);
  box.replaceChildren(
    el("h2", {}, `${event.type} on ${event.camera} / ${event.zone} `, badge(event.state)),
    el("p", { class: "hint" }, `event ${event.event_id}; peak count ${event.peak_count}` +
      (event.close_reason ? `; closed: ${event.close_reason}` : "") +
      (event.verification ? `; verification ${event.verification}` : "")),
    el("div", { class: "buttons" },
      el("button", { id: "confirm", type: "button", onclick: () => act("confirm") }, "Confirm"),
      el("button", { id: "false-alarm", type: "button", class: "danger", onclick: () => act("false_alarm") }, "False alarm"),
      el("button", { id: "close-by-hand", type: "button", onclick: () => act("close") }, "Close by hand")),
    reason, status,
    el("h3", {}, "Clips"), clips, el("h3", {}, "Snapshots"), shots,
    el("h3", {}, "History"),
    el("table", {}, el("thead", {}, el("tr", {}, ...["When (UTC)", "Who", "What", "How"].map((h) => el("th", {}, h)))), history));
  if (!event.clips.length) clips.append(el("p", { class: "hint" }, "No clip yet (written a few seconds after a transition)."));
  for (const clip of event.clips) {
    const video = el("video", { controls: "", muted: "", playsinline: "", "data-kind": clip.kind, preload: "auto" });
    clips.append(el("figure", {}, video, el("figcaption", {}, `${clip.kind} at ${clip.pts.toFixed(1)} s ` +
      `(${clip.start_pts.toFixed(1)}–${clip.end_pts.toFixed(1)} s, ${clip.frames} frames)`)));
    imageUrl(clip.url).then((url) => { video.src = url; }).catch((e) => fail(clips, e));
  }
  for (const t of event.transitions) {
    if (!t.snapshots) continue;
    const img = el("img", { alt: `${t.kind} at ${t.pts.toFixed(1)} s`, "data-kind": t.kind });
    shots.append(el("figure", {}, img, el("figcaption", {}, `${t.kind} at ${t.pts.toFixed(1)} s`)));
    imageUrl(t.snapshots.annotated).then((url) => { img.src = url; }).catch((e) => fail(shots, e));
  }
}
