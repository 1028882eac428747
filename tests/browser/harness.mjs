// Shared pieces of the browser tests: the real rollcall binary on a free
// loopback port, Debian's Chromium driven by playwright-core, and small helpers
// to open the classroom page as a user and read what it shows.
//
// Every wait is bounded, servers are stopped by their own PID only, and each
// server gets its own temporary data directory.

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '..', '..');
export const BINARY = resolve(process.env.ROLLCALL_BINARY || join(REPO, 'build', 'rollcall'));
export const CHROMIUM = process.env.ROLLCALL_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.ROLLCALL_ARTIFACTS || mkdtempSync(join(tmpdir(), 'rollcall-browser-'));

// Generous bounds: on a loaded 2-core machine a browser page can take seconds
// to load and a server seconds to create its log (fsync). Scale them all with
// ROLLCALL_TIMEOUT_SCALE (e.g. 2 under sanitizers).
const SCALE = Number(process.env.ROLLCALL_TIMEOUT_SCALE || 1);
const STARTUP_TIMEOUT_MS = 30000 * SCALE;
const STOP_GRACE_MS = 7000;
export const UI_TIMEOUT_MS = 15000 * SCALE; // how long the page may take to show a change

// The flags the brief of these tests asks for: a quiet, isolated headless browser.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

// One server process. flags: extra command-line flags, e.g. ['--chat-rate', '1'].
export class Server {
  constructor({ flags = [], anonymous = true, port = null, dataDir = null } = {}) {
    this.flags = flags;
    this.anonymous = anonymous;
    this.port = port;
    this.dataDir = dataDir || mkdtempSync(join(ARTIFACTS, 'data-'));
    this.logPath = join(this.dataDir, 'server.log');
    this.proc = null;
    this.exit = null;
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!existsSync(BINARY)) throw new Error(`no server binary at ${BINARY} (build it, or set ROLLCALL_BINARY)`);
    this.port = this.port || (await freePort());
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--threads', '2',
      '--data-dir', this.dataDir, ...this.flags];
    if (this.anonymous) args.push('--allow-anonymous');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROLLCALL_')));
    const log = createWriteStream(this.logPath, { flags: 'a' });
    this.proc = spawn(BINARY, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.pipe(log);
    this.proc.stderr.pipe(log);
    this.exited = new Promise((res) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        res(this.exit);
      });
    });
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exit) break;
      try {
        const r = await fetch(`${this.origin}/healthz`);
        if (r.status === 200) return this;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    await this.stop();
    throw new Error(`server did not become healthy; log:\n${this.log()}`);
  }

  // SIGTERM, then SIGKILL after the grace; resolves with the exit status.
  async stop() {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
    return this.exit;
  }

  log() {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : '';
  }
}

export async function launchBrowser() {
  // launch() gives the browser a fresh temporary --user-data-dir of its own and
  // removes it on close; each newContext() below is a separate user with
  // separate storage.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

// A page of its own browser context (its own storage: another user), with
// every uncaught page error and console error recorded in page.problems.
export async function openUserPage(browser, url, { viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.problems = [];
  page.sockets = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
  });
  page.on('websocket', (ws) => page.sockets.push(ws.url()));
  await page.goto(url);
  return page;
}

// Opens the page and joins `room` through the join form as `name`.
export async function joinAs(browser, server, room, name) {
  const page = await openUserPage(browser, `${server.origin}/`);
  await page.fill('#join-room', room);
  await page.fill('#join-name', name);
  await page.click('#join-form button[type="submit"]');
  await page.waitForSelector('#conn-state[data-state="open"]');
  await page.waitForSelector('.seat.me');
  return page;
}

export async function selfId(page) {
  return page.getAttribute('.seat.me', 'data-user-id');
}

// The member list as [{id, text}], in display order.
export async function memberList(page) {
  return page.$$eval('#members li', (items) => items.map((li) => ({ id: li.dataset.userId, text: li.textContent })));
}

export async function waitForMemberIds(page, ids, present = true) {
  await page.waitForFunction(
    ([want, on]) => {
      const have = new Set([...document.querySelectorAll('#members li')].map((li) => li.dataset.userId));
      return want.every((id) => have.has(id) === on);
    },
    [ids, present],
  );
}

export async function chatTexts(page) {
  return page.$$eval('#chat-log .msg .text', (ps) => ps.map((p) => p.textContent));
}

export async function sendChat(page, text) {
  await page.fill('#chat-input', text);
  await page.press('#chat-input', 'Enter');
}

export async function screenshot(page, name) {
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

// An HS256 JWT (PROTOCOL section 2) signed with `secret`.
export function makeJwt(secret, claims) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${sig}`;
}

export function writeSecret(dir, secret) {
  const path = join(dir, 'jwt.secret');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return path;
}
