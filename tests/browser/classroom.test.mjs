// Two students in one room, each in a browser context of their own, on the
// real server (--allow-anonymous): they see each other, seats, chat and raised
// hands travel from one page to the other, the page looks right (a screenshot
// is written), and closing a page makes its user leave the other's list.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  Server, chatTexts, joinAs, launchBrowser, memberList, screenshot, selfId, sendChat,
  waitForMemberIds,
} from './harness.mjs';

describe('two students in one classroom', () => {
  let server;
  let browser;
  let ada;
  let bo;
  let adaId;
  let boId;

  before(async () => {
    server = await new Server().start();
    browser = await launchBrowser();
    ada = await joinAs(browser, server, 'physics-101', 'Ada Lovelace');
    bo = await joinAs(browser, server, 'physics-101', 'Bo Diddley');
    adaId = await selfId(ada);
    boId = await selfId(bo);
  });

  after(async () => {
    await browser?.close();
    const exit = await server?.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `server exit; log:\n${server?.log()}`);
  });

  it('serves the page with its assets', async () => {
    const res = await fetch(`${server.origin}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.match(await res.text(), /<script type="module" src="\/app.js">/);
    const js = await fetch(`${server.origin}/rollcall.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const head = await fetch(`${server.origin}/style.css`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 0);
    assert.equal((await head.text()).length, 0);
    assert.equal((await fetch(`${server.origin}/nope.js`)).status, 404);
  });

  it('shows both members on both pages', async () => {
    assert.notEqual(adaId, boId);
    for (const page of [ada, bo]) {
      await waitForMemberIds(page, [adaId, boId]);
      const list = await memberList(page);
      assert.equal(list.length, 2);
      assert.ok(list.some((m) => m.id === adaId && m.text.includes('Ada Lovelace')));
      assert.ok(list.some((m) => m.id === boId && m.text.includes('Bo Diddley')));
      assert.equal(await page.locator('.seat').count(), 2);
    }
    assert.equal(await ada.textContent('#member-count'), '(2)');
    // Each page marks its own seat.
    assert.equal(await bo.getAttribute('.seat.me', 'data-user-id'), boId);
  });

  it("moves Ada's seat on Bo's page when Ada clicks", async () => {
    const box = await ada.locator('#seating').boundingBox();
    const click = { x: box.width * 0.3, y: box.height * 0.7 };
    await ada.mouse.click(box.x + click.x, box.y + click.y);
    // The page draws seats from the server's state only: once Ada's own seat
    // sits where she clicked, the server has it.
    await ada.waitForFunction(
      ([cx, cy]) => {
        const s = document.querySelector('.seat.me');
        return Math.abs(s.offsetLeft - cx) < 3 && Math.abs(s.offsetTop - cy) < 3;
      },
      [click.x, click.y],
    );
    const moved = await ada.$eval('.seat.me', (s) => ({ x: Number(s.dataset.x), y: Number(s.dataset.y) }));
    assert.ok(moved.x > 0.2 && moved.x < 0.4 && moved.y > 0.6 && moved.y < 0.8, JSON.stringify(moved));
    await bo.waitForFunction(
      ([id, wx, wy]) => {
        const s = document.querySelector(`.seat[data-user-id="${id}"]`);
        return s && Number(s.dataset.x) === wx && Number(s.dataset.y) === wy;
      },
      [adaId, moved.x, moved.y],
    );
    // Arrow keys move the seat too (keyboard users).
    await ada.focus('#seating');
    await ada.keyboard.press('ArrowRight');
    const expectX = Math.round((moved.x + 0.02) * 1000) / 1000;
    await bo.waitForFunction(
      ([id, wx]) => Number(document.querySelector(`.seat[data-user-id="${id}"]`)?.dataset.x) === wx,
      [adaId, expectX],
    );
  });

  it("shows Ada's chat message on Bo's page", async () => {
    await sendChat(ada, 'Good morning, everyone!');
    await bo.waitForFunction(
      () => [...document.querySelectorAll('#chat-log .msg .text')].some((p) => p.textContent === 'Good morning, everyone!'),
    );
    const item = bo.locator('#chat-log .msg', { hasText: 'Good morning, everyone!' });
    assert.equal(await item.locator('.author').textContent(), 'Ada Lovelace');
    assert.equal(await ada.inputValue('#chat-input'), '', 'the send box is cleared');
    // Ada sees her own message, marked as hers.
    await ada.waitForSelector('#chat-log .msg.mine');
    assert.deepEqual(await chatTexts(ada), ['Good morning, everyone!']);
    await sendChat(bo, 'Morning Ada 👋');
    await ada.waitForFunction(() => document.querySelectorAll('#chat-log .msg').length === 2);
    assert.deepEqual(await chatTexts(ada), ['Good morning, everyone!', 'Morning Ada 👋']);
  });

  it('puts raised hands in the queue, first raised first', async () => {
    await ada.click('#hand');
    await bo.waitForSelector(`#hand-queue li[data-user-id="${adaId}"]`);
    assert.equal(await ada.getAttribute('#hand', 'aria-pressed'), 'true');
    await bo.click('#hand');
    for (const page of [ada, bo]) {
      await page.waitForFunction(() => document.querySelectorAll('#hand-queue li').length === 2);
      const order = await page.$$eval('#hand-queue li', (lis) => lis.map((li) => li.dataset.userId));
      assert.deepEqual(order, [adaId, boId]);
      assert.equal(await page.isVisible('#hand-queue-empty'), false);
    }
    // The raised hand shows on the seat as well.
    assert.equal(await bo.locator(`.seat[data-user-id="${adaId}"].hand-up`).count(), 1);
    // Students do not get the teacher's button.
    assert.equal(await ada.isVisible('#lower-all'), false);
  });

  it('shows reactions and statuses', async () => {
    await ada.click('.emoji[data-emoji="👏"]');
    await ada.selectOption('#status', 'busy');
    await ada.fill('#status-text', 'writing the exam');
    await ada.press('#status-text', 'Enter');
    await ada.locator('#status-text').blur();
    await bo.waitForFunction((id) => {
      const s = document.querySelector(`.seat[data-user-id="${id}"]`);
      const li = document.querySelector(`#members li[data-user-id="${id}"]`);
      return s?.querySelector('.reaction').textContent === '👏' && li?.dataset.status === 'busy' &&
        li.textContent.includes('writing the exam');
    }, adaId);
  });

  it('looks like a classroom (screenshot)', async () => {
    const path = await screenshot(bo, 'classroom.png');
    console.log(`screenshot: ${path}`);
    assert.ok(path.endsWith('.png'));
  });

  it("removes Ada from Bo's list when her page closes", async () => {
    await ada.context().close();
    // She left with a close frame, so there is no reconnect grace to wait out.
    await waitForMemberIds(bo, [adaId], false);
    await bo.waitForFunction((id) => !document.querySelector(`.seat[data-user-id="${id}"]`), adaId);
    assert.deepEqual((await memberList(bo)).map((m) => m.id), [boId]);
    await bo.waitForFunction(() => document.querySelectorAll('#hand-queue li').length === 1);
  });

  it('ran without page errors', () => {
    assert.deepEqual(ada.problems, []);
    assert.deepEqual(bo.problems, []);
  });
});
