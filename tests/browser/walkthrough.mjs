// The web page end to end, in headless Chromium, against a running
// eventsys (tests/it/browser.rs starts it): an organizer creates and
// publishes an event; one attendee buys on a phone while a second watches
// the remaining seats drop live; a hold is confirmed; a third joins the
// waiting list and takes the seat that comes free; the door checks a
// ticket in, refuses the second scan, scans offline and uploads. Every
// main screen is checked with axe-core (WCAG 2.2 AA) and photographed.
//
// EVENTSYS_BASE_URL: the API; EVENTSYS_CHROMIUM: the browser;
// EVENTSYS_SCREENSHOTS: where the pictures go.

import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const base = process.env.EVENTSYS_BASE_URL;
const shots = process.env.EVENTSYS_SCREENSHOTS;
mkdirSync(shots, { recursive: true });

const WAIT = { timeout: 20000 };
let checkedScreens = 0;

function step(text) {
  console.log(`step: ${text}`);
}

async function photograph(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** Fails on any WCAG 2.2 A or AA violation axe-core finds on the page. */
async function accessible(page, screen) {
  // Evaluated through the debugging protocol: the page's own policy allows
  // no inline script, and is left as it is.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }),
  );
  if (result.violations.length) {
    const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join("; ")}`);
    throw new Error(`${screen} is not accessible:\n${found.join("\n")}`);
  }
  checkedScreens += 1;
}

async function signIn(context, user, roles) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`page error (${user}): ${e.message}`));
  await page.goto(`${base}/#/signin`);
  await page.getByLabel("User id").fill(user);
  for (const role of ["attendee", "organizer", "staff"]) {
    const box = page.locator(`input[name=role][value=${role}]`);
    if (roles.includes(role)) await box.check();
    else await box.uncheck();
  }
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText(`Signed in as ${user}`).waitFor(WAIT);
  return page;
}

/** The user's own token, as the page keeps it. */
const tokenOf = (page) => page.evaluate(() => sessionStorage.getItem("eventsys.token"));

/** The user's tickets with their codes and type names, read through the
 *  API with the page's own token. */
async function codesOf(page) {
  const token = await tokenOf(page);
  const headers = { authorization: `Bearer ${token}` };
  const mine = await (await fetch(`${base}/v1/me/tickets?limit=50`, { headers })).json();
  const codes = [];
  for (const ticket of mine.items) {
    const full = await (await fetch(`${base}/v1/tickets/${ticket.ticket_id}`, { headers })).json();
    const event = await (await fetch(`${base}/v1/events/${ticket.event_id}`, { headers })).json();
    const type = event.ticket_types.find((t) => t.ticket_type_id === ticket.ticket_type_id);
    codes.push({ id: ticket.ticket_id, status: ticket.status, code: full.code, type: type?.name });
  }
  return codes;
}

const browser = await chromium.launch({
  executablePath: process.env.EVENTSYS_CHROMIUM,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});
try {
  const desk = { viewport: { width: 1280, height: 900 } };
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

  step("the sign-in page");
  const first = await (await browser.newContext(desk)).newPage();
  await first.goto(`${base}/`);
  await first.getByRole("heading", { name: "Sign in" }).waitFor(WAIT);
  await accessible(first, "sign-in");
  await photograph(first, "sign-in");

  step("an organizer creates a draft, adds a paid type, grants door staff and publishes");
  const olga = await signIn(await browser.newContext(desk), "olga", ["organizer"]);
  await olga.getByRole("heading", { name: "Organize" }).waitFor(WAIT);
  await olga.getByLabel("Name", { exact: true }).first().fill("Browser Fest");
  await olga.getByLabel("Venue").fill("Hall 2");
  await olga.getByLabel("Capacity").fill("3");
  await olga.getByRole("button", { name: "Save as draft" }).click();
  await olga.waitForURL(/#\/organize\/[\w-]+$/, WAIT);
  const eventId = olga.url().split("/").pop();
  await olga.locator("#event-status", { hasText: "draft" }).waitFor(WAIT);
  const addType = olga.locator("form", { has: olga.getByRole("heading", { name: "Add a ticket type" }) });
  await addType.getByLabel("Name").fill("VIP");
  await addType.getByLabel("Price").fill("20");
  await addType.getByLabel("Quota").fill("1");
  await addType.getByRole("button", { name: "Add ticket type" }).click();
  await olga.getByRole("rowheader", { name: "VIP" }).waitFor(WAIT);
  await olga.getByLabel("Quota of General admission").fill("2");
  await olga.getByRole("button", { name: "Save quota of General admission" }).click();
  await olga.getByLabel("Quota of General admission").and(olga.locator("[value='2']")).waitFor(WAIT);
  const staff = olga.locator("section", { has: olga.getByRole("heading", { name: "Door staff" }) });
  await staff.getByLabel("User id").fill("dan");
  await staff.getByRole("button", { name: "Grant door access" }).click();
  await olga.getByRole("button", { name: "Revoke dan" }).waitFor(WAIT);
  await olga.getByRole("button", { name: "Publish" }).click();
  await olga.locator("#event-status", { hasText: "published" }).waitFor(WAIT);

  step("one attendee buys on a phone while another watches the seats go");
  const ann = await signIn(await browser.newContext(phone), "ann", ["attendee"]);
  const bob = await signIn(await browser.newContext(desk), "bob", ["attendee"]);
  await bob.goto(`${base}/#/events`);
  await bob.getByRole("link", { name: "Browser Fest" }).click();
  await bob.locator("#remaining", { hasText: "3 seats left" }).waitFor(WAIT);
  await accessible(bob, "event page");
  await ann.goto(`${base}/#/events/${eventId}`);
  await ann.getByLabel("Ticket type").selectOption({ index: 0 });
  await ann.getByRole("button", { name: "Buy" }).click();
  await ann.getByText("Confirmed: 1 ticket.").waitFor(WAIT);
  await bob.locator("#remaining", { hasText: "2 seats left" }).waitFor(WAIT);
  await photograph(ann, "attendee-phone");

  step("a hold is shown counting down, then confirmed");
  await ann.getByLabel("Ticket type").selectOption({ index: 1 });
  await ann.getByRole("button", { name: "Buy" }).click();
  await ann.getByText("Your seats are held for").waitFor(WAIT);
  await accessible(ann, "a hold");
  await photograph(ann, "hold");
  await ann.getByRole("button", { name: "Confirm and pay" }).click();
  await ann.getByText("Paid and confirmed.").waitFor(WAIT);
  await bob.locator("#remaining", { hasText: "1 seat left" }).waitFor(WAIT);

  step("the last seat goes; a third attendee joins the waiting list");
  await bob.getByRole("button", { name: "Buy" }).click();
  await bob.getByText("Confirmed: 1 ticket.").waitFor(WAIT);
  await bob.locator("#remaining", { hasText: "0 seats left" }).waitFor(WAIT);
  const cat = await signIn(await browser.newContext(desk), "cat", ["attendee"]);
  await cat.goto(`${base}/#/events/${eventId}`);
  await cat.getByRole("button", { name: "Join the waiting list" }).click();
  await cat.getByText("You are number 1 in line.").waitFor(WAIT);

  step("a ticket given back is offered to the first in line, who confirms it");
  await ann.goto(`${base}/#/tickets`);
  await ann.locator(".ticket").first().waitFor(WAIT);
  await accessible(ann, "my tickets");
  await photograph(ann, "tickets-phone");
  const annCodes = await codesOf(ann);
  ann.once("dialog", (dialog) => dialog.accept());
  await ann.getByRole("button", { name: "Give back your General admission ticket" }).click();
  await ann.getByText("Cancelled").first().waitFor(WAIT);
  await cat.getByText("A seat is offered to you.").waitFor(WAIT);
  await cat.getByRole("button", { name: "Confirm and pay" }).click();
  await cat.getByText(/Paid and confirmed\.|The seat offered to you is yours\./).first().waitFor(WAIT);

  step("the door checks a ticket in and refuses the second scan");
  const dan = await signIn(await browser.newContext(phone), "dan", ["staff"]);
  await dan.goto(`${base}/#/door/${eventId}`);
  await dan.getByRole("heading", { name: "Door: Browser Fest" }).waitFor(WAIT);
  const bobCode = (await codesOf(bob))[0].code;
  await dan.getByLabel("Ticket code").fill(bobCode);
  await dan.getByRole("button", { name: "Check in" }).click();
  await dan.locator(".verdict.valid").waitFor(WAIT);
  await photograph(dan, "door-valid");
  await dan.getByLabel("Ticket code").fill(bobCode);
  await dan.getByRole("button", { name: "Check in" }).click();
  await dan.locator(".verdict.already").waitFor(WAIT);
  await accessible(dan, "the door");
  await photograph(dan, "door-already");
  await dan.getByLabel("Ticket code").fill("not-a-ticket");
  await dan.getByRole("button", { name: "Check in" }).click();
  await dan.locator(".verdict.invalid").waitFor(WAIT);
  await dan.locator("#checked-in", { hasText: "1" }).waitFor(WAIT);

  step("offline, the door checks with the event's key, then uploads");
  const vip = annCodes.find((t) => t.type === "VIP");
  await dan.context().setOffline(true);
  await dan.getByLabel("Ticket code").fill(vip.code);
  await dan.getByRole("button", { name: "Check in" }).click();
  await dan.locator(".verdict.valid", { hasText: "offline" }).waitFor(WAIT);
  await dan.getByText("1 scan made offline").waitFor(WAIT);
  await dan.getByLabel("Ticket code").fill(vip.code);
  await dan.getByRole("button", { name: "Check in" }).click();
  await dan.locator(".verdict.already").waitFor(WAIT);
  await photograph(dan, "door-offline");
  await dan.context().setOffline(false);
  await dan.getByText("Uploaded 1 scan: 1 checked in").waitFor(WAIT);
  await dan.locator("#checked-in", { hasText: "2" }).waitFor(WAIT);

  step("the organizer's chart has moved");
  await olga.locator("[data-stats]", { hasText: "checked in 2" }).waitFor(WAIT);
  await olga.locator("tr", { hasText: "General admission" }).locator("[data-sold]", { hasText: "2 sold" }).waitFor(WAIT);
  await olga.locator("tr", { hasText: "VIP" }).locator("[data-sold]", { hasText: "1 sold" }).waitFor(WAIT);
  await accessible(olga, "the organizer's event");
  await photograph(olga, "organizer");

  step("notifications arrived");
  await cat.goto(`${base}/#/notifications`);
  await cat.locator(".card").first().waitFor(WAIT);
  await accessible(cat, "notifications");

  await ann.goto(`${base}/#/events`);
  await ann.getByRole("link", { name: "Browser Fest" }).waitFor(WAIT);
  await accessible(ann, "the event list");
  await photograph(ann, "events-phone");
  console.log(`walkthrough passed; ${checkedScreens} screens met WCAG 2.2 AA`);
} catch (failure) {
  // What each page showed when it failed, in words and in pictures.
  let n = 0;
  for (const context of browser.contexts()) {
    for (const page of context.pages()) {
      n += 1;
      await page.screenshot({ path: join(shots, `failed-${n}.png`), fullPage: true }).catch(() => {});
      const text = await page.locator("body").innerText().catch(() => "");
      console.log(`--- page ${n} (${page.url()}):\n${text}`);
    }
  }
  throw failure;
} finally {
  await browser.close();
}
