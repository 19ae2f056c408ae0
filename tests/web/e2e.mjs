// Browser end-to-end test of the web client, in headless Chromium.
//
//   BASE_URL=http://127.0.0.1:8080 node tests/web/e2e.mjs
//
// Two users in two browser contexts, one desktop-sized and one
// phone-sized: register, become contacts, see each other's presence,
// exchange messages with read ticks, send an image that renders on the
// other side, join a room and talk there, reload and stay logged in, log
// out while the other sees them go offline. axe-core checks the login and
// chat screens. Everything is found the way a screen reader user would:
// by role and accessible name.
//
// Environment: BASE_URL (required); CHROMIUM (default /usr/bin/chromium);
// ARTIFACTS (default target/web-e2e): screenshots of every page when a
// step fails; SCREENSHOTS (optional): a directory to save the README's
// screenshots into.

import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const BASE = process.env.BASE_URL;
if (!BASE) throw new Error('BASE_URL is not set');
const ARTIFACTS = process.env.ARTIFACTS || 'target/web-e2e';
const TIMEOUT = 15000;
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
// A 2×2 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4zwAE/xkgFAAb8gP91pbyKwAAAABJRU5ErkJggg==',
  'base64',
);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const pages = [];
const problems = [];
let step = 'start';

async function user(name, viewport, label) {
  const context = await browser.newContext({ viewport, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text())) {
      problems.push(`${name}: ${m.text()}`);
    }
  });
  pages.push({ name, page, label });
  await page.goto(BASE);
  return page;
}

async function run(label, f) {
  step = label;
  console.log(`- ${label}`);
  await f();
}

const field = (page, label) => page.getByLabel(label, { exact: true });
const button = (page, name) => page.getByRole('button', { name, exact: true });
const startsWith = (s) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`);
const contact = (page, name) => page.getByRole('button', { name: startsWith(name) }).first();
const messages = (page) => page.getByRole('list', { name: 'Messages' });

async function register(page, name) {
  await field(page, 'Username').fill(name);
  await field(page, 'Password').fill('correct horse battery');
  await button(page, 'Create account').click();
  await button(page, 'Log in').click();
  await button(page, 'Log out').waitFor();
}

/// Opens a conversation from the list (on a phone, going back to it first).
async function open(page, name) {
  const back = button(page, 'Back');
  if (await back.isVisible()) await back.click();
  await contact(page, name).click();
  await field(page, 'Message').waitFor();
}

async function say(page, text) {
  await field(page, 'Message').fill(text);
  await field(page, 'Message').press('Enter');
}

async function seen(page, text) {
  await messages(page).getByRole('listitem').filter({ hasText: text }).first().waitFor();
}

async function axe(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) throw new Error(`${what}: accessibility violations: ${JSON.stringify(bad)}`);
}

async function shoot(name) {
  const dir = process.env.SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  for (const p of pages) await p.page.screenshot({ path: join(dir, `${name}-${p.label}.png`) });
}

try {
  const alice = await user('alice', { width: 1280, height: 800 }, 'desktop');
  const bob = await user('bob', { width: 390, height: 844 }, 'phone');

  await run('the login screen passes axe', () => axe(alice, 'login screen'));
  await run('wrong password is explained', async () => {
    await field(alice, 'Username').fill('nobody');
    await field(alice, 'Password').fill('not the password');
    await button(alice, 'Log in').click();
    await alice.getByRole('alert').filter({ hasText: /wrong username or password/i }).waitFor();
  });
  await run('both register and log in', async () => {
    await register(alice, 'alice');
    await register(bob, 'bob');
  });
  await run('alice asks bob; bob accepts', async () => {
    await field(alice, 'Add contact').fill('bob');
    await button(alice, 'Add').click();
    await bob.getByRole('button', { name: /^Accept/ }).click();
  });
  await run('each sees the other online', async () => {
    await alice.getByRole('button', { name: /^bob\b.*online/ }).waitFor();
    await bob.getByRole('button', { name: /^alice\b.*online/ }).waitFor();
  });
  await run('a message goes both ways and is read', async () => {
    await open(alice, 'bob');
    await say(alice, 'hello bob');
    await open(bob, 'alice');
    await seen(bob, 'hello bob');
    const mine = messages(alice).getByRole('listitem').filter({ hasText: 'hello bob' });
    await mine.getByLabel('read', { exact: true }).waitFor();
    await say(bob, 'hi alice');
    await seen(alice, 'hi alice');
  });
  await run('an image renders on the other side', async () => {
    await alice.getByLabel('Choose file').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: PNG });
    const img = bob.getByRole('img', { name: 'dot.png' });
    await img.waitFor();
    await bob.waitForFunction(
      (el) => el && el.complete && el.naturalWidth === 2,
      await img.elementHandle(),
    );
  });
  await shoot('web');
  await run('the chat screen passes axe', () => axe(alice, 'chat screen'));
  await run('alice creates a room; bob finds it by topic and joins', async () => {
    await button(alice, 'Rooms').click();
    await field(alice, 'Room name').fill('lobby');
    await field(alice, 'Topic').fill('General chat');
    await button(alice, 'Create room').click();
    await field(alice, 'Message').waitFor();
    const back = button(bob, 'Back');
    if (await back.isVisible()) await back.click();
    await button(bob, 'Rooms').click();
    await field(bob, 'Search rooms').fill('general');
    await button(bob, 'Join lobby').click();
    await field(bob, 'Message').waitFor();
    await say(bob, 'hello room');
    await seen(alice, 'hello room');
  });
  await run('bob reloads and stays logged in', async () => {
    await bob.reload();
    await button(bob, 'Log out').waitFor();
    await contact(bob, 'alice').waitFor();
  });
  await run('alice logs out; bob sees her offline', async () => {
    await button(alice, 'Log out').click();
    await button(alice, 'Log in').waitFor();
    await bob.getByRole('button', { name: /^alice\b.*offline/ }).waitFor();
  });
  if (problems.length) throw new Error(`browser reported:\n${problems.join('\n')}`);
  console.log('web client: every step passed');
} catch (e) {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const p of pages) {
    await p.page.screenshot({ path: join(ARTIFACTS, `failed-${p.name}.png`), fullPage: true }).catch(() => {});
  }
  console.error(`FAILED at "${step}": ${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  console.error(`screenshots in ${ARTIFACTS}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
