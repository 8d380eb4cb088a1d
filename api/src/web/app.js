// The eventsys web page: attendees browse and buy, organizers run their
// events, door staff check tickets in (offline too). Plain JavaScript in
// one module, no build step: it talks to the public API like any client,
// and to the WebSocket for everything that changes while one looks.
"use strict";

// ---- Small helpers -------------------------------------------------------

const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes (`on*` are listeners) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "");
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "");
const money = (minor, currency) =>
  minor === 0 ? "free" : new Intl.NumberFormat([], { style: "currency", currency }).format(minor / 100);
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// ---- Session -------------------------------------------------------------

const session = {
  token: sessionStorage.getItem("eventsys.token"),
  get claims() {
    try {
      const part = this.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch {
      return null;
    }
  },
  get user() {
    return this.claims?.sub ?? null;
  },
  has(role) {
    return (this.claims?.roles ?? []).includes(role);
  },
  set(token) {
    this.token = token;
    if (token) sessionStorage.setItem("eventsys.token", token);
    else sessionStorage.removeItem("eventsys.token");
  },
};

// ---- The API -------------------------------------------------------------

class Offline extends Error {}

/** Calls the API; answers `{status, body}`, or throws `Offline` when the
 *  server cannot be reached at all. */
async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (session.token) init.headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let answer;
  try {
    answer = await fetch(path, init);
  } catch (e) {
    throw new Offline(e.message);
  }
  const text = await answer.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (answer.status === 401 && session.token) {
    session.set(null);
    go("#/signin");
  }
  return { status: answer.status, body: parsed };
}

/** A random UUID; `crypto.randomUUID` exists only on https and loopback. */
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A write that is a command: sent once, under a fresh idempotency key. */
const command = (method, path, body, wait) =>
  api(method, path, body, {
    "idempotency-key": uuid(),
    ...(wait ? { prefer: `wait=${wait}` } : {}),
  });

const problem = (answer) => answer.body?.detail || answer.body?.title || `failed (${answer.status})`;

// ---- Live updates --------------------------------------------------------

const live = {
  socket: null,
  listeners: new Set(),
  events: new Set(),
  retry: 500,
  connect() {
    if (!session.token || this.socket) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/v1/ws?access_token=${encodeURIComponent(session.token)}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.retry = 500;
      $("#connection").textContent = "";
      for (const id of this.events) socket.send(JSON.stringify({ type: "subscribe", event_id: id }));
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      for (const listener of [...this.listeners]) listener(frame);
    });
    socket.addEventListener("close", () => {
      this.socket = null;
      if (!session.token) return;
      $("#connection").textContent = "Live updates paused; reconnecting…";
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    });
  },
  follow(eventId) {
    this.events.add(eventId);
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "subscribe", event_id: eventId }));
    }
  },
  close() {
    this.socket?.close();
    this.socket = null;
    this.events.clear();
  },
};

// ---- Routing -------------------------------------------------------------

/** What the current view registered, undone when it is left. */
let leaving = [];
const onLeave = (undo) => leaving.push(undo);
const onFrame = (listener) => {
  live.listeners.add(listener);
  onLeave(() => live.listeners.delete(listener));
};
const every = (ms, tick) => {
  const timer = setInterval(tick, ms);
  onLeave(() => clearInterval(timer));
};

const go = (hash) => {
  if (location.hash === hash) route();
  else location.hash = hash;
};

const routes = [
  [/^#\/signin$/, signIn],
  [/^#\/events$/, eventList],
  [/^#\/events\/([\w-]+)$/, eventPage],
  [/^#\/tickets$/, myTickets],
  [/^#\/notifications$/, notifications],
  [/^#\/organize$/, organize],
  [/^#\/organize\/([\w-]+)$/, manageEvent],
  [/^#\/door\/([\w-]+)$/, door],
];

function home() {
  if (!session.token) return "#/signin";
  if (session.has("organizer")) return "#/organize";
  if (session.has("staff") && !session.has("attendee")) return "#/events";
  return "#/events";
}

async function route() {
  for (const undo of leaving.splice(0)) undo();
  if (!session.token && location.hash !== "#/signin") return go("#/signin");
  const hash = location.hash || home();
  // A fresh container per visit: a view still loading when the next one
  // starts writes into a container no longer shown.
  const main = el("div", { class: "view" });
  $("#main").replaceChildren(main);
  renderNav(hash);
  for (const [pattern, view] of routes) {
    const match = hash.match(pattern);
    if (match) {
      await view(main, ...match.slice(1));
      if (main.isConnected) $("#main").focus({ preventScroll: true });
      return;
    }
  }
  go(home());
}

function renderNav(hash) {
  const links = [];
  if (session.token) {
    links.push(["#/events", "Events"]);
    if (session.has("attendee")) links.push(["#/tickets", "My tickets"]);
    links.push(["#/notifications", "Notifications"]);
    if (session.has("organizer")) links.push(["#/organize", "Organize"]);
  }
  const list = el("ul");
  for (const [href, label] of links) {
    const current = hash === href || hash.startsWith(href + "/");
    list.append(el("li", {}, el("a", { href, "aria-current": current ? "page" : null }, label)));
  }
  if (session.token) {
    list.append(el("li", {}, el("a", { href: "#/signin", onclick: () => { session.set(null); live.close(); } }, "Sign out")));
  }
  $("#nav").replaceChildren(list);
  const roles = (session.claims?.roles ?? []).join(", ");
  $("#who").textContent = session.user ? `Signed in as ${session.user} (${roles})` : "";
}

// ---- Sign-in -------------------------------------------------------------

async function signIn(main) {
  live.close();
  const devSignIn = document.body.dataset.devSignIn === "true";
  const message = el("p", { role: "alert", class: "error" });
  main.append(el("h1", {}, "Sign in"));
  if (devSignIn) {
    const user = el("input", { name: "user", required: true, autocomplete: "username", value: "alice" });
    const roles = [
      ["attendee", "Attendee: buy tickets", true],
      ["organizer", "Organizer: run events", false],
      ["staff", "Door staff: check tickets in", false],
    ].map(([value, label, checked]) => el("label", { class: "check" }, el("input", { type: "checkbox", name: "role", value, checked }), label));
    main.append(
      el("form", {
        class: "stack panel",
        "aria-labelledby": "dev-h",
        onsubmit: async (e) => {
          e.preventDefault();
          const chosen = [...main.querySelectorAll("input[name=role]:checked")].map((box) => box.value);
          const answer = await api("POST", "/v1/dev/token", { user_id: user.value.trim(), roles: chosen });
          if (answer.status !== 201) return (message.textContent = problem(answer));
          session.set(answer.body.token);
          live.connect();
          go(home());
        },
      },
        el("h2", { id: "dev-h" }, "Development sign-in"),
        el("p", { class: "muted" }, "This server mints a token for any user you name. It is for trying eventsys on your own machine."),
        el("label", {}, "User id", user),
        el("fieldset", {}, el("legend", {}, "Roles"), roles),
        el("button", { type: "submit" }, "Sign in"),
      ),
    );
  }
  const pasted = el("textarea", { name: "token", rows: 3, required: true, spellcheck: "false" });
  main.append(
    el("form", {
      class: "stack panel",
      "aria-labelledby": "token-h",
      onsubmit: (e) => {
        e.preventDefault();
        session.set(pasted.value.trim());
        if (!session.claims) {
          session.set(null);
          return (message.textContent = "That is not a token.");
        }
        live.connect();
        go(home());
      },
    },
      el("h2", { id: "token-h" }, "Use a token"),
      el("p", { class: "muted" }, "A token from your identity provider, or from ", el("code", {}, "eventsys token"), "."),
      el("label", {}, "Token", pasted),
      el("button", { type: "submit", class: devSignIn ? "secondary" : null }, "Use this token"),
    ),
    message,
  );
}

// ---- Attendees -----------------------------------------------------------

const events = new Map();
async function eventById(id) {
  if (!events.has(id)) {
    const answer = await api("GET", `/v1/events/${id}`);
    if (answer.status !== 200) return null;
    events.set(id, answer.body);
  }
  return events.get(id);
}

function seatsLeft(event) {
  return event.status === "published" ? `${plural(event.remaining, "seat", "seats")} left` : event.status;
}

async function eventList(main) {
  main.append(el("h1", {}, "Events"));
  const answer = await api("GET", "/v1/events?limit=100");
  const items = answer.body?.items ?? [];
  if (!items.length) return main.append(el("p", {}, "No events on sale yet."));
  const list = el("ul", { class: "cards" });
  for (const event of items) {
    events.set(event.event_id, event);
    live.follow(event.event_id);
    const left = el("p", { class: "remaining", "data-remaining": event.event_id }, seatsLeft(event));
    list.append(el("li", { class: "card" },
      el("h2", {}, el("a", { href: `#/events/${event.event_id}` }, event.name)),
      el("p", { class: "muted" }, `${when(event.starts_at)} · ${event.venue}`),
      left,
    ));
  }
  main.append(list);
  onFrame((frame) => {
    if (frame.type !== "event.updated") return;
    const left = main.querySelector(`[data-remaining="${frame.event_id}"]`);
    const event = events.get(frame.event_id);
    if (!left || !event) return;
    Object.assign(event, { remaining: frame.remaining, status: frame.status });
    left.textContent = seatsLeft(event);
  });
}

async function eventPage(main, id) {
  const event = await eventById(id);
  if (!event) return main.append(el("h1", {}, "No such event"));
  live.follow(id);
  const left = el("p", { class: "remaining", id: "remaining" }, seatsLeft(event));
  main.append(
    el("h1", {}, event.name),
    el("p", { class: "muted" }, `${when(event.starts_at)} – ${when(event.ends_at)} · ${event.venue}`),
    ...(event.description ? [el("p", {}, event.description)] : []),
    el("div", { role: "status", "aria-live": "polite" }, left),
  );
  onFrame((frame) => {
    if (frame.type === "event.updated" && frame.event_id === id) {
      Object.assign(event, { remaining: frame.remaining, status: frame.status });
      left.textContent = seatsLeft(event);
    }
  });
  if (session.has("staff") || session.has("organizer")) {
    main.append(el("p", {}, el("a", { href: `#/door/${id}` }, "Open the door screen")));
  }
  if (!session.has("attendee")) return;

  const types = event.ticket_types.filter((type) => !type.closed);
  const choice = el("select", { name: "ticket_type" },
    types.map((type) => el("option", { value: type.ticket_type_id }, `${type.name}: ${money(type.price_minor, type.currency)} (${type.remaining} left)`)));
  const quantity = el("input", { type: "number", name: "quantity", min: 1, max: event.max_per_order, value: 1, inputmode: "numeric" });
  const outcome = el("div", { role: "status", "aria-live": "polite" });
  main.append(
    el("form", {
      class: "stack panel",
      "aria-labelledby": "buy-h",
      onsubmit: async (e) => {
        e.preventDefault();
        outcome.replaceChildren(el("p", { class: "status" }, "Sending your order…"));
        const answer = await command("POST", `/v1/events/${id}/orders`, { quantity: Number(quantity.value), ticket_type: choice.value });
        if (answer.status !== 202 && answer.status !== 200) {
          return outcome.replaceChildren(el("p", { class: "status bad" }, problem(answer)));
        }
        follow(answer.body, outcome);
      },
    },
      el("h2", { id: "buy-h" }, "Buy tickets"),
      el("label", {}, "Ticket type", choice),
      el("label", {}, "How many", quantity),
      el("button", { type: "submit" }, "Buy"),
    ),
    outcome,
  );
  const free = types.find((type) => type.price_minor === 0);
  if (free) {
    main.append(el("div", { class: "row" }, el("button", {
      class: "secondary",
      onclick: async () => {
        outcome.replaceChildren(el("p", { class: "status" }, "Registering…"));
        const answer = await command("POST", `/v1/events/${id}/registrations`, { ticket_type: free.ticket_type_id });
        if (answer.status !== 202 && answer.status !== 200) return outcome.replaceChildren(el("p", { class: "status bad" }, problem(answer)));
        follow(answer.body, outcome);
      },
    }, "Register for free")));
  }
  main.append(await waitlistPanel(id, () => choice.value));
}

/** Shows a command's way to its outcome, live; a hold gets its countdown
 *  and its confirm button. */
function follow(accepted, outcome) {
  const id = accepted.command_id;
  let done = false;
  const show = (text, kind = "", ...extra) => outcome.replaceChildren(el("div", { class: `status ${kind}` }, el("p", {}, text), ...extra));
  const settle = (doc) => {
    if (done) return;
    if (doc.status === "accepted") return show("Accepted: waiting for its turn…");
    if (doc.status === "processing") return show("Processing…");
    done = true;
    if (doc.status === "succeeded") {
      const result = doc.result ?? {};
      if (result.order_status === "pending_payment") return showHold(outcome, result.order_id, result.expires_at);
      const count = result.ticket_ids?.length ?? 0;
      return show(`Confirmed: ${plural(count, "ticket", "tickets")}.`, "ok", el("a", { href: "#/tickets" }, "See my tickets"));
    }
    show(`Not done: ${doc.error?.message ?? doc.status}.`, "bad");
  };
  show("Accepted: waiting for its turn…");
  onFrame((frame) => {
    if (frame.type === "command.updated" && frame.command_id === id) settle(frame);
    if (frame.type === "queue.position" && frame.command_id === id && !done) show(`Accepted: number ${frame.position} in line…`);
  });
  if (accepted.status && accepted.status !== "accepted") settle(accepted);
  // In case a frame was missed (a reconnect): ask now and then.
  every(2000, async () => {
    if (done) return;
    const answer = await api("GET", `/v1/commands/${id}`).catch(() => null);
    if (answer?.status === 200) settle(answer.body);
  });
}

function showHold(outcome, orderId, expiresAt) {
  const left = el("strong", {});
  const tick = () => {
    const seconds = Math.max(0, Math.round((new Date(expiresAt) - Date.now()) / 1000));
    left.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  };
  tick();
  every(1000, tick);
  const confirm = el("button", {
    onclick: async () => {
      confirm.disabled = true;
      const answer = await command("POST", `/v1/orders/${orderId}/confirm`, undefined, 10);
      if (answer.body?.status === "succeeded") {
        outcome.replaceChildren(el("div", { class: "status ok" }, el("p", {}, "Paid and confirmed."), el("a", { href: "#/tickets" }, "See my tickets")));
      } else {
        confirm.disabled = false;
        outcome.append(el("p", { class: "error" }, answer.body?.error?.message ?? problem(answer)));
      }
    },
  }, "Confirm and pay");
  outcome.replaceChildren(el("div", { class: "status warn" },
    el("p", {}, "Your seats are held for ", left, ` (until ${clock(expiresAt)}). Confirm to keep them.`),
    confirm));
}

/** The caller's place in the event's waiting list; joining waits for a
 *  seat of the type `chosen()` names. */
async function waitlistPanel(eventId, chosen) {
  const panel = el("section", { class: "panel", "aria-labelledby": "wait-h" }, el("h2", { id: "wait-h" }, "Waiting list"));
  const state = el("div", { role: "status", "aria-live": "polite" });
  const refused = el("p", { class: "error", role: "alert" });
  const refresh = async () => {
    const answer = await api("GET", `/v1/events/${eventId}/waitlist/me`);
    if (answer.status !== 200) {
      return state.replaceChildren(
        el("p", {}, "When it is sold out, join the waiting list for the ticket type chosen above: a seat that comes free is offered to the first in line."),
        el("button", {
          class: "secondary",
          onclick: async () => {
            refused.textContent = "";
            const joined = await command("POST", `/v1/events/${eventId}/waitlist`, { ticket_type: chosen() }, 10);
            if (joined.body?.status !== "succeeded") refused.textContent = joined.body?.error?.message ?? problem(joined);
            refresh();
          },
        }, "Join the waiting list"));
    }
    const me = answer.body;
    if (me.offer && me.offer.status === "pending_payment") {
      const slot = el("div");
      state.replaceChildren(el("p", {}, "A seat is offered to you."), slot);
      return showHold(slot, me.offer.order_id, me.offer.expires_at);
    }
    if (me.offer?.status === "confirmed") return state.replaceChildren(el("p", {}, "The seat offered to you is yours."));
    if (me.offer) return state.replaceChildren(el("p", {}, `The seat offered to you is ${me.offer.status.replace("_", " ")}.`));
    state.replaceChildren(el("p", {}, `You are number ${me.position} in line.`));
  };
  await refresh();
  onFrame((frame) => {
    if ((frame.type === "waitlist.moved" && frame.event_id === eventId) || frame.type === "notification") refresh();
  });
  panel.append(state, refused);
  return panel;
}

async function myTickets(main) {
  main.append(el("h1", {}, "My tickets"));
  const answer = await api("GET", "/v1/me/tickets?limit=100");
  const tickets = answer.body?.items ?? [];
  if (!tickets.length) return main.append(el("p", {}, "No tickets yet. ", el("a", { href: "#/events" }, "Find an event")));
  const list = el("ul", { class: "cards" });
  main.append(list);
  for (const ticket of tickets) {
    const event = await eventById(ticket.event_id);
    const name = event?.name ?? "An event";
    const image = el("img", { class: "qr", alt: `QR code of your ticket for ${name}` });
    const svg = await fetch(`/v1/tickets/${ticket.ticket_id}/qr.svg`, { headers: { authorization: `Bearer ${session.token}` } })
      .then((r) => (r.ok ? r.blob() : null))
      .catch(() => null);
    if (svg) {
      image.src = URL.createObjectURL(svg);
      onLeave(() => URL.revokeObjectURL(image.src));
    }
    const type = event?.ticket_types.find((t) => t.ticket_type_id === ticket.ticket_type_id)?.name ?? "";
    const giveBack = el("button", {
      class: "secondary",
      onclick: async () => {
        if (!confirm(`Give back your ${type} ticket for ${name}? Its seat goes back on sale.`)) return;
        giveBack.disabled = true;
        const answer = await command("POST", `/v1/tickets/${ticket.ticket_id}/cancel`, undefined, 10);
        if (answer.body?.status !== "succeeded") {
          giveBack.disabled = false;
          return giveBack.after(el("p", { class: "error", role: "alert" }, answer.body?.error?.message ?? problem(answer)));
        }
        route();
      },
    }, `Give back your ${type} ticket`);
    list.append(el("li", { class: "card ticket" },
      ticket.status === "valid" ? image : el("span", {}),
      el("div", {},
        el("h2", {}, name),
        el("p", { class: "muted" }, [type, event ? when(event.starts_at) : ""].filter(Boolean).join(" · ")),
        el("p", {}, ticket.status === "checked_in" ? `Checked in ${clock(ticket.checked_in_at)}` : ticket.status === "valid" ? "Valid: show this code at the door." : "Cancelled"),
        ticket.status === "valid" ? giveBack : null,
      ),
    ));
  }
}

async function notifications(main) {
  main.append(el("h1", {}, "Notifications"));
  const list = el("ul", { class: "stack", "aria-live": "polite" });
  const entry = (note) => {
    const read = el("button", {
      class: "secondary",
      onclick: async () => {
        await command("POST", `/v1/me/notifications/${note.notification_id}/read`);
        item.classList.remove("unread");
        read.remove();
      },
    }, "Mark read");
    const item = el("li", { class: `card ${note.read ? "" : "unread"}` },
      el("p", {}, note.message), el("p", { class: "muted" }, when(note.created_at)), note.read ? null : read);
    return item;
  };
  const answer = await api("GET", "/v1/me/notifications?limit=50");
  for (const note of answer.body?.items ?? []) list.append(entry(note));
  if (!list.children.length) main.append(el("p", { class: "muted", id: "empty" }, "Nothing yet; new ones appear here as they come."));
  main.append(list);
  onFrame((frame) => {
    if (frame.type !== "notification") return;
    $("#empty")?.remove();
    list.prepend(entry(frame));
  });
}

// ---- Organizers ----------------------------------------------------------

const mineKey = () => `eventsys.mine.${session.user}`;
const remember = (id) => {
  const ids = new Set(JSON.parse(localStorage.getItem(mineKey()) ?? "[]"));
  ids.add(id);
  localStorage.setItem(mineKey(), JSON.stringify([...ids]));
};

async function organize(main) {
  main.append(el("h1", {}, "Organize"));
  const message = el("p", { role: "alert", class: "error" });
  const field = (label, attrs) => el("label", {}, label, el("input", attrs));
  const inDays = (days, hour) => {
    const at = new Date(Date.now() + days * 86400000);
    at.setHours(hour, 0, 0, 0);
    return new Date(at - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  };
  const form = el("form", {
    class: "stack panel",
    "aria-labelledby": "new-h",
    onsubmit: async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const price = Math.round(Number(data.get("price")) * 100);
      const body = {
        name: data.get("name"),
        venue: data.get("venue"),
        description: data.get("description") || undefined,
        starts_at: new Date(data.get("starts_at")).toISOString(),
        ends_at: new Date(data.get("ends_at")).toISOString(),
        capacity: Number(data.get("capacity")),
        status: e.submitter?.value === "publish" ? "published" : "draft",
        ticket_types: [{ name: data.get("type_name"), price_minor: price, currency: data.get("currency"), quota: Number(data.get("capacity")) }],
      };
      const answer = await command("POST", "/v1/events", body, 10);
      if (answer.body?.status !== "succeeded") return (message.textContent = answer.body?.error?.message ?? problem(answer));
      remember(answer.body.event_id);
      go(`#/organize/${answer.body.event_id}`);
    },
  },
    el("h2", { id: "new-h" }, "New event"),
    field("Name", { name: "name", required: true, maxlength: 200 }),
    field("Venue", { name: "venue", required: true, maxlength: 200 }),
    el("label", {}, "Description", el("textarea", { name: "description", rows: 3, maxlength: 5000 })),
    field("Starts", { name: "starts_at", type: "datetime-local", required: true, value: inDays(30, 18) }),
    field("Ends", { name: "ends_at", type: "datetime-local", required: true, value: inDays(30, 23) }),
    field("Capacity", { name: "capacity", type: "number", min: 1, max: 1000000, required: true, value: 100, inputmode: "numeric" }),
    el("fieldset", { class: "stack" }, el("legend", {}, "Ticket type"),
      field("Name", { name: "type_name", required: true, value: "General admission" }),
      field("Price (0 for free)", { name: "price", type: "number", min: 0, step: "0.01", value: 0, inputmode: "decimal" }),
      field("Currency", { name: "currency", required: true, value: "EUR", pattern: "[A-Z]{3}", maxlength: 3 })),
    el("div", { class: "row" },
      el("button", { type: "submit", name: "action", value: "draft", class: "secondary" }, "Save as draft"),
      el("button", { type: "submit", name: "action", value: "publish" }, "Publish now")),
    message,
  );
  const list = el("ul", { class: "cards" });
  main.append(el("h2", {}, "My events"), list, form);
  // Published ones come with the listing; only the drafts this browser
  // made are read one by one.
  const mine = new Map();
  const listed = await api("GET", "/v1/events?limit=200");
  for (const event of listed.body?.items ?? []) if (event.organizer_id === session.user) mine.set(event.event_id, event);
  for (const id of JSON.parse(localStorage.getItem(mineKey()) ?? "[]")) {
    if (mine.has(id)) continue;
    const event = await api("GET", `/v1/events/${id}`);
    if (event.status === 200) mine.set(id, event.body);
  }
  for (const [id, event] of mine) {
    list.append(el("li", { class: "card" },
      el("h3", {}, el("a", { href: `#/organize/${id}` }, event.name)),
      el("p", { class: "muted" }, `${event.status} · ${when(event.starts_at)} · ${event.sold} sold of ${event.capacity}`)));
  }
  if (!list.children.length) list.append(el("li", { class: "muted" }, "None yet."));
}

async function manageEvent(main, id) {
  const answer = await api("GET", `/v1/events/${id}`);
  if (answer.status !== 200) return main.append(el("h1", {}, "No such event"));
  const event = answer.body;
  events.set(id, event);
  remember(id);
  live.follow(id);
  const message = el("p", { role: "alert", class: "error" });
  const act = async (method, path, body) => {
    message.textContent = "";
    const done = await command(method, path, body, 10);
    if (done.body?.status !== "succeeded") message.textContent = done.body?.error?.message ?? problem(done);
    else route();
  };
  main.append(
    el("h1", {}, event.name),
    el("p", {}, el("strong", { id: "event-status" }, event.status), ` · ${when(event.starts_at)} · ${event.venue}`),
    el("div", { class: "row" },
      event.status === "draft" ? el("button", { onclick: () => act("POST", `/v1/events/${id}/publish`) }, "Publish") : null,
      event.status === "published" ? el("a", { href: `#/door/${id}` }, "Open the door screen") : null,
      event.status !== "cancelled" ? el("button", {
        class: "danger",
        onclick: () => confirm(`Cancel “${event.name}”? Its tickets stop admitting.`) && act("POST", `/v1/events/${id}/cancel`),
      }, "Cancel event") : null),
    message,
  );

  // Live stats, as a chart that moves.
  const stats = el("section", { class: "panel", "aria-labelledby": "stats-h" }, el("h2", { id: "stats-h" }, "Sales and check-in"));
  const chart = el("div");
  stats.append(chart);
  const draw = (s) => {
    const bars = [["Sold", s.sold, "#0b57b0"], ["Held", s.held, "#7a4b00"], ["Remaining", s.remaining, "#4a5260"], ["Checked in", s.checked_in, "#136c34"]];
    const max = Math.max(1, ...bars.map((b) => b[1]));
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 400 170");
    svg.setAttribute("class", "chart");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", bars.map(([label, value]) => `${label}: ${value}`).join(", "));
    bars.forEach(([label, value, color], i) => {
      const y = 10 + i * 40;
      const width = Math.round((value / max) * 230);
      const rect = document.createElementNS(ns, "rect");
      Object.entries({ x: 100, y, width: Math.max(width, 2), height: 26, fill: color }).forEach(([k, v]) => rect.setAttribute(k, v));
      const name = document.createElementNS(ns, "text");
      Object.entries({ x: 0, y: y + 18 }).forEach(([k, v]) => name.setAttribute(k, v));
      name.textContent = label;
      const count = document.createElementNS(ns, "text");
      Object.entries({ x: 106 + Math.max(width, 2), y: y + 18 }).forEach(([k, v]) => count.setAttribute(k, v));
      count.textContent = String(value);
      svg.append(rect, name, count);
    });
    chart.replaceChildren(svg, el("p", { class: "muted", "data-stats": "" }, `Sold ${s.sold}, held ${s.held}, remaining ${s.remaining}, checked in ${s.checked_in}.`));
  };
  const redraw = async () => {
    const now = await api("GET", `/v1/events/${id}/stats`).catch(() => null);
    if (now?.status !== 200) return;
    draw(now.body);
    for (const type of now.body.ticket_types ?? []) {
      const sold = main.querySelector(`[data-sold="${type.ticket_type_id}"]`);
      if (sold) sold.textContent = `${type.sold} sold`;
    }
  };
  await redraw();
  onFrame((frame) => {
    if (frame.event_id !== id) return;
    if (frame.type === "event.updated" && frame.counts) draw({ ...frame.counts, remaining: frame.remaining });
    if (frame.type === "ticket.checked_in") redraw();
  });
  // Uploads from doors that were offline move it too.
  every(5000, redraw);
  main.append(stats);

  // Details and ticket types.
  const details = el("form", {
    class: "stack panel",
    "aria-labelledby": "edit-h",
    onsubmit: (e) => {
      e.preventDefault();
      const data = new FormData(details);
      act("PATCH", `/v1/events/${id}`, { name: data.get("name"), venue: data.get("venue"), capacity: Number(data.get("capacity")) });
    },
  },
    el("h2", { id: "edit-h" }, "Details"),
    el("label", {}, "Name", el("input", { name: "name", value: event.name, required: true, maxlength: 200 })),
    el("label", {}, "Venue", el("input", { name: "venue", value: event.venue, required: true, maxlength: 200 })),
    el("label", {}, "Capacity", el("input", { name: "capacity", type: "number", min: 1, value: event.capacity, inputmode: "numeric" })),
    el("button", { type: "submit" }, "Save details"));
  const typeRows = el("tbody");
  for (const type of event.ticket_types) {
    const path = `/v1/events/${id}/ticket-types/${type.ticket_type_id}`;
    const quota = el("input", { type: "number", min: 1, value: type.quota, inputmode: "numeric", "aria-label": `Quota of ${type.name}` });
    typeRows.append(el("tr", {},
      el("th", { scope: "row" }, type.name),
      el("td", {}, money(type.price_minor, type.currency)),
      el("td", { "data-sold": type.ticket_type_id }, `${type.sold} sold`),
      el("td", {}, el("form", {
        class: "row",
        onsubmit: (e) => {
          e.preventDefault();
          act("PATCH", path, { quota: Number(quota.value) });
        },
      }, quota, el("button", { type: "submit", class: "secondary" }, `Save quota of ${type.name}`))),
      el("td", {}, el("button", {
        class: "secondary",
        onclick: () => act("PATCH", path, { closed: !type.closed }),
      }, type.closed ? `Reopen ${type.name}` : `Close ${type.name}`))));
  }
  const newType = el("form", {
    class: "stack",
    "aria-labelledby": "type-h",
    onsubmit: (e) => {
      e.preventDefault();
      const data = new FormData(newType);
      act("POST", `/v1/events/${id}/ticket-types`, {
        name: data.get("name"),
        price_minor: Math.round(Number(data.get("price")) * 100),
        currency: data.get("currency"),
        quota: Number(data.get("quota")),
      });
    },
  },
    el("h3", { id: "type-h" }, "Add a ticket type"),
    el("label", {}, "Name", el("input", { name: "name", required: true })),
    el("label", {}, "Price", el("input", { name: "price", type: "number", min: 0, step: "0.01", value: 0, inputmode: "decimal" })),
    el("label", {}, "Currency", el("input", { name: "currency", value: "EUR", pattern: "[A-Z]{3}", maxlength: 3, required: true })),
    el("label", {}, "Quota", el("input", { name: "quota", type: "number", min: 1, value: 10, required: true, inputmode: "numeric" })),
    el("button", { type: "submit" }, "Add ticket type"));
  main.append(details, el("section", { class: "panel", "aria-labelledby": "types-h" },
    el("h2", { id: "types-h" }, "Ticket types"),
    el("table", {}, el("thead", {}, el("tr", {}, ["Type", "Price", "Sales", "Quota", "Sales open"].map((h) => el("th", { scope: "col" }, h)))), typeRows),
    newType));

  // Door staff.
  const staff = await api("GET", `/v1/events/${id}/staff`);
  const staffList = el("ul", {});
  for (const member of staff.body?.items ?? []) {
    staffList.append(el("li", { class: "row" }, el("span", {}, member.user_id),
      el("button", { class: "secondary", onclick: () => act("DELETE", `/v1/events/${id}/staff/${encodeURIComponent(member.user_id)}`) }, `Revoke ${member.user_id}`)));
  }
  const grant = el("input", { name: "user_id", required: true, maxlength: 128 });
  main.append(el("section", { class: "panel", "aria-labelledby": "staff-h" },
    el("h2", { id: "staff-h" }, "Door staff"),
    staffList.children.length ? staffList : el("p", { class: "muted" }, "No one yet."),
    el("form", {
      class: "row",
      onsubmit: (e) => {
        e.preventDefault();
        act("POST", `/v1/events/${id}/staff`, { user_id: grant.value.trim() });
      },
    }, el("label", {}, "User id", grant), el("button", { type: "submit" }, "Grant door access"))));
}

// ---- The door ------------------------------------------------------------

/** base64url → bytes. */
const bytes = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=")), (c) => c.charCodeAt(0));

/** Checks a ticket code with the event's published keys alone. */
async function verifyOffline(code, eventId, jwks) {
  const [head, body, signature] = code.split(".");
  if (!signature) return null;
  try {
    const header = JSON.parse(new TextDecoder().decode(bytes(head)));
    const jwk = (jwks?.keys ?? []).find((key) => key.kid === header.kid);
    if (!jwk || header.alg !== "EdDSA") return null;
    const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
    const genuine = await crypto.subtle.verify({ name: "Ed25519" }, key, bytes(signature), new TextEncoder().encode(`${head}.${body}`));
    if (!genuine) return null;
    const payload = JSON.parse(new TextDecoder().decode(bytes(body)));
    return payload.event_id === eventId ? payload : null;
  } catch {
    return null;
  }
}

async function door(main, id) {
  const storeKey = `eventsys.door.${id}`;
  const saved = JSON.parse(localStorage.getItem(storeKey) ?? "{}");
  const state = { jwks: saved.jwks ?? null, pending: saved.pending ?? [], seen: saved.seen ?? {}, name: saved.name ?? "" };
  const persist = () => localStorage.setItem(storeKey, JSON.stringify(state));
  try {
    const event = await api("GET", `/v1/events/${id}`);
    if (event.status === 200) state.name = event.body.name;
    const keys = await api("GET", `/v1/events/${id}/verification-key`);
    if (keys.status === 200) state.jwks = keys.body;
    persist();
  } catch (e) {
    if (!(e instanceof Offline)) throw e;
  }
  live.follow(id);
  const verdict = el("div", { class: "verdict idle", role: "status", "aria-live": "assertive" }, "Ready to scan");
  const count = el("span", { class: "count", id: "checked-in" }, "–");
  const pending = el("p", { role: "status" });
  const gate = el("input", { name: "gate", value: localStorage.getItem("eventsys.gate") ?? "Main", maxlength: 100 });
  const code = el("input", { name: "code", required: true, autocomplete: "off", spellcheck: "false", autocapitalize: "off" });
  const upload = el("button", { class: "secondary", onclick: () => sync() }, "Upload offline scans");
  const show = (kind, text, detail) => {
    verdict.className = `verdict ${kind}`;
    verdict.replaceChildren(text, detail ? el("small", {}, detail) : "");
  };
  const showPending = () => {
    pending.textContent = state.pending.length ? `${plural(state.pending.length, "scan", "scans")} made offline, not uploaded yet.` : "";
    upload.hidden = !state.pending.length;
  };
  const refreshCount = async () => {
    const stats = await api("GET", `/v1/events/${id}/stats`).catch(() => null);
    if (stats?.status === 200) count.textContent = String(stats.body.checked_in);
  };

  const scan = async (text) => {
    const value = text.trim();
    if (!value) return;
    localStorage.setItem("eventsys.gate", gate.value);
    let answer;
    try {
      if (!navigator.onLine) throw new Offline("offline");
      answer = await api("POST", `/v1/events/${id}/checkins`, { code: value, gate: gate.value || undefined });
    } catch (e) {
      if (!(e instanceof Offline)) throw e;
      return scanOffline(value);
    }
    const body = answer.body ?? {};
    if (answer.status === 200) {
      show("valid", "VALID", `Checked in ${clock(body.checked_in_at)}${body.gate ? ` at ${body.gate}` : ""}`);
      refreshCount();
    } else if (body.code === "already_checked_in") {
      show("already", "ALREADY CHECKED IN", `First at ${clock(body.first_checked_in_at)}${body.first_gate ? `, gate ${body.first_gate}` : ""}`);
    } else {
      show("invalid", "INVALID", body.detail ?? body.code ?? `refused (${answer.status})`);
    }
  };
  const scanOffline = async (value) => {
    const payload = await verifyOffline(value, id, state.jwks);
    if (!payload) return show("invalid", "INVALID", "Not a ticket for this event");
    const first = state.seen[payload.ticket_id];
    if (first) return show("already", "ALREADY CHECKED IN", `Scanned here at ${clock(first)} (offline)`);
    const at = new Date().toISOString();
    state.seen[payload.ticket_id] = at;
    state.pending.push({ code: value, scanned_at: at });
    persist();
    show("valid", "VALID", "Checked offline; uploaded when back online");
    showPending();
  };
  const sync = async () => {
    if (!state.pending.length) return;
    const scans = state.pending.slice(0, 200);
    let answer;
    try {
      answer = await api("POST", `/v1/events/${id}/checkins/batch`, { gate: gate.value || "Main", scans });
    } catch {
      return;
    }
    if (answer.status !== 200) return (pending.textContent = `Upload refused: ${problem(answer)}`);
    state.pending.splice(0, scans.length);
    persist();
    const results = answer.body.results ?? [];
    const admitted = results.filter((r) => r.status === "checked_in").length;
    showPending();
    pending.textContent = `Uploaded ${plural(results.length, "scan", "scans")}: ${admitted} checked in, ${results.length - admitted} refused or already in.`;
    refreshCount();
  };

  main.append(
    el("h1", {}, `Door: ${state.name || "event"}`),
    el("p", {}, "Checked in: ", count),
    verdict,
    el("form", {
      class: "stack",
      onsubmit: async (e) => {
        e.preventDefault();
        await scan(code.value);
        code.value = "";
        code.focus();
      },
    }, el("label", {}, "Ticket code", code), el("label", {}, "Gate", gate), el("button", { type: "submit" }, "Check in")),
    pending,
    upload,
  );
  if ("BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia) {
    const video = el("video", { muted: true, playsinline: true, "aria-label": "Camera" });
    const start = el("button", {
      class: "secondary",
      onclick: async () => {
        const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).catch(() => null);
        if (!stream) return show("invalid", "NO CAMERA", "Enter the code instead");
        onLeave(() => stream.getTracks().forEach((t) => t.stop()));
        video.srcObject = stream;
        await video.play();
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        let last = "";
        every(300, async () => {
          const found = await detector.detect(video).catch(() => []);
          const value = found[0]?.rawValue;
          if (value && value !== last) {
            last = value;
            scan(value);
          }
        });
        start.remove();
      },
    }, "Scan with the camera");
    main.append(start, video);
  }
  showPending();
  refreshCount();
  const online = () => sync();
  window.addEventListener("online", online);
  onLeave(() => window.removeEventListener("online", online));
  onFrame((frame) => {
    if (frame.event_id !== id) return;
    if (frame.type === "event.updated" && frame.counts) count.textContent = String(frame.counts.checked_in);
    if (frame.type === "ticket.checked_in") refreshCount();
  });
  code.focus();
}

// ---- Start ---------------------------------------------------------------

window.addEventListener("hashchange", route);
live.connect();
route();
