// The rest of what a class does with the page, each on a server with the
// flags that make it happen: a teacher signing in with a token, chat history
// paging, the chat rate limit, the capacity queue, and a server restart that
// the page rides out by reconnecting and resuming the chat.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  ARTIFACTS, Server, chatTexts, joinAs, launchBrowser, makeJwt, openUserPage, selfId, sendChat,
  waitForMemberIds, writeSecret,
} from './harness.mjs';

const RECONNECT_TIMEOUT_MS = 45000; // backoff tops out at 15 s between tries

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function stopped(server) {
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `server exit; log:\n${server.log()}`);
}

describe('a teacher with a token', () => {
  let server;
  let token;
  const secret = 'correct horse battery staple';

  before(async () => {
    const dir = mkdtempSync(join(ARTIFACTS, 'secret-'));
    server = await new Server({ flags: ['--jwt-secret-file', writeSecret(dir, secret)] }).start();
    const now = Math.floor(Date.now() / 1000);
    token = makeJwt(secret, { sub: 't-frizzle', name: 'Ms Frizzle', role: 'teacher', rooms: ['bus'], exp: now + 600 });
  });
  after(() => stopped(server));

  it('joins with a ticket, never with the token in a URL, and can lower every hand', async () => {
    const teacher = await openUserPage(browser, `${server.origin}/?room=bus&token=${token}`);
    await teacher.waitForSelector('#conn-state[data-state="open"]');
    assert.ok(!teacher.url().includes(token), 'the token is taken out of the address bar');
    assert.equal(teacher.sockets.length, 1);
    assert.match(teacher.sockets[0], /^ws:\/\/127\.0\.0\.1:\d+\/ws\/rooms\/bus\?ticket=/);
    assert.ok(!teacher.sockets[0].includes(token));
    assert.equal(await selfId(teacher), 't-frizzle');
    await teacher.waitForSelector('#lower-all', { state: 'visible' });
    assert.match(await teacher.textContent('#members li[data-user-id="t-frizzle"]'), /Ms Frizzle.*teacher/);

    const student = await joinAs(browser, server, 'bus', 'Arnold');
    assert.equal(await student.isVisible('#lower-all'), false);
    await student.click('#hand');
    const studentId = await selfId(student);
    await teacher.waitForSelector(`#hand-queue li[data-user-id="${studentId}"]`);
    await teacher.click('#lower-all');
    await student.waitForFunction(() => document.querySelectorAll('#hand-queue li').length === 0);
    assert.equal(await student.getAttribute('#hand', 'aria-pressed'), 'false');
    assert.deepEqual([...teacher.problems, ...student.problems], []);
    await teacher.context().close();
    await student.context().close();
  });

  it('says so when the token is refused', async () => {
    const forged = makeJwt('not the secret', { sub: 'x', rooms: ['*'], exp: Math.floor(Date.now() / 1000) + 60 });
    const page = await openUserPage(browser, `${server.origin}/?room=bus&token=${forged}`);
    await page.waitForSelector('#conn-state[data-state="closed"]');
    await page.waitForSelector('#join', { state: 'visible' });
    assert.match(await page.textContent('#toast'), /signature|token|UNAUTHORIZED/i);
    assert.equal(page.sockets.length, 0, 'no WebSocket without a ticket');
    await page.context().close();
  });
});

describe('chat history', () => {
  let server;
  before(async () => {
    server = await new Server({ flags: ['--history-on-join', '3'] }).start();
  });
  after(() => stopped(server));

  it('shows the latest messages on join and loads older ones on request', async () => {
    const ada = await joinAs(browser, server, 'history', 'Ada');
    const sent = ['one', 'two', 'three', 'four', 'five', 'six'];
    for (const text of sent) {
      await sendChat(ada, text);
      await ada.waitForFunction((t) => [...document.querySelectorAll('#chat-log .text')].some((p) => p.textContent === t), text);
    }
    const cy = await joinAs(browser, server, 'history', 'Cy');
    await cy.waitForFunction(() => document.querySelectorAll('#chat-log .msg').length === 3);
    assert.deepEqual(await chatTexts(cy), ['four', 'five', 'six']);
    await cy.click('#load-older');
    await cy.waitForFunction(() => document.querySelectorAll('#chat-log .msg').length === 6);
    assert.deepEqual(await chatTexts(cy), sent);
    await cy.waitForSelector('#load-older', { state: 'hidden' });
    assert.deepEqual([...ada.problems, ...cy.problems], []);
    await ada.context().close();
    await cy.context().close();
  });
});

describe('the chat rate limit', () => {
  let server;
  before(async () => {
    server = await new Server({ flags: ['--chat-rate', '1'] }).start();
  });
  after(() => stopped(server));

  it('shows RATE_LIMITED and gives the refused text back', async () => {
    const ada = await joinAs(browser, server, 'fast', 'Ada');
    // A burst of twice the rate passes; the next one in the same second does not.
    for (const text of ['a', 'b', 'c', 'd']) await sendChat(ada, text);
    await ada.waitForFunction(() => document.getElementById('chat-error').textContent.includes('RATE_LIMITED'));
    assert.match(await ada.textContent('#chat-error'), /too fast/);
    assert.ok(['c', 'd'].includes(await ada.inputValue('#chat-input')));
    await ada.waitForFunction(() => document.querySelectorAll('#chat-log .msg').length === 2);
    assert.deepEqual(await chatTexts(ada), ['a', 'b']);
    await ada.context().close();
  });
});

describe('a full room', () => {
  let server;
  before(async () => {
    server = await new Server({ flags: ['--room-capacity', '1'] }).start();
  });
  after(() => stopped(server));

  it('queues a newcomer with its position and admits it when a seat frees', async () => {
    const ada = await joinAs(browser, server, 'small', 'Ada');
    const bo = await openUserPage(browser, `${server.origin}/?room=small&name=Bo`);
    await bo.waitForSelector('#queued', { state: 'visible' });
    assert.equal(await bo.textContent('#queue-position'), '1');
    assert.equal(await bo.getAttribute('#conn-state', 'data-state'), 'queued');
    await ada.click('#leave');
    await bo.waitForSelector('#conn-state[data-state="open"]');
    await bo.waitForSelector('#queued', { state: 'hidden' });
    assert.equal(await bo.locator('#members li').count(), 1);
    await ada.context().close();
    await bo.context().close();
  });
});

describe('a server restart', () => {
  let server;
  before(async () => {
    server = await new Server().start();
  });
  after(() => stopped(server));

  it('reconnects with backoff, keeps the members and resumes chat without duplicates', async () => {
    const ada = await joinAs(browser, server, 'restart', 'Ada');
    const bo = await joinAs(browser, server, 'restart', 'Bo');
    const ids = [await selfId(ada), await selfId(bo)];
    await sendChat(ada, 'before the restart');
    await bo.waitForFunction(() => document.querySelectorAll('#chat-log .msg').length === 1);
    const seat = await ada.$eval('.seat.me', (s) => [s.dataset.x, s.dataset.y]);
    assert.notDeepEqual(seat, ['0', '0']);

    await stopped(server);
    await ada.waitForSelector('#conn-state[data-state="reconnecting"]');
    server = await new Server({ port: server.port, dataDir: server.dataDir, flags: server.flags }).start();
    for (const page of [ada, bo]) {
      await page.waitForSelector('#conn-state[data-state="open"]', { timeout: RECONNECT_TIMEOUT_MS });
      await waitForMemberIds(page, ids);
    }
    // The same identities came back: the page reconnected as the same users,
    // and put back the seat the new server had never heard of.
    assert.deepEqual([await selfId(ada), await selfId(bo)], ids);
    await bo.waitForFunction(
      ([id, x, y]) => {
        const s = document.querySelector(`.seat[data-user-id="${id}"]`);
        return s?.dataset.x === x && s?.dataset.y === y;
      },
      [ids[0], ...seat],
    );
    const resumed = bo.sockets[bo.sockets.length - 1];
    assert.match(resumed, /[?&]since=1(&|$)/, resumed);
    await sendChat(bo, 'after the restart');
    await ada.waitForFunction(() => document.querySelectorAll('#chat-log .msg').length === 2);
    assert.deepEqual(await chatTexts(ada), ['before the restart', 'after the restart']);
    assert.deepEqual(await chatTexts(bo), ['before the restart', 'after the restart']);
    // Only the refused connection attempts during the outage may be logged.
    const unexpected = [...ada.problems, ...bo.problems].filter((p) => !p.includes('WebSocket connection to'));
    assert.deepEqual(unexpected, []);
    await ada.context().close();
    await bo.context().close();
  });
});
