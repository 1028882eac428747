// Unit tests of web/rollcall.js in Node, without a browser or a server: a fake
// WebSocket records what the client sends and lets each test play the
// server's side of PROTOCOL.md message by message.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { REPO } from './harness.mjs';

// web/ has no package.json, so Node would read rollcall.js as CommonJS:
// import the module's text instead, exactly as the browser gets it.
const source = readFileSync(join(REPO, 'web', 'rollcall.js'), 'utf8');
const { RollcallClient, roomUrl } = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class FakeSocket {
  static all = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.all.push(this);
  }

  send(text) {
    assert.equal(this.readyState, 1, 'send on an open socket only');
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // The server's side.
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }

  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  types() {
    return this.sent.map((m) => m.type);
  }
}

function member(userId, fields = {}) {
  return {
    user_id: userId, name: userId, role: 'student', x: 0, y: 0, emoji: '', hand: false, hand_at: 0,
    status: 'online', status_text: '', devices: 1, connected: true, ...fields,
  };
}

function welcome(userId, members, chat = {}, extra = {}) {
  return {
    type: 'welcome', room: 'r1', user_id: userId, session_id: 's', role: 'student', tick_ms: 10, tick: 5,
    members, chat: { messages: [], last_seq: 0, complete: true, ...chat }, ...extra,
  };
}

function client(options = {}) {
  FakeSocket.all = [];
  const events = [];
  const rc = new RollcallClient({
    url: 'http://example.test:8080', room: 'r1', WebSocket: FakeSocket, backoffInitialMs: 10,
    backoffMaxMs: 40, ...options,
  });
  for (const e of ['members', 'chat', 'queued', 'error', 'state']) rc.on(e, (p) => events.push([e, p]));
  return { rc, events, socket: () => FakeSocket.all[FakeSocket.all.length - 1] };
}

async function openWith(options, welcomeMsg) {
  const c = client(options);
  await sleep(0);
  c.socket().open();
  c.socket().deliver(welcomeMsg);
  return c;
}

describe('rollcall.js', () => {
  it('builds room URLs from http(s) and ws(s) bases', () => {
    assert.equal(roomUrl('http://h:1/x?y#z', 'a-b', { user_id: 'u', name: 'A B' }),
      'ws://h:1/ws/rooms/a-b?user_id=u&name=A+B');
    assert.equal(roomUrl('https://h', 'r', {}), 'wss://h/ws/rooms/r');
    assert.equal(roomUrl('wss://h', 'r', { ticket: 't' }), 'wss://h/ws/rooms/r?ticket=t');
  });

  it('connects anonymously and keeps the room from welcome, delta and sync', async () => {
    const { rc, events, socket } = await openWith({ userId: 'u1', name: 'Ada' },
      welcome('u1', [member('u1', { name: 'Ada' }), member('u2', { name: 'Bo' })]));
    assert.equal(socket().url, 'ws://example.test:8080/ws/rooms/r1?user_id=u1&name=Ada');
    assert.equal(rc.state, 'open');
    assert.deepEqual(rc.memberList().map((m) => m.name), ['Ada', 'Bo']);
    // joined = upsert, updated = merge, left = remove.
    socket().deliver({ type: 'delta', tick: 6, joined: [member('u3', { name: 'Cy' }), member('u1', { name: 'Ada', x: 0.5 })],
      updated: [{ user_id: 'u2', hand: true, hand_at: 1000 }], left: [] });
    assert.equal(rc.members.get('u1').x, 0.5);
    assert.equal(rc.members.get('u2').hand, true);
    assert.equal(rc.members.get('u2').name, 'Bo', 'a merge keeps the other fields');
    assert.equal(rc.members.size, 3);
    socket().deliver({ type: 'delta', tick: 7, left: ['u3'] });
    assert.deepEqual([...rc.members.keys()].sort(), ['u1', 'u2']);
    // A delta that is not newer than the state held is ignored.
    socket().deliver({ type: 'delta', tick: 7, left: ['u2'] });
    assert.ok(rc.members.has('u2'));
    socket().deliver({ type: 'sync', tick: 9, members: [member('u1')] });
    assert.deepEqual([...rc.members.keys()], ['u1']);
    assert.equal(events.filter(([e]) => e === 'members').length, 4);
    assert.deepEqual(events.filter(([e]) => e === 'state').map(([, p]) => p.state), ['connecting', 'open']);
    rc.close();
  });

  it('orders the hand queue by hand_at', async () => {
    const { rc } = await openWith({}, welcome('u1', [
      member('u1', { hand: true, hand_at: 300 }), member('u2', { hand: true, hand_at: 100 }), member('u3')]));
    assert.deepEqual(rc.handQueue().map((m) => m.user_id), ['u2', 'u1']);
    rc.close();
  });

  it('merges presence calls into one message per tick', async () => {
    const { rc, socket } = await openWith({}, welcome('u1', [member('u1', { x: 0.1, y: 0.1 })]));
    rc.presence({ x: 0.2 });
    rc.presence({ x: 0.3, y: 0.4 });
    rc.raiseHand(true);
    assert.deepEqual(socket().types(), []);
    await sleep(30);
    assert.deepEqual(socket().sent, [{ type: 'presence', x: 0.3, y: 0.4, hand: true }]);
    rc.presence({ emoji: '👍' });
    rc.presence({ emoji: '' });
    await sleep(30);
    assert.deepEqual(socket().sent[1], { type: 'presence', emoji: '' });
    rc.close();
  });

  it('sends chat with a client_id and hands back refused text', async () => {
    const { rc, events, socket } = await openWith({}, welcome('u1', [member('u1')]));
    const id = rc.chat('hello');
    assert.match(id, /^c-/);
    assert.deepEqual(socket().sent[0], { type: 'chat', text: 'hello', client_id: id });
    const id2 = rc.chat('again');
    assert.notEqual(id, id2);
    socket().deliver({ type: 'chat', messages: [{ seq: 1, user_id: 'u1', name: 'u1', text: 'hello', ts: 1, client_id: id }] });
    socket().deliver({ type: 'error', code: 'RATE_LIMITED', message: 'slow down', ref: id2 });
    const err = events.find(([e]) => e === 'error')[1];
    assert.deepEqual(err, { code: 'RATE_LIMITED', message: 'slow down', ref: id2, text: 'again' });
    assert.equal(rc.lastSeq, 1);
    rc.close();
    assert.equal(rc.chat('closed'), null);
  });

  it('merges history in seq order and resolves the request', async () => {
    const msgs = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, user_id: 'u', name: 'u', text: `m${from + i}`, ts: 0 }));
    const { rc, events, socket } = await openWith({}, welcome('u1', [member('u1')], { messages: msgs(4, 6), last_seq: 6, complete: false }));
    assert.equal(rc.historyComplete, false);
    const pending = rc.history(4, 2);
    assert.deepEqual(socket().sent[0], { type: 'history', before: 4, limit: 2 });
    socket().deliver({ type: 'history', messages: msgs(2, 3), complete: false });
    const page = await pending;
    assert.deepEqual(page.messages.map((m) => m.seq), [2, 3]);
    assert.deepEqual(rc.messages.map((m) => m.seq), [2, 3, 4, 5, 6]);
    assert.equal(rc.historyComplete, false);
    socket().deliver({ type: 'chat', messages: msgs(6, 7) }); // 6 again: no duplicate
    assert.deepEqual(rc.messages.map((m) => m.seq), [2, 3, 4, 5, 6, 7]);
    const p2 = rc.history(2);
    socket().deliver({ type: 'history', messages: msgs(1, 1), complete: true });
    await p2;
    assert.equal(rc.historyComplete, true);
    const chatEvents = events.filter(([e]) => e === 'chat').map(([, p]) => [p.reset, p.older, p.added.length]);
    assert.deepEqual(chatEvents, [[true, false, 3], [false, true, 2], [false, false, 1], [false, true, 1]]);
    rc.close();
  });

  it('reconnects with backoff as the same user and resumes chat with since', async () => {
    const { rc, events, socket } = await openWith({ name: 'Ada' },
      welcome('anon-7', [member('anon-7', { x: 0.5, y: 0.5 })], { messages: [], last_seq: 4 }));
    const first = socket();
    rc.presence({ x: 0.6 });
    await sleep(30);
    first.drop(1006);
    assert.equal(rc.state, 'reconnecting');
    await sleep(20);
    const second = socket();
    assert.notEqual(second, first);
    assert.equal(second.url, 'ws://example.test:8080/ws/rooms/r1?user_id=anon-7&name=Ada&since=4');
    second.drop(1006); // refused again: the next wait is longer
    await sleep(50);
    const third = socket();
    assert.equal(FakeSocket.all.length, 3);
    // Back after the grace: the server forgot the seat, the client puts it back.
    third.open();
    third.deliver(welcome('anon-7', [member('anon-7')], { messages: [{ seq: 5, user_id: 'x', name: 'x', text: 'new', ts: 0 }], last_seq: 5 }));
    assert.equal(rc.state, 'open');
    await sleep(30);
    assert.deepEqual(third.sent, [{ type: 'presence', x: 0.6 }]);
    assert.equal(rc.lastSeq, 5);
    const chat = events.filter(([e]) => e === 'chat').pop()[1];
    assert.equal(chat.reset, false, 'a complete resume appends');
    const delays = events.filter(([e, p]) => e === 'state' && p.delayMs !== undefined).map(([, p]) => p.delayMs);
    assert.equal(delays.length, 2);
    assert.ok(delays[0] >= 5 && delays[0] <= 10 && delays[1] >= 10 && delays[1] <= 20, String(delays));
    rc.close();
    assert.deepEqual(third.closedWith, { code: 1000, reason: 'bye' });
    await sleep(30);
    assert.equal(FakeSocket.all.length, 3, 'no reconnect after close()');
  });

  it('uses a ticket once and asks getTicket for the next one', async () => {
    let asked = 0;
    const getTicket = async () => `fresh-${++asked}`;
    const { rc, socket } = await openWith({ ticket: 'first', getTicket }, welcome('t1', [member('t1')]));
    assert.equal(socket().url, 'ws://example.test:8080/ws/rooms/r1?ticket=first');
    assert.equal(asked, 0);
    socket().drop(1001);
    await sleep(30);
    assert.equal(asked, 1);
    assert.equal(socket().url, 'ws://example.test:8080/ws/rooms/r1?ticket=fresh-1&since=0');
    rc.close();
  });

  it('does not reconnect a ticket session without getTicket', async () => {
    const { rc, events, socket } = await openWith({ ticket: 'only' }, welcome('t1', [member('t1')]));
    socket().drop(1006);
    assert.equal(rc.state, 'closed');
    assert.equal(events.filter(([e]) => e === 'error').pop()[1].code, 'NO_TICKET');
    await sleep(30);
    assert.equal(FakeSocket.all.length, 1);
  });

  it('waits in the queue: only pings go out until the welcome', async () => {
    const { rc, events, socket } = client({ pingIntervalMs: 15 });
    await sleep(0);
    socket().open();
    socket().deliver({ type: 'queued', position: 3 });
    assert.equal(rc.state, 'queued');
    rc.presence({ x: 0.9 });
    assert.equal(rc.lowerHands(), false);
    socket().deliver({ type: 'queued', position: 1 });
    assert.deepEqual(events.filter(([e]) => e === 'queued').map(([, p]) => p.position), [3, 1]);
    await sleep(25);
    assert.deepEqual([...new Set(socket().types())], ['ping']);
    socket().deliver(welcome('u1', [member('u1', { x: 0.2, y: 0.2 })]));
    await sleep(30);
    assert.deepEqual(socket().sent.filter((m) => m.type !== 'ping'), [{ type: 'presence', x: 0.9 }]);
    rc.close();
  });

  it('drops a silent connection and reconnects', async () => {
    const { rc, socket } = await openWith({ pingIntervalMs: 10, deadAfterMs: 25 }, welcome('u1', [member('u1')]));
    const first = socket();
    await sleep(60);
    assert.equal(first.closedWith?.code, 4000);
    assert.ok(FakeSocket.all.length >= 2, 'a new connection was opened');
    rc.close();
  });

  it('stops on a close code that retrying cannot fix', async () => {
    const { rc, socket } = await openWith({}, welcome('u1', [member('u1')]));
    socket().drop(1002, 'protocol error');
    assert.equal(rc.state, 'closed');
    await sleep(30);
    assert.equal(FakeSocket.all.length, 1);
  });
});
