// street-vision operator page: plain JavaScript, no build step. Every API call carries the
// bearer token the operator typed once (kept in sessionStorage, so it ends with the tab).
"use strict";

const TOKEN_KEY = "street-vision-token";
const REFRESH_MS = 2000;
const view = document.getElementById("view");
let timers = [];
let blobUrls = [];

// ---- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(Array.isArray(detail) ? detail.map(describe).join("\n") : String(detail));
    this.status = status;
  }
}

function describe(problem) {
  if (typeof problem === "string") return problem;
  const where = (problem.loc || []).filter((p) => p !== "body").join(".");
  return where ? `${where}: ${problem.msg}` : problem.msg;
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    askToken("That token was not accepted.");
    throw new ApiError(401, "not signed in");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}

const getJson = async (path) => (await api(path)).json();

async function imageUrl(path) {
  const blob = await (await api(path)).blob();
  const url = URL.createObjectURL(blob);
  blobUrls.push(url);
  return url;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = reject;
    img.src = url;
  });
}

// ---- token -------------------------------------------------------------------------------

const login = document.getElementById("login");

function askToken(message = "") {
  document.getElementById("login-error").textContent = message;
  if (!login.open) login.showModal();
}

document.getElementById("login-form").addEventListener("submit", () => {
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  route();
});

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  askToken();
});

// ---- helpers -----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function every(ms, fn) {
  fn();
  timers.push(setInterval(fn, ms));
}

function reset() {
  timers.forEach(clearInterval);
  timers = [];
  blobUrls.forEach((u) => URL.revokeObjectURL(u));
  blobUrls = [];
  view.replaceChildren();
}

function badge(state) {
  return el("span", { class: `badge ${state}` }, state);
}

function fail(where, error) {
  if (error.status !== 401) where.replaceChildren(el("p", { class: "error" }, error.message));
}

// ---- cameras -----------------------------------------------------------------------------

async function camerasView() {
  const grid = el("div", { class: "grid" });
  view.append(el("h1", {}, "Cameras"), grid);
  const cards = {};
  every(REFRESH_MS, async () => {
    let cameras;
    try { cameras = await getJson("/api/cameras"); } catch (e) { return fail(grid, e); }
    for (const camera of cameras) {
      if (!cards[camera.id]) {
        cards[camera.id] = {
          img: el("img", { alt: `latest frame of ${camera.id}` }),
          status: el("div"),
        };
        grid.append(el("div", { class: "card", "data-camera": camera.id },
          el("div", { class: "frame" }, cards[camera.id].img),
          el("div", { class: "body" }, el("h3", {}, camera.id), el("div", { class: "hint" }, camera.url),
            cards[camera.id].status,
            el("div", { class: "links" },
              el("a", { href: `#/zones/${camera.id}` }, "Zones"),
              el("a", { href: `#/heatmap/${camera.id}` }, "Heatmap"),
              el("a", { href: `#/events?camera=${camera.id}` }, "Events")))));
      }
      const card = cards[camera.id];
      const health = camera.health;
      const state = camera.enabled ? health.state : "disabled";
      const rates = health ? ` ${health.fps_in.toFixed(1)} fps in, ${health.fps_out.toFixed(1)} out,` +
        ` ${health.frames_dropped} dropped` : "";
      const error = health && health.last_error ? el("div", { class: "error" }, health.last_error) : "";
      card.status.replaceChildren(badge(state), rates, el("div", {}, `zones: ${camera.zones.join(", ") || "none"}`), error);
      if (health && health.last_frame_pts !== null) {
        imageUrl(`/api/cameras/${camera.id}/snapshot.jpg`).then((url) => {
          const old = card.img.src;
          card.img.src = url;
          if (old.startsWith("blob:")) URL.revokeObjectURL(old);
        }).catch(() => {});
      }
    }
  });
}

// ---- heatmap -----------------------------------------------------------------------------

function heatmapView(cameraId) {
  const img = el("img", { alt: `heatmap of ${cameraId}` });
  const box = el("div", { class: "heatmap" }, img);
  view.append(el("h1", {}, `Heatmap: ${cameraId}`), el("p", { class: "hint" },
    "Where people stood, fading with a half-life of stream time."), box);
  every(5000, () => imageUrl(`/api/cameras/${cameraId}/heatmap.png`)
    .then((url) => { img.src = url; })
    .catch((e) => fail(box, e)));
}

// ---- events ------------------------------------------------------------------------------

async function eventsView(params) {
  const filters = el("form", { class: "filters" });
  const fields = {};
  for (const name of ["type", "camera", "state"]) {
    fields[name] = el("input", { placeholder: name, name, value: params.get(name) || "" });
    filters.append(fields[name]);
  }
  filters.append(el("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    const query = new URLSearchParams();
    for (const [name, input] of Object.entries(fields)) if (input.value) query.set(name, input.value);
    location.hash = `#/events?${query}`;
  });
  const body = el("tbody");
  const table = el("table", {}, el("thead", {}, el("tr", {},
    ...["Snapshot", "Type", "Camera / zone", "State", "Seen", "Count"].map((h) => el("th", {}, h)))), body);
  view.append(el("h1", {}, "Events"), filters, table);
  const query = new URLSearchParams(params);
  query.set("limit", "25");
  let events;
  try { events = await getJson(`/api/events?${query}`); } catch (e) { return fail(view, e); }
  if (!events.length) body.append(el("tr", {}, el("td", { colspan: "6" }, "No events.")));
  for (const event of events) {
    const picture = el("td");
    body.append(el("tr", { "data-event": event.event_id }, picture, el("td", {}, event.type),
      el("td", {}, `${event.camera} / ${event.zone}`), el("td", {}, badge(event.state)),
      el("td", {}, event.wall_time || `${event.first_seen.toFixed(1)} s`), el("td", {}, String(event.count))));
    getJson(`/api/events/${event.event_id}`).then(async (detail) => {
      const shot = detail.transitions.map((t) => t.snapshots).filter(Boolean).pop();
      if (shot) picture.append(el("img", { src: await imageUrl(shot.annotated), alt: "snapshot" }));
    }).catch(() => {});
  }
}

// ---- zone editor -------------------------------------------------------------------------

const HANDLE = 7; // px: how close a click must be to grab a point

async function zonesView(cameraId) {
  view.append(document.getElementById("zones-template").content.cloneNode(true));
  document.getElementById("zones-title").textContent = `Zones: ${cameraId}`;
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const list = document.getElementById("zone-list");
  const form = document.getElementById("zone-form");
  const nameInput = document.getElementById("zone-name");
  const anchorInput = document.getElementById("zone-anchor");
  const ruleInput = document.getElementById("zone-rule");
  const params = document.getElementById("rule-params");
  const status = document.getElementById("zone-status");
  const others = document.getElementById("other-rules");
  const editor = {
    zones: [], selected: null, points: [], rules: {}, params: {}, others: {}, given: new Set(), image: null, drag: -1,
  };

  let shownRule = ""; // the rule whose parameters the form shows
  const say = (text, ok = true) => { status.textContent = text; status.className = ok ? "ok" : "error"; };

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (editor.image) ctx.drawImage(editor.image, 0, 0, canvas.width, canvas.height);
    for (const zone of editor.zones) {
      if (zone.name !== editor.selected) outline(zone.polygon, "rgba(255,255,255,0.55)", zone.name);
    }
    outline(editor.points, "#ffb000", nameInput.value, true);
  }

  function outline(points, colour, label, handles = false) {
    if (!points.length) return;
    ctx.beginPath();
    points.forEach(([x, y], i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x * canvas.width, y * canvas.height));
    ctx.closePath();
    ctx.lineWidth = 2;
    ctx.strokeStyle = colour;
    ctx.fillStyle = handles ? "rgba(255,176,0,0.18)" : "rgba(255,255,255,0.08)";
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = colour;
    ctx.font = "14px system-ui";
    ctx.fillText(label || "", points[0][0] * canvas.width + 4, points[0][1] * canvas.height - 6);
    if (handles) {
      for (const [x, y] of points) {
        ctx.fillRect(x * canvas.width - 4, y * canvas.height - 4, 8, 8);
      }
    }
  }

  function at(event) {
    const box = canvas.getBoundingClientRect();
    const x = (event.clientX - box.left) / box.width;
    const y = (event.clientY - box.top) / box.height;
    return [Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))];
  }

  function near([x, y]) {
    const box = canvas.getBoundingClientRect();
    return editor.points.findIndex(([px, py]) =>
      Math.hypot((px - x) * box.width, (py - y) * box.height) <= HANDLE);
  }

  const round = ([x, y]) => [Number(x.toFixed(4)), Number(y.toFixed(4))];

  canvas.addEventListener("mousedown", (event) => {
    if (event.button !== 0) return;
    const point = at(event);
    editor.drag = near(point);
    if (editor.drag < 0) editor.points.push(round(point));
    draw();
  });
  canvas.addEventListener("mousemove", (event) => {
    if (editor.drag < 0) return;
    editor.points[editor.drag] = round(at(event));
    draw();
  });
  window.addEventListener("mouseup", () => { editor.drag = -1; });
  canvas.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    const index = near(at(event));
    if (index >= 0) editor.points.splice(index, 1);
    draw();
  });
  nameInput.addEventListener("input", draw);

  function paramForm(ruleName, values = {}) {
    params.replaceChildren();
    editor.params = {};
    if (!ruleName) return;
    const schema = editor.rules[ruleName];
    params.append(el("legend", {}, ruleName));
    for (const [key, prop] of Object.entries(schema.properties || {})) {
      const kind = prop.type || (prop.anyOf || []).map((t) => t.type).find((t) => t && t !== "null");
      const value = key in values ? values[key] : prop.default;
      const input = kind === "boolean" ? el("input", { type: "checkbox", name: key })
        : el("input", { name: key, type: kind === "number" || kind === "integer" ? "number" : "text",
          step: kind === "integer" ? "1" : "any" });
      if (kind === "boolean") input.checked = Boolean(value);
      else if (Array.isArray(value)) input.value = value.join(", ");
      else if (value !== undefined && value !== null) input.value = value;
      input.dataset.kind = kind === "array" ? "array" : kind;
      input.dataset.initial = kind === "boolean" ? String(input.checked) : input.value;
      editor.params[key] = input;
      params.append(el("label", { title: prop.description || "" }, key, input));
    }
  }

  function ruleValues() {
    const values = {};
    for (const [key, input] of Object.entries(editor.params)) {
      const current = input.dataset.kind === "boolean" ? String(input.checked) : input.value;
      if (current === input.dataset.initial && !editor.given.has(key)) continue; // leave defaults alone
      if (input.dataset.kind === "boolean") values[key] = input.checked;
      else if (input.value === "") continue;
      else if (input.dataset.kind === "number" || input.dataset.kind === "integer") values[key] = Number(input.value);
      else if (input.dataset.kind === "array") values[key] = input.value.split(",").map((s) => s.trim()).filter(Boolean);
      else values[key] = input.value;
    }
    return values;
  }

  function select(zone) {
    editor.selected = zone ? zone.name : null;
    editor.points = zone ? zone.polygon.map((p) => [...p]) : [];
    nameInput.value = zone ? zone.name : "";
    nameInput.disabled = Boolean(zone);
    anchorInput.value = zone ? zone.anchor : "bottom_center";
    // the form edits one rule at a time; the zone's other rules are sent back as they are
    const rules = zone ? Object.keys(zone.rules).filter((r) => zone.rules[r]) : [];
    editor.others = Object.fromEntries(rules.map((r) => [r, zone.rules[r]]));
    shownRule = "";
    showRule(rules[0] || "", false);
    for (const item of list.children) item.classList.toggle("selected", item.dataset.zone === editor.selected);
    say("");
    draw();
  }

  async function refresh(selectName) {
    editor.zones = await getJson(`/api/cameras/${cameraId}/zones`);
    list.replaceChildren(...editor.zones.map((zone) =>
      el("li", { "data-zone": zone.name, onclick: () => select(zone) }, zone.name)));
    select(editor.zones.find((z) => z.name === selectName) || null);
  }

  function showRule(rule, keepShown) {
    // switching the form to another rule keeps the one shown (unless it is being removed)
    if (keepShown && shownRule) editor.others[shownRule] = ruleValues();
    const kept = editor.others[rule];
    delete editor.others[rule];
    editor.given = new Set(kept ? Object.keys(kept) : []);
    shownRule = rule;
    ruleInput.value = rule;
    paramForm(rule, kept || {});
    const rest = Object.keys(editor.others);
    others.textContent = rest.length ? `Also watched by: ${rest.join(", ")} (kept).` : "";
  }
  ruleInput.addEventListener("change", () => showRule(ruleInput.value, true));
  document.getElementById("remove-rule").addEventListener("click", () => showRule("", false));
  document.getElementById("new-zone").addEventListener("click", () => select(null));
  document.getElementById("clear-points").addEventListener("click", () => { editor.points = []; draw(); });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rules = { ...editor.others };
    if (ruleInput.value) rules[ruleInput.value] = ruleValues();
    const zone = { polygon: editor.points, anchor: anchorInput.value, rules };
    const name = nameInput.value;
    try {
      if (editor.selected) {
        await api(`/api/cameras/${cameraId}/zones/${encodeURIComponent(name)}`, { method: "PUT", body: zone });
      } else {
        await api(`/api/cameras/${cameraId}/zones`, { method: "POST", body: { name, ...zone } });
      }
      await refresh(name);
      say(`Saved ${name}: written to the config file and live in the pipeline.`);
    } catch (e) {
      say(e.status === 403 ? "This token can only look: sign in with the admin token to edit." : e.message, false);
    }
  });

  document.getElementById("delete-zone").addEventListener("click", async () => {
    if (!editor.selected || !confirm(`Delete zone ${editor.selected}?`)) return;
    try {
      await api(`/api/cameras/${cameraId}/zones/${encodeURIComponent(editor.selected)}`, { method: "DELETE" });
      await refresh(null);
      say("Deleted.");
    } catch (e) { say(e.message, false); }
  });

  try {
    editor.rules = (await getJson("/api/rules")).rules;
    for (const name of Object.keys(editor.rules)) ruleInput.append(el("option", { value: name }, name));
    await refresh(null);
    editor.image = await loadImage(await imageUrl(`/api/cameras/${cameraId}/snapshot.jpg`));
    canvas.height = Math.round(canvas.width * editor.image.height / editor.image.width);
    canvas.dataset.ready = "true";
    draw();
  } catch (e) {
    canvas.dataset.ready = "true";
    say(e.status === 404 ? "No frame from this camera yet: zones can still be drawn." : e.message, e.status === 404);
    draw();
  }
}

// ---- router ------------------------------------------------------------------------------

function route() {
  reset();
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    askToken();
    return;
  }
  const [path, query] = (location.hash.slice(1) || "/cameras").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  if (parts[0] === "zones" && parts[1]) zonesView(decodeURIComponent(parts[1]));
  else if (parts[0] === "heatmap" && parts[1]) heatmapView(decodeURIComponent(parts[1]));
  else if (parts[0] === "events") eventsView(params);
  else if (parts[0] === "review") reviewView(parts[1] ? decodeURIComponent(parts[1]) : null, params);
  else camerasView();
}

window.addEventListener("hashchange", route);
route();
