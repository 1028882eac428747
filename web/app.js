// The classroom page: a join form, then the room drawn from a RollcallClient
// (rollcall.js): seats, reactions, raised hands, statuses, members and chat.
// Plain DOM; user text only ever goes through textContent.

import { RollcallClient, fetchTicket } from '/rollcall.js';

const $ = (id) => document.getElementById(id);
const STATUS_LABEL = { online: 'online', away: 'away', busy: 'busy', idle: 'idle' };
const ERROR_TEXT = {
  RATE_LIMITED: 'You are sending messages too fast. Wait a moment and try again.',
  FORBIDDEN: 'You are not allowed to do that.',
  BAD_REQUEST: 'The server did not accept that.',
  NOT_CONNECTED: 'Not connected to the room right now.',
  INTERNAL: 'The server had a problem. Try again.',
  ROOM_FULL: 'The room and its queue are full. Retrying…',
  SHUTTING_DOWN: 'The server is restarting. Reconnecting…',
  TOO_LARGE: 'That message was too large.',
};
const ARROW_STEP = 0.02;
// Seats are drawn inside these margins (px) of the seating area, so a dot at
// an edge stays whole and clear of the "front of the room" strip.
const INSET = { left: 32, right: 32, top: 60, bottom: 36 };
const STATUS_TEXT_DEBOUNCE_MS = 600;

let client = null;
const dots = new Map(); // user_id -> seat element
const memberItems = new Map(); // user_id -> member list item
let renderQueued = false;

// ---- helpers

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

function myId() {
  return client?.me?.user_id ?? null;
}

function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

function formatTime(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

let toastTimer = null;
function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.hidden = true;
  }, 5000);
}

function errorText(err) {
  return ERROR_TEXT[err.code] || err.message || err.code;
}

// ---- joining

function readLaunchParams() {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  if (token) {
    // A token in the address bar would end up in history and in shared links.
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
  return { room: params.get('room'), name: params.get('name'), token };
}

function storedUserId() {
  // One anonymous identity per browser, so a reload or a second tab is the
  // same member (one more device), not a new one.
  let id = localStorage.getItem('rollcall.userId');
  if (!id || !/^[A-Za-z0-9_.-]{1,64}$/.test(id)) {
    const a = new Uint8Array(6);
    crypto.getRandomValues(a);
    id = `u-${Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('')}`;
    localStorage.setItem('rollcall.userId', id);
  }
  return id;
}

function join({ room, name, token }) {
  localStorage.setItem('rollcall.name', name);
  localStorage.setItem('rollcall.room', room);
  const options = { room };
  if (token) {
    options.getTicket = () => fetchTicket(token);
  } else {
    options.userId = storedUserId();
    if (name) options.name = name;
  }
  client = new RollcallClient(options);
  client.on('state', onState);
  client.on('members', scheduleRender);
  client.on('chat', onChat);
  client.on('queued', ({ position }) => {
    $('queue-position').textContent = String(position);
  });
  client.on('error', onError);
  $('room-title').textContent = `Room ${room}`;
  $('room-title').hidden = false;
  $('join').hidden = true;
  $('leave').hidden = false;
  history.replaceState(null, '', `${location.pathname}?room=${encodeURIComponent(room)}`);
}

function onJoinSubmit(ev) {
  ev.preventDefault();
  const room = $('join-room').value.trim();
  const name = $('join-name').value.trim();
  const token = $('join-token').value.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(room)) {
    $('join-error').textContent = 'A room name is 1-64 letters, digits, "-" or "_".';
    return;
  }
  if (!token && !name) {
    $('join-error').textContent = 'Please enter your name.';
    return;
  }
  $('join-error').textContent = '';
  join({ room, name, token });
}

// ---- connection state

function onState({ state, role, attempt, delayMs }) {
  const labels = {
    connecting: 'connecting…',
    queued: 'waiting in the queue',
    open: 'connected',
    reconnecting: attempt ? `reconnecting (try ${attempt}${delayMs ? `, in ${Math.ceil(delayMs / 1000)} s` : ''})…` : 'reconnecting…',
    closed: 'disconnected',
  };
  const s = $('conn-state');
  s.textContent = labels[state] || state;
  s.dataset.state = state;
  $('queued').hidden = state !== 'queued';
  if (state === 'open') {
    $('classroom').hidden = false;
    $('lower-all').hidden = role !== 'teacher';
    document.body.dataset.role = role;
    seatIfUnplaced();
  }
  if (state === 'closed' && !client.me) {
    $('join').hidden = false;
    $('join-error').textContent = 'Could not join the room.';
  }
}

// A member nobody has placed sits at (0, 0): give a newcomer a seat of its
// own, once (after a reconnect the client puts back the seat it had).
let autoSeated = false;
function seatIfUnplaced() {
  const me = client.self();
  if (autoSeated || !me) return;
  autoSeated = true;
  if (me.x !== 0 || me.y !== 0) return;
  const taken = client.memberList().filter((m) => m.user_id !== myId());
  let best = { x: 0.5, y: 0.5, d: -1 };
  for (let i = 0; i < 24; i += 1) {
    const x = 0.1 + Math.random() * 0.8;
    const y = 0.15 + Math.random() * 0.7;
    const d = Math.min(...taken.map((m) => Math.hypot(m.x - x, m.y - y)), 10);
    if (d > best.d) best = { x, y, d };
  }
  client.presence({ x: round3(best.x), y: round3(best.y) });
}

function round3(v) {
  return Math.round(v * 1000) / 1000;
}

// ---- drawing the room (batched: many deltas in one frame draw once)

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  const members = client.memberList();
  renderSeats(members);
  renderMembers(members);
  renderHandQueue(client.handQueue());
  renderControls(client.self());
}

function renderSeats(members) {
  const seating = $('seating');
  const seen = new Set();
  for (const m of members) {
    seen.add(m.user_id);
    let dot = dots.get(m.user_id);
    if (!dot) {
      dot = el('div', 'seat');
      dot.dataset.userId = m.user_id;
      dot.append(el('span', 'avatar'), el('span', 'reaction'), el('span', 'raised', '✋'), el('span', 'label'));
      seating.append(dot);
      dots.set(m.user_id, dot);
    }
    dot.dataset.x = String(m.x);
    dot.dataset.y = String(m.y);
    dot.style.left = `calc(${INSET.left}px + ${m.x} * (100% - ${INSET.left + INSET.right}px))`;
    dot.style.top = `calc(${INSET.top}px + ${m.y} * (100% - ${INSET.top + INSET.bottom}px))`;
    dot.classList.toggle('me', m.user_id === myId());
    dot.classList.toggle('offline', !m.connected);
    dot.classList.toggle('hand-up', m.hand);
    dot.dataset.status = m.status;
    dot.querySelector('.avatar').textContent = initials(m.name);
    dot.querySelector('.reaction').textContent = m.emoji;
    dot.querySelector('.label').textContent = m.user_id === myId() ? `${m.name} (you)` : m.name;
    dot.title = `${m.name} — ${STATUS_LABEL[m.status] || m.status}${m.status_text ? `: ${m.status_text}` : ''}`;
  }
  for (const [id, dot] of dots) {
    if (!seen.has(id)) {
      dot.remove();
      dots.delete(id);
    }
  }
}

function renderMembers(members) {
  const list = $('members');
  $('member-count').textContent = `(${members.length})`;
  const seen = new Set();
  for (const m of members) {
    seen.add(m.user_id);
    let li = memberItems.get(m.user_id);
    if (!li) {
      li = el('li', 'member');
      li.dataset.userId = m.user_id;
      li.append(el('span', 'status-dot'), el('span', 'name'), el('span', 'role'), el('span', 'detail'));
      memberItems.set(m.user_id, li);
    }
    list.append(li); // keeps the list in memberList() order
    li.dataset.status = m.status;
    li.classList.toggle('offline', !m.connected);
    li.querySelector('.status-dot').setAttribute('aria-label', STATUS_LABEL[m.status] || m.status);
    li.querySelector('.name').textContent = `${m.emoji ? `${m.emoji} ` : ''}${m.name}${m.hand ? ' ✋' : ''}${m.user_id === myId() ? ' (you)' : ''}`;
    li.querySelector('.role').textContent = m.role === 'teacher' ? 'teacher' : '';
    const parts = [STATUS_LABEL[m.status] || m.status];
    if (m.status_text) parts.push(`“${m.status_text}”`);
    if (!m.connected) parts.push('connection lost');
    else if (m.devices > 1) parts.push(`${m.devices} devices`);
    li.querySelector('.detail').textContent = parts.join(' · ');
  }
  for (const [id, li] of memberItems) {
    if (!seen.has(id)) {
      li.remove();
      memberItems.delete(id);
    }
  }
}

function renderHandQueue(queue) {
  const ol = $('hand-queue');
  ol.replaceChildren(
    ...queue.map((m) => {
      const li = el('li', m.user_id === myId() ? 'me' : '');
      li.dataset.userId = m.user_id;
      li.append(el('span', 'name', m.name), el('span', 'since', `since ${formatTime(m.hand_at)}`));
      return li;
    }),
  );
  $('hand-queue-empty').hidden = queue.length > 0;
}

function renderControls(me) {
  if (!me) return;
  const hand = $('hand');
  hand.setAttribute('aria-pressed', String(me.hand));
  hand.textContent = me.hand ? '✋ Lower hand' : '✋ Raise hand';
  for (const b of document.querySelectorAll('.emoji')) {
    b.setAttribute('aria-pressed', String(b.dataset.emoji !== '' && b.dataset.emoji === me.emoji));
  }
  const status = $('status');
  if (document.activeElement !== status && ['online', 'away', 'busy'].includes(me.status)) {
    status.value = me.status;
  }
  const text = $('status-text');
  if (document.activeElement !== text) text.value = me.status_text;
}

// ---- chat

function chatItem(m) {
  const li = el('li', m.user_id === myId() ? 'msg mine' : 'msg');
  li.dataset.seq = String(m.seq);
  const head = el('div', 'msg-head');
  head.append(el('span', 'author', m.name), el('time', 'ts', formatTime(m.ts)));
  head.querySelector('time').dateTime = new Date(m.ts).toISOString();
  li.append(head, el('p', 'text', m.text));
  return li;
}

function onChat({ added, reset, older }) {
  const log = $('chat-log');
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  if (reset) {
    log.replaceChildren(...client.messages.map(chatItem));
    log.scrollTop = log.scrollHeight;
  } else if (older) {
    const before = log.scrollHeight;
    // History may interleave with what is shown: rebuild in seq order, keep the view still.
    log.replaceChildren(...client.messages.map(chatItem));
    log.scrollTop += log.scrollHeight - before;
  } else {
    for (const m of added) log.append(chatItem(m));
    const mine = added.some((m) => m.user_id === myId());
    if (nearBottom || mine) log.scrollTop = log.scrollHeight;
  }
  $('load-older').hidden = client.historyComplete && !(client.messages[0]?.seq > 1);
}

function onChatSubmit(ev) {
  ev.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  if (client.chat(text) !== null) {
    input.value = '';
    $('chat-error').textContent = '';
  }
}

async function loadOlder() {
  const button = $('load-older');
  button.disabled = true;
  try {
    const oldest = client.messages[0]?.seq;
    const { messages } = await client.history(oldest);
    if (messages.length === 0) button.hidden = true;
  } catch (e) {
    toast(`Could not load older messages: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

function onError(err) {
  if (err.text !== undefined) {
    // A chat the server refused: say why and give the text back.
    $('chat-error').textContent = `${errorText(err)} (${err.code})`;
    const input = $('chat-input');
    if (!input.value) input.value = err.text;
    return;
  }
  if (err.code === 'NOT_CONNECTED') {
    $('chat-error').textContent = errorText(err);
    return;
  }
  toast(`${errorText(err)}${err.code && ERROR_TEXT[err.code] ? ` (${err.code})` : ''}`);
}

// ---- your own presence

function onSeatClick(ev) {
  if (!client) return;
  const box = $('seating').getBoundingClientRect();
  const x = clamp01((ev.clientX - box.left - INSET.left) / (box.width - INSET.left - INSET.right));
  const y = clamp01((ev.clientY - box.top - INSET.top) / (box.height - INSET.top - INSET.bottom));
  client.presence({ x: round3(x), y: round3(y) });
}

function onSeatKey(ev) {
  const me = client?.self();
  if (!me) return;
  const step = ev.shiftKey ? ARROW_STEP * 5 : ARROW_STEP;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  const d = moves[ev.key];
  if (!d) return;
  ev.preventDefault();
  client.presence({ x: round3(clamp01(me.x + d[0])), y: round3(clamp01(me.y + d[1])) });
}

let statusTextTimer = null;
function sendStatusText() {
  clearTimeout(statusTextTimer);
  const text = $('status-text').value.trim();
  if (client?.self() && client.self().status_text !== text) client.presence({ status_text: text });
}

function wireControls() {
  $('join-form').addEventListener('submit', onJoinSubmit);
  $('seating').addEventListener('click', onSeatClick);
  $('seating').addEventListener('keydown', onSeatKey);
  for (const b of document.querySelectorAll('.emoji')) {
    b.addEventListener('click', () => {
      const me = client?.self();
      // Clicking the emoji you already show takes it away again.
      const emoji = me && me.emoji === b.dataset.emoji ? '' : b.dataset.emoji;
      client?.presence({ emoji });
    });
  }
  $('hand').addEventListener('click', () => client?.raiseHand(!client.self()?.hand));
  $('lower-all').addEventListener('click', () => client?.lowerHands());
  $('status').addEventListener('change', (ev) => client?.presence({ status: ev.target.value }));
  $('status-text').addEventListener('input', () => {
    clearTimeout(statusTextTimer);
    statusTextTimer = setTimeout(sendStatusText, STATUS_TEXT_DEBOUNCE_MS);
  });
  $('status-text').addEventListener('change', sendStatusText);
  $('chat-form').addEventListener('submit', onChatSubmit);
  $('load-older').addEventListener('click', loadOlder);
  $('leave').addEventListener('click', () => {
    client?.close();
    location.assign(location.pathname);
  });
  // Closing the tab is leaving on purpose: a close frame makes the member
  // leave at once instead of lingering through the reconnect grace.
  window.addEventListener('pagehide', () => client?.close());
  // Back from the back-forward cache the session is gone: start afresh.
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && client) location.reload();
  });
}

function start() {
  wireControls();
  const p = readLaunchParams();
  $('join-room').value = p.room || localStorage.getItem('rollcall.room') || '';
  $('join-name').value = p.name || localStorage.getItem('rollcall.name') || '';
  if (p.token) {
    $('join-token').value = p.token;
    $('join-token-box').open = true;
  }
  // A link with everything needed joins at once.
  if (p.room && (p.token || p.name)) join({ room: p.room, name: p.name || '', token: p.token || '' });
  else $('join-room').focus();
}

start();
