// rollcall.js — the browser client of a rollcall room (wire protocol v1,
// PROTOCOL.md). A dependency-free ES module:
//
//   import { RollcallClient, fetchTicket } from '/rollcall.js';
//   const rc = new RollcallClient({ room: 'physics-101', userId: 'u42', name: 'Ada' });
//   rc.on('members', (members) => ...);   // the whole room, after every change
//   rc.on('chat', ({ added, reset, older }) => ...);  // rc.messages is the whole log
//   rc.on('queued', ({ position }) => ...);
//   rc.on('error', ({ code, message, ref }) => ...);
//   rc.on('state', ({ state }) => ...);   // connecting|queued|open|reconnecting|closed
//   rc.presence({ x: 0.5, y: 0.25 });     // merged and sent at most once per frame/tick
//   rc.chat('hello');                     // returns the generated client_id
//
// Options: url (the server: http(s):// or ws(s)://, default this page's
// origin), room, and one way to authenticate: ticket (single use) and/or
// getTicket (an async function returning a fresh ticket; called before every
// connection that has no unused ticket), or userId/name for a server run with
// --allow-anonymous. since: resume chat after this seq. A client that starts
// with a ticket but no getTicket cannot reconnect (a ticket is single use);
// an anonymous one reconnects as the same user.

const DEFAULTS = {
  pingIntervalMs: 20000,
  // No frame at all for this long (pongs included) means the connection is dead.
  deadAfterMs: 50000,
  backoffInitialMs: 500,
  backoffMaxMs: 15000,
  historyLimit: 50,
};

// Presence fields a client may send, and the values a member starts with
// (a member who rejoins after the grace period is back at these).
const PRESENCE_FIELDS = ['x', 'y', 'emoji', 'hand', 'status', 'status_text', 'name'];
const FRESH_MEMBER = { x: 0, y: 0, emoji: '', status_text: '' };

// Close codes after which trying again cannot help.
const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007]);

let clientIdCounter = 0;

function randomToken(bytes = 6) {
  const a = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The WebSocket URL of a room: ws(s)://host/ws/rooms/{room}?<query>.
export function roomUrl(base, room, query) {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
  u.pathname = `/ws/rooms/${encodeURIComponent(room)}`;
  u.search = new URLSearchParams(query).toString();
  u.hash = '';
  return u.toString();
}

// Exchanges a long-lived token (JWT) for a single-use ticket (POST /api/tickets).
// The token travels in a header, never in a URL. Throws on any refusal.
export async function fetchTicket(token, base = globalThis.location?.origin) {
  const res = await fetch(new URL('/api/tickets', base), {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  });
  let body = {};
  try {
    body = await res.json();
  } catch {
    // An answer that is not JSON: the status tells enough.
  }
  if (res.status !== 201 || typeof body.ticket !== 'string') {
    const err = new Error(body.message || `ticket request failed (HTTP ${res.status})`);
    err.code = body.error || `HTTP_${res.status}`;
    err.status = res.status;
    throw err;
  }
  return body.ticket;
}

export class RollcallClient {
  constructor(options) {
    const o = { ...DEFAULTS, ...options };
    if (!o.room) throw new Error('RollcallClient: room is required');
    this.options = o;
    this.url = o.url || globalThis.location?.origin;
    this.room = o.room;
    this.state = 'idle';
    this.members = new Map(); // user_id -> member, as the server last described it
    this.tick = -1;
    this.me = null; // {user_id, session_id, role} from the last welcome
    this.tickMs = 50;
    this.messages = []; // chat, ascending seq, no duplicates
    this.historyComplete = true; // false: older messages exist (page back with history())
    this.lastSeq = o.since ?? null;
    this.queuePosition = 0;

    this._listeners = new Map();
    this._ticket = o.ticket ?? null;
    this._anonymous = !o.ticket && !o.getTicket;
    this._userId = o.userId ?? null;
    this._name = o.name ?? null;
    this._ws = null;
    this._closedByUser = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._lastFrameAt = 0;
    this._pending = {}; // presence fields not sent yet
    this._chosen = {}; // the presence this user asked for, re-applied after a rejoin
    this._flushTimer = null;
    this._lastPresenceAt = 0;
    this._historyWaiters = [];
    this._sentChat = new Map(); // client_id -> text, until the server echoes it
    // Connect after the caller's synchronous on(...) calls, so that they see
    // every event, the first 'state' included.
    queueMicrotask(() => this._connect());
  }

  // ---- events

  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  _emit(event, payload) {
    for (const fn of this._listeners.get(event) ?? []) {
      try {
        fn(payload);
      } catch (e) {
        // A listener's bug must not break the session.
        console.error(`rollcall: '${event}' listener threw`, e);
      }
    }
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit('state', { state, ...extra });
  }

  // ---- the room model

  // Members as an array, ordered by name then user id (a stable display order).
  memberList() {
    return [...this.members.values()].sort(
      (a, b) => a.name.localeCompare(b.name) || (a.user_id < b.user_id ? -1 : 1),
    );
  }

  // Members with a raised hand, first raised first.
  handQueue() {
    return [...this.members.values()]
      .filter((m) => m.hand)
      .sort((a, b) => a.hand_at - b.hand_at || (a.user_id < b.user_id ? -1 : 1));
  }

  self() {
    return this.me ? this.members.get(this.me.user_id) ?? null : null;
  }

  // ---- methods

  // Partial presence update: {x, y, emoji, hand, status, status_text, name}.
  // Calls within one frame (or one server tick) are merged into one message.
  presence(fields) {
    for (const k of PRESENCE_FIELDS) {
      if (fields[k] !== undefined) {
        this._pending[k] = fields[k];
        this._chosen[k] = fields[k];
      }
    }
    this._scheduleFlush();
  }

  raiseHand(up = true) {
    this.presence({ hand: !!up });
  }

  lowerHands() {
    return this._send({ type: 'lower_hands' });
  }

  sync() {
    return this._send({ type: 'sync' });
  }

  // Sends a chat message; returns its client_id (the server echoes it in the
  // chat message, or as `ref` of an error), or null when not connected.
  chat(text) {
    if (this.state !== 'open') {
      this._emit('error', { code: 'NOT_CONNECTED', message: 'not connected to the room' });
      return null;
    }
    clientIdCounter += 1;
    const clientId = `c-${randomToken(4)}-${clientIdCounter}`;
    this._sentChat.set(clientId, text);
    this._send({ type: 'chat', text, client_id: clientId });
    return clientId;
  }

  // Asks for the newest `limit` messages older than `before` (omitted: the
  // newest). Resolves with {messages, complete}; they are merged into
  // this.messages too. Answers come back in request order.
  history(before, limit = this.options.historyLimit) {
    const msg = { type: 'history', limit };
    if (before !== undefined && before !== null) msg.before = before;
    return new Promise((resolve, reject) => {
      if (!this._send(msg)) {
        reject(new Error('not connected'));
        return;
      }
      this._historyWaiters.push({ resolve, reject });
    });
  }

  // Leaves the room for good: sends a close frame (so the member leaves at
  // once, without the reconnect grace) and stops reconnecting.
  close() {
    this._closedByUser = true;
    clearTimeout(this._retryTimer);
    this._stopTimers();
    if (this._ws && this._ws.readyState <= 1) this._ws.close(1000, 'bye');
    this._failHistory('closed');
    this._setState('closed');
  }

  // ---- connection

  async _connect() {
    if (this._closedByUser) return;
    this._setState(this._attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this._attempt });
    const query = {};
    try {
      if (this._anonymous) {
        if (this._userId) query.user_id = this._userId;
        if (this._name) query.name = this._name;
      } else {
        let ticket = this._ticket;
        this._ticket = null; // single use, whatever happens next
        if (!ticket && this.options.getTicket) ticket = await this.options.getTicket();
        if (!ticket) {
          this._emit('error', { code: 'NO_TICKET', message: 'a ticket is single use: cannot reconnect' });
          this._setState('closed');
          return;
        }
        query.ticket = ticket;
      }
    } catch (e) {
      this._emit('error', { code: e.code || 'TICKET_FAILED', message: e.message });
      if (e.status === 401 || e.status === 403) {
        this._setState('closed');
        return;
      }
      this._retry();
      return;
    }
    if (this._closedByUser) return;
    if (this.lastSeq !== null) query.since = String(this.lastSeq);
    let ws;
    try {
      const WS = this.options.WebSocket || globalThis.WebSocket;
      ws = new WS(roomUrl(this.url, this.room, query));
    } catch (e) {
      this._emit('error', { code: 'BAD_URL', message: e.message });
      this._setState('closed');
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      this._lastFrameAt = Date.now();
      this._startPing();
    };
    ws.onmessage = (ev) => {
      if (ws !== this._ws) return;
      this._lastFrameAt = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // the server only sends JSON; ignore anything else
      }
      this._onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this._ws) return;
      this._onClose(ev);
    };
  }

  _onClose(ev) {
    this._ws = null;
    this._stopTimers();
    this._failHistory('connection closed');
    if (this._closedByUser) return;
    if (FATAL_CLOSE_CODES.has(ev.code)) {
      this._emit('error', { code: 'CLOSED', message: `closed by the server (${ev.code} ${ev.reason})` });
      this._setState('closed', { code: ev.code, reason: ev.reason });
      return;
    }
    if (!this._anonymous && !this.options.getTicket) {
      this._emit('error', { code: 'NO_TICKET', message: 'disconnected; a ticket is single use' });
      this._setState('closed', { code: ev.code, reason: ev.reason });
      return;
    }
    this._retry(ev);
  }

  // Exponential backoff with jitter, reset by every welcome.
  _retry(ev) {
    const o = this.options;
    const base = Math.min(o.backoffMaxMs, o.backoffInitialMs * 2 ** this._attempt);
    const delayMs = Math.round(base * (0.5 + Math.random() / 2));
    this._attempt += 1;
    this._setState('reconnecting', { attempt: this._attempt, delayMs, code: ev?.code });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._connect(), delayMs);
  }

  _startPing() {
    this._stopTimers();
    this._pingTimer = setInterval(() => {
      if (Date.now() - this._lastFrameAt > this.options.deadAfterMs) {
        // Nothing heard for too long: drop it and reconnect.
        this._ws?.close(4000, 'no answer');
        if (this._ws) this._onClose({ code: 1006, reason: 'no answer' });
        return;
      }
      this._send({ type: 'ping' });
    }, this.options.pingIntervalMs);
  }

  _stopTimers() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    clearTimeout(this._flushTimer);
    this._flushTimer = null;
  }

  _send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    // While queued only pings are allowed; the rest waits for the welcome.
    if (this.state === 'queued' && msg.type !== 'ping') return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  _failHistory(why) {
    const waiters = this._historyWaiters;
    this._historyWaiters = [];
    for (const w of waiters) w.reject(new Error(why));
  }

  // ---- presence throttling

  _scheduleFlush() {
    if (this._flushTimer !== null || this.state !== 'open') return;
    const waitMs = Math.max(0, this._lastPresenceAt + this.tickMs - Date.now());
    this._flushTimer = setTimeout(() => {
      const raf = globalThis.requestAnimationFrame;
      // Inside a frame when the page is drawn, so a drag sends once per frame.
      if (raf && globalThis.document?.visibilityState === 'visible') raf(() => this._flush());
      else this._flush();
    }, waitMs);
  }

  _flush() {
    this._flushTimer = null;
    if (Object.keys(this._pending).length === 0) return;
    if (this.state !== 'open') return;
    const msg = { type: 'presence', ...this._pending };
    this._pending = {};
    this._lastPresenceAt = Date.now();
    this._send(msg);
  }

  // ---- server messages

  _onMessage(msg) {
    switch (msg.type) {
      case 'welcome':
        return this._onWelcome(msg);
      case 'delta':
        return this._onDelta(msg);
      case 'sync':
        if (typeof msg.tick === 'number') this.tick = msg.tick;
        this._replaceMembers(msg.members);
        return this._emit('members', this.memberList());
      case 'chat':
        return this._onChat(msg.messages);
      case 'history':
        return this._onHistory(msg);
      case 'queued':
        this.queuePosition = msg.position;
        if (this.state !== 'queued') this._setState('queued', { position: msg.position });
        return this._emit('queued', { position: msg.position });
      case 'error':
        return this._onError(msg);
      default:
        return undefined; // pong and anything newer: nothing to do
    }
  }

  _onWelcome(msg) {
    const resumed = this.lastSeq !== null && this.me !== null;
    this.me = { user_id: msg.user_id, session_id: msg.session_id, role: msg.role };
    if (this._anonymous) this._userId = msg.user_id; // reconnect as the same member
    this.tickMs = msg.tick_ms || this.tickMs;
    this.tick = msg.tick;
    this._attempt = 0;
    this.queuePosition = 0;
    this._replaceMembers(msg.members);
    this._onWelcomeChat(msg.chat || { messages: [], complete: true }, resumed);
    this._setState('open', { role: msg.role, userId: msg.user_id });
    this._emit('members', this.memberList());
    this._restorePresence();
  }

  _onWelcomeChat(chat, resumed) {
    const incoming = chat.messages || [];
    if (resumed && chat.complete !== false) {
      // A resume that left nothing out: the log continues where it stopped.
      this._addMessages(incoming, false);
    } else {
      // First join, or a gap after the resume point: start from this window.
      this._sentChatSeen(incoming);
      this.messages = incoming.slice();
      this.historyComplete = chat.complete !== false;
      this._emit('chat', { added: incoming, reset: true, older: false });
    }
    if (typeof chat.last_seq === 'number') this.lastSeq = Math.max(this.lastSeq ?? 0, chat.last_seq);
  }

  // After a rejoin beyond the reconnect grace the server has forgotten this
  // member's presence: put back what the user chose. A raised hand is not
  // raised again (its place in the queue is gone; the user can raise it).
  _restorePresence() {
    const me = this.self();
    if (!me) return;
    const fresh = Object.entries(FRESH_MEMBER).every(([k, v]) => me[k] === v);
    const restore = {};
    for (const k of ['x', 'y', 'emoji', 'status', 'status_text']) {
      if (this._chosen[k] !== undefined && this._chosen[k] !== me[k]) restore[k] = this._chosen[k];
    }
    if (fresh) Object.assign(this._pending, restore);
    this._scheduleFlush();
  }

  _onDelta(msg) {
    if (typeof msg.tick === 'number') {
      if (msg.tick <= this.tick) return; // older than the state we hold
      this.tick = msg.tick;
    }
    for (const m of msg.joined || []) this.members.set(m.user_id, { ...m });
    for (const u of msg.updated || []) {
      const cur = this.members.get(u.user_id);
      this.members.set(u.user_id, cur ? { ...cur, ...u } : { ...u });
    }
    for (const id of msg.left || []) this.members.delete(id);
    this._emit('members', this.memberList());
  }

  _replaceMembers(list) {
    this.members = new Map((list || []).map((m) => [m.user_id, { ...m }]));
  }

  _onChat(messages) {
    this._addMessages(messages || [], false);
    const last = messages?.[messages.length - 1];
    if (last) this.lastSeq = Math.max(this.lastSeq ?? 0, last.seq);
  }

  _onHistory(msg) {
    const messages = msg.messages || [];
    const oldestHeld = this.messages.length ? this.messages[0].seq : Infinity;
    // Only an answer reaching the oldest end of what we hold says whether more
    // exists; set before listeners hear of the messages.
    if (messages.length === 0 || messages[0].seq < oldestHeld) this.historyComplete = msg.complete !== false;
    this._addMessages(messages, true);
    const w = this._historyWaiters.shift();
    if (w) w.resolve({ messages, complete: msg.complete !== false });
  }

  // Merges messages in by seq (ascending, no duplicates) and tells listeners.
  _addMessages(list, older) {
    const known = new Set(this.messages.map((m) => m.seq));
    const added = list.filter((m) => !known.has(m.seq));
    if (added.length === 0) return;
    this._sentChatSeen(added);
    const lastSeq = this.messages.length ? this.messages[this.messages.length - 1].seq : -Infinity;
    if (added.every((m) => m.seq > lastSeq)) {
      this.messages.push(...added);
    } else {
      this.messages = this.messages.concat(added).sort((a, b) => a.seq - b.seq);
    }
    this._emit('chat', { added, reset: false, older });
  }

  _sentChatSeen(list) {
    for (const m of list) if (m.client_id) this._sentChat.delete(m.client_id);
  }

  _onError(msg) {
    const err = { code: msg.code, message: msg.message, ref: msg.ref };
    if (msg.ref && this._sentChat.has(msg.ref)) {
      err.text = this._sentChat.get(msg.ref); // the chat that was refused
      this._sentChat.delete(msg.ref);
    }
    this._emit('error', err);
  }
}
