// The open conversation: header, message list (with day separators, the
// "New messages" marker, infinite scroll back through history) and composer.
import { h, field, icon, avatar, reconcile, replace, setText, setAttr, setPresenceDot } from './dom.js';
import { createRow, updateRow } from './message.js';
import { dayKey, formatDay, presenceText } from '../util.js';

const NEAR_BOTTOM = 80;
const NEAR_TOP = 300;
const GROUP_GAP = 5 * 60 * 1000;

export function createConversation(ctx) {
  const { store, chat, actions, files, ui, scope } = ctx;
  let convId = null;
  let stick = true;          // keep the view pinned to the newest message

  // ---- header -------------------------------------------------------------------
  const backBtn = h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Back', title: 'Back', onclick: () => chat.close() }, icon('back'));
  const headAvatar = h('span', { class: 'head-avatar' });
  const title = h('h2', { class: 'conv-title', tabindex: '-1' });
  const subtitle = h('p', { class: 'conv-sub' });
  const headActions = h('div', { class: 'head-actions' });
  const header = h('header', { class: 'conv-head' }, backBtn, headAvatar, h('div', { class: 'conv-titles' }, title, subtitle), headActions);

  const dmActions = h('div', { class: 'head-actions-set' },
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Remove contact', title: 'Remove contact', onclick: () => { const c = store.convs.get(convId); if (c) actions.removeContact(c.peer); } }, icon('userMinus')),
    h('button', { type: 'button', class: 'icon-btn danger', 'aria-label': 'Block', title: 'Block', onclick: () => { const c = store.convs.get(convId); if (c) actions.block(c.peer); } }, icon('block')));
  const addBackBtn = h('button', { type: 'button', class: 'btn btn-small', onclick: () => { const c = store.convs.get(convId); if (c) actions.addContact(c.peer); } }, 'Request contact');
  const unblockBtn = h('button', { type: 'button', class: 'btn btn-small', onclick: () => { const c = store.convs.get(convId); if (c) actions.unblock(c.peer); } }, 'Unblock');
  const membersBtn = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Members', title: 'Members', onclick: () => ui.openMembers() }, icon('users'));
  const inviteBtn = h('button', { type: 'button', class: 'icon-btn invite-open', 'aria-label': 'Invite', title: 'Invite someone', onclick: () => ui.openMembers({ invite: true }) }, icon('userPlus'));
  const leaveBtn = h('button', { type: 'button', class: 'icon-btn danger', 'aria-label': 'Leave room', title: 'Leave room', onclick: () => { const c = store.convs.get(convId); if (c) actions.leaveRoom(c.room); } }, icon('leave'));
  const roomActions = h('div', { class: 'head-actions-set' }, membersBtn, inviteBtn, leaveBtn);

  // ---- messages -----------------------------------------------------------------
  const loader = h('p', { class: 'history-edge' });
  const list = h('ol', { class: 'messages', 'aria-label': 'Messages' });
  const scroller = h('div', { class: 'scroller', role: 'region', 'aria-label': 'Conversation history', tabindex: '0' }, loader, list);
  const jumpBtn = h('button', { type: 'button', class: 'jump-btn', hidden: true, onclick: () => scrollToBottom(true) }, 'Jump to latest');
  const typingLine = h('div', { class: 'typing-line', 'aria-live': 'polite' });

  // ---- composer -----------------------------------------------------------------
  const fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'aria-label': 'Choose file', tabindex: '-1' });
  const attachBtn = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Attach file', title: 'Attach file', onclick: () => fileInput.click() }, icon('attach'));
  const textarea = h('textarea', { rows: '1', placeholder: 'Message', autocomplete: 'off', enterkeyhint: 'send' });
  const sendBtn = h('button', { type: 'submit', class: 'send-btn', 'aria-label': 'Send', title: 'Send (Enter)' }, icon('send'));
  const composer = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); submit(); } },
    attachBtn, fileInput, h('div', { class: 'composer-field' }, field('Message', textarea, { hideLabel: true })), sendBtn);

  const dropHint = h('div', { class: 'drop-hint', 'aria-hidden': 'true' }, icon('attach'), h('span', null, 'Drop files to send'));
  title.id = 'conv-title';
  const el = h('section', { class: 'conversation', 'aria-labelledby': 'conv-title' }, header, h('div', { class: 'scroll-wrap' }, scroller, jumpBtn), typingLine, composer, dropHint);

  // ---- behaviour ----------------------------------------------------------------
  function submit() {
    const body = textarea.value;
    if (!convId || !body.trim()) return;
    chat.send(convId, body);
    textarea.value = '';
    autosize();
    stick = true;
    textarea.focus();
  }

  function autosize() {
    textarea.style.height = 'auto';
    textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
  }

  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  textarea.addEventListener('input', () => {
    autosize();
    if (convId && textarea.value.trim()) chat.typing(convId);
  });
  textarea.addEventListener('paste', (e) => {
    const items = [...(e.clipboardData?.files || [])];
    if (items.length && convId) {
      e.preventDefault();
      sendFiles(items);
    }
  });
  fileInput.addEventListener('change', () => {
    sendFiles([...fileInput.files]);
    fileInput.value = '';
  });

  function sendFiles(list) {
    if (!convId) return;
    stick = true;
    for (const f of list) chat.sendFile(convId, f);
  }

  // Drag and drop anywhere on the conversation.
  let dragDepth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  el.addEventListener('dragenter', (e) => { if (hasFiles(e)) { dragDepth++; el.classList.add('dragging'); } });
  el.addEventListener('dragleave', () => { if (dragDepth > 0 && --dragDepth === 0) el.classList.remove('dragging'); });
  el.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } });
  el.addEventListener('drop', (e) => {
    dragDepth = 0;
    el.classList.remove('dragging');
    if (!hasFiles(e)) return;
    e.preventDefault();
    sendFiles([...e.dataTransfer.files]);
  });

  // Scrolling: stick to the bottom, ack when there, load older at the top.
  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM;
  }
  function scrollToBottom(smooth = false) {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: smooth ? 'smooth' : 'instant' });
    stick = true;
    jumpBtn.hidden = true;
    chat.setAtBottom(true);
  }
  let savedTop = 0;
  scroller.addEventListener('scroll', () => {
    if (!scroller.isConnected) return;
    savedTop = scroller.scrollTop;
    stick = nearBottom();
    jumpBtn.hidden = stick;
    chat.setAtBottom(stick);
    if (scroller.scrollTop < NEAR_TOP) maybeLoadOlder();
  }, { passive: true });

  function maybeLoadOlder() {
    const conv = convId && store.convs.get(convId);
    if (!conv || conv.loadingOlder || !conv.loadedLatest || !conv.hasOlder()) return;
    chat.loadOlder(convId);
  }

  function onMediaLoad() {
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  const rowCtx = { files, onMediaLoad, retry: (clientId) => chat.retry(convId, clientId) };

  // ---- rendering ----------------------------------------------------------------
  function ownStatus(conv, m) {
    if (conv.kind !== 'dm') return 'sent';
    if (conv.peer_read_seq >= m.seq) return 'read';
    if (conv.peer_delivered_seq >= m.seq) return 'delivered';
    return 'sent';
  }

  function rows(conv) {
    const out = [];
    const me = store.me;
    let prevDay = null;
    let prev = null;
    let sepDone = false;
    const push = (item, from, ts) => {
      const day = dayKey(ts);
      if (day !== prevDay) {
        out.push({ type: 'day', key: `d:${day}`, label: formatDay(ts) });
        prevDay = day;
        prev = null;
      }
      item.grouped = !!prev && prev.from === from && ts - prev.ts < GROUP_GAP;
      if (item.grouped) prev.row.groupEnd = false;
      item.groupEnd = true;
      out.push(item);
      prev = { from, ts, row: item };
    };
    for (const m of conv.visible()) {
      if (!sepDone && conv.separatorSeq !== null && m.seq > conv.separatorSeq && m.from !== me) {
        sepDone = true;
        const day = dayKey(m.ts);
        if (day !== prevDay) {
          out.push({ type: 'day', key: `d:${day}`, label: formatDay(m.ts) });
          prevDay = day;
        }
        out.push({ type: 'new', key: 'new' });
        prev = null;
      }
      const own = m.from === me;
      push({ type: 'msg', key: `m:${m.seq}`, msg: m, own, room: conv.kind === 'room', status: own ? ownStatus(conv, m) : null }, m.from, m.ts);
    }
    const pending = [...conv.outbox.values()].sort((a, b) => a.ts - b.ts);
    for (const p of pending) {
      push({ type: 'msg', key: `p:${p.client_id}`, pending: p, own: true, room: conv.kind === 'room', status: p.status }, me, p.ts);
    }
    return out;
  }

  function renderList() {
    const conv = convId && store.convs.get(convId);
    if (!conv) return;
    // Remember what is on screen so prepending older pages does not move it.
    let anchor = null;
    let anchorTop = 0;
    if (!stick) {
      for (const li of list.children) {
        if (li.offsetTop + li.offsetHeight > scroller.scrollTop) { anchor = li; anchorTop = li.offsetTop; break; }
      }
    }
    reconcile(list, rows(conv), (r) => r.key, (r) => createRow(r, rowCtx), (li, r) => updateRow(li, r, rowCtx));

    if (conv.loadingOlder || (!conv.loadedLatest && conv.loadingLatest)) setText(loader, 'Loading…');
    else if (conv.loadedLatest && !conv.hasOlder()) setText(loader, conv.messages.size ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!');
    else setText(loader, '');

    if (stick) scroller.scrollTop = scroller.scrollHeight;
    else if (anchor && anchor.isConnected) scroller.scrollTop += anchor.offsetTop - anchorTop;
    jumpBtn.hidden = stick;
    // Not enough to fill the screen: fetch more right away.
    if (conv.loadedLatest && scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP) maybeLoadOlder();
  }

  function renderHeader() {
    const conv = convId && store.convs.get(convId);
    if (!conv) return;
    if (conv.kind === 'dm') {
      const c = store.contacts.get(conv.peer);
      const mutual = c && c.state === 'mutual';
      const presence = mutual ? c.presence || 'offline' : 'offline';
      if (headAvatar._for !== conv.id) {
        replace(headAvatar, avatar(conv.peer, { presence }));
        headAvatar._for = conv.id;
      }
      setPresenceDot(headAvatar.firstChild, presence);
      setText(title, conv.peer);
      const blocked = !!store.blocks && store.blocks.includes(conv.peer);
      let sub = blocked ? 'blocked' : presenceText(c || { state: 'none' });
      if (mutual && c.note) sub += ` · ${c.note}`;
      setText(subtitle, sub);
      const wanted = blocked ? unblockBtn : mutual ? dmActions : !c ? addBackBtn : null;
      if (!wanted) headActions.replaceChildren();
      else if (headActions.firstChild !== wanted) replace(headActions, wanted);
      textarea.placeholder = `Message ${conv.peer}`;
    } else {
      const room = store.rooms.get(conv.room) || { topic: null };
      if (headAvatar._for !== conv.id) {
        replace(headAvatar, avatar(conv.room, { room: true }));
        headAvatar._for = conv.id;
      }
      setText(title, conv.room);
      const count = room.members ? room.members.size : null;
      const online = room.members ? [...room.members.values()].filter((m) => m.online).length : null;
      const counts = count !== null ? `${count} member${count === 1 ? '' : 's'}, ${online} online` : '';
      setText(subtitle, [room.topic, counts].filter(Boolean).join(' · '));
      if (headActions.firstChild !== roomActions) replace(headActions, roomActions);
      setAttr(membersBtn, 'aria-expanded', String(store.membersOpen));
      textarea.placeholder = `Message #${conv.room}`;
    }
  }

  function renderTyping() {
    const conv = convId && store.convs.get(convId);
    const users = conv ? [...conv.typing.keys()] : [];
    let text = '';
    if (users.length === 1) text = `${users[0]} is typing…`;
    else if (users.length === 2) text = `${users[0]} and ${users[1]} are typing…`;
    else if (users.length > 2) text = 'Several people are typing…';
    setText(typingLine, text);
    typingLine.classList.toggle('shown', !!text);
  }

  function show(id) {
    if (id === convId) return;
    convId = id;
    list.replaceChildren();
    list._keyed = null;
    headAvatar._for = null;
    stick = true;
    textarea.value = '';
    autosize();
    renderHeader();
    renderList();
    renderTyping();
    scrollToBottom();
    if (matchMedia('(min-width: 721px)').matches) textarea.focus();
    else title.focus();
  }

  scope.subscribe(store, (topics) => {
    if (!convId || !store.convs.has(convId)) return;
    if (topics.has(`msgs:${convId}`)) renderList();
    if (['contacts', 'rooms', 'members', 'panel', 'me', 'blocks'].some((t) => topics.has(t))) renderHeader();
    if (topics.has('typing')) renderTyping();
  });
  scope.interval(() => { if (convId) renderHeader(); }, 60000);

  return {
    el,
    show,
    hide() { convId = null; },
    get convId() { return convId; },
    focusComposer() { textarea.focus(); },
    /** Back in the page after a panel: the browser forgot the scroll position. */
    reattached() {
      if (stick) scroller.scrollTop = scroller.scrollHeight;
      else scroller.scrollTop = savedTop;
    },
  };
}
