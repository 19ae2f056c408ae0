// The sidebar: who I am, contact requests, room invitations, contacts and
// rooms (each a button that opens the conversation), and the add-contact form.
import { h, field, icon, avatar, reconcile, setText, setAttr, setPresenceDot, clearIfUnchanged } from './dom.js';
import { themeToggle } from '../theme.js';
import { dmConv, presenceText, formatShort } from '../util.js';

const TOPICS = ['contacts', 'convs', 'rooms', 'invites', 'current', 'typing', 'me', 'panel', 'blocks'];

export function mountSidebar(root, { store, session, actions, scope }) {
  // ---- header ---------------------------------------------------------------
  const roomsBtn = h('button', {
    type: 'button', class: 'nav-btn', 'aria-label': 'Rooms',
    onclick: () => store.set('panel', store.panel === 'rooms' ? null : 'rooms'),
  }, icon('hash'), h('span', null, 'Rooms'));
  const settingsBtn = h('button', {
    type: 'button', class: 'nav-btn', 'aria-label': 'Settings',
    onclick: () => store.set('panel', store.panel === 'settings' ? null : 'settings'),
  }, icon('settings'), h('span', null, 'Settings'));

  const header = h('div', { class: 'sidebar-head' },
    h('h1', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, icon('chat')), h('span', null, 'Chat')),
    themeToggle());
  const nav = h('div', { class: 'sidebar-nav' }, roomsBtn, settingsBtn);

  // ---- add contact ----------------------------------------------------------
  const addInput = h('input', { type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', placeholder: 'Add contact by username' });
  const addForm = h('form', {
    class: 'add-contact',
    onsubmit: async (e) => {
      e.preventDefault();
      if (!addInput.value.trim()) { addInput.focus(); return; }
      const v = addInput.value;
      if (await actions.addContact(v)) clearIfUnchanged(addInput, v);
    },
  }, field('Add contact', addInput, { hideLabel: true }), h('button', { type: 'submit', class: 'btn btn-small' }, 'Add'));

  // ---- sections ---------------------------------------------------------------
  const requestsList = h('ul', { class: 'list' });
  const invitesList = h('ul', { class: 'list' });
  const contactsList = h('ul', { class: 'list' });
  const roomsList = h('ul', { class: 'list' });
  const contactsEmpty = h('p', { class: 'list-empty' }, 'No contacts yet. Add someone by their username.');
  const roomsEmpty = h('p', { class: 'list-empty' }, 'You are not in any room. ',
    h('button', { type: 'button', class: 'link-btn', onclick: () => store.set('panel', 'rooms') }, 'Find a room'));

  const section = (title, ...content) => {
    const heading = h('h2', { class: 'section-title' }, title);
    return h('section', { class: 'section' }, heading, ...content);
  };
  const requestsSec = section('Contact requests', requestsList);
  const invitesSec = section('Room invitations', invitesList);
  const contactsSec = section('Contacts', contactsList, contactsEmpty);
  const roomsSec = section('Rooms', roomsList, roomsEmpty);

  const scroller = h('nav', { class: 'sidebar-scroll', 'aria-label': 'Conversations' }, requestsSec, invitesSec, contactsSec, roomsSec);

  // ---- me -----------------------------------------------------------------------
  const meAvatar = h('span');
  const meName = h('span', { class: 'me-name' });
  const meStatus = h('span', { class: 'me-status muted' });
  const logoutBtn = h('button', {
    type: 'button', class: 'icon-btn', 'aria-label': 'Log out', title: 'Log out',
    onclick: () => session.logout(),
  }, icon('logout'));
  const me = h('div', { class: 'me' }, meAvatar, h('div', { class: 'me-text' }, meName, meStatus), logoutBtn);

  root.replaceChildren(header, nav, addForm, scroller, me);

  // ---- items --------------------------------------------------------------------
  function requestItem(c) {
    return h('li', { class: 'request' },
      avatar(c.user),
      h('div', { class: 'request-text' }, h('strong', null, c.user), h('span', { class: 'muted' }, 'wants to be your contact')),
      h('div', { class: 'request-actions' },
        h('button', { type: 'button', class: 'btn btn-small btn-primary', 'aria-label': `Accept ${c.user}`, onclick: () => actions.accept(c.user) }, 'Accept'),
        h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Decline ${c.user}`, onclick: () => actions.decline(c.user) }, 'Decline')));
  }

  function inviteItem(i) {
    return h('li', { class: 'request' },
      avatar(i.room, { room: true }),
      h('div', { class: 'request-text' }, h('strong', null, i.room), h('span', { class: 'muted' }, `invited by ${i.from}`)),
      h('div', { class: 'request-actions' },
        h('button', { type: 'button', class: 'btn btn-small btn-primary', 'aria-label': `Join ${i.room}`, onclick: () => actions.joinRoom(i.room) }, 'Join'),
        h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Dismiss invitation to ${i.room}`, title: 'Dismiss', onclick: () => actions.dismissInvite(i.room) }, icon('close'))));
  }

  // A row is a full-size button carrying the accessible name ("bob, online,
  // 2 unread") under a purely visual layer (avatar, name, time, presence,
  // badge) that lets clicks through, so the name and the visible text never
  // disagree for assistive technology.
  function convItem(open) {
    const av = h('span', { class: 'item-avatar' });
    const name = h('span', { class: 'item-name' });
    const time = h('span', { class: 'item-time' });
    const sub = h('span', { class: 'item-sub' });
    const badge = h('span', { class: 'badge' });
    const btn = h('button', { type: 'button', class: 'item' });
    btn.addEventListener('click', () => open(btn._key));
    const visual = h('span', { class: 'item-visual', 'aria-hidden': 'true' },
      av, h('span', { class: 'item-main' }, h('span', { class: 'item-row' }, name, time), h('span', { class: 'item-row' }, sub, badge)));
    const li = h('li', { class: 'item-li' }, btn, visual);
    li._parts = { btn, av, name, time, sub, badge };
    return li;
  }

  function fillItem(li, { key, label, title, avatarEl, presence, time, sub, subClass, unread, active }) {
    const p = li._parts;
    p.btn._key = key;
    setAttr(p.btn, 'aria-label', label);
    setAttr(p.btn, 'aria-current', active ? 'true' : null);
    setText(p.name, title);
    setText(p.time, time);
    setText(p.sub, sub);
    p.sub.className = `item-sub ${subClass || ''}`;
    setText(p.badge, unread ? (unread > 99 ? '99+' : String(unread)) : '');
    p.badge.hidden = !unread;
    if (!p.av.firstChild || p.av._for !== title) {
      p.av.replaceChildren(avatarEl());
      p.av._for = title;
    }
    if (presence !== undefined) setPresenceDot(p.av.firstChild, presence);
  }

  function typingText(conv) {
    if (!conv || !conv.typing.size) return null;
    const users = [...conv.typing.keys()];
    return users.length === 1 ? `${users[0]} is typing…` : 'several people are typing…';
  }

  function render() {
    const now = Date.now();
    const contacts = [...store.contacts.values()];

    // Requests.
    const requests = contacts.filter((c) => c.state === 'pending_in');
    requestsSec.hidden = !requests.length;
    reconcile(requestsList, requests, (c) => c.user, requestItem);

    // Invitations.
    const invites = [...store.invites.values()].filter((i) => !store.rooms.has(i.room));
    invitesSec.hidden = !invites.length;
    reconcile(invitesList, invites, (i) => i.room, inviteItem);

    // Contacts (mutual and waiting for an answer), plus direct conversations with former contacts.
    const people = contacts.filter((c) => c.state === 'mutual' || c.state === 'pending_out');
    const known = new Set(people.map((c) => c.user));
    for (const conv of store.convs.values()) {
      if (conv.kind === 'dm' && !known.has(conv.peer) && conv.last_seq > 0 && !store.contacts.has(conv.peer)) {
        people.push({ user: conv.peer, state: 'none' });
        known.add(conv.peer);
      }
    }
    const convOf = (user) => store.convs.get(dmConv(store.me, user));
    people.sort((a, b) => ((convOf(b.user)?.last_ts || 0) - (convOf(a.user)?.last_ts || 0)) || a.user.localeCompare(b.user));
    contactsEmpty.hidden = people.length > 0;
    reconcile(contactsList, people, (c) => `${c.state === 'pending_out' ? 'out' : 'c'}:${c.user}`,
      (c) => (c.state === 'pending_out' ? pendingOutItem(c) : convItem((key) => actions.openContact(key))),
      (li, c) => {
        if (c.state === 'pending_out') return;
        const conv = convOf(c.user);
        const unread = conv ? conv.unread : 0;
        const presence = c.state === 'mutual' ? c.presence || 'offline' : null;
        const blocked = !!store.blocks && store.blocks.includes(c.user);
        const presenceWord = c.state === 'mutual' ? presence : blocked ? 'blocked' : 'not a contact';
        const typing = typingText(conv);
        const last = conv && conv.last_ts ? formatShort(conv.last_ts, now) : '';
        let sub = blocked ? 'blocked' : presenceText(c, now);
        if (c.note && c.state === 'mutual') sub += ` · ${c.note}`;
        fillItem(li, {
          key: c.user,
          label: `${c.user}, ${presenceWord}${unread ? `, ${unread} unread` : ''}`,
          title: c.user,
          avatarEl: () => avatar(c.user, { presence: presence || 'offline' }),
          presence: presence || 'offline',
          time: last,
          sub: typing || sub,
          subClass: typing ? 'typing' : '',
          unread,
          active: store.current === dmConv(store.me, c.user) && !store.panel,
        });
      });

    // Rooms.
    const rooms = [...store.rooms.values()];
    const roomConv = (r) => store.convs.get(`room:${r.name}`);
    rooms.sort((a, b) => ((roomConv(b)?.last_ts || 0) - (roomConv(a)?.last_ts || 0)) || a.name.localeCompare(b.name));
    roomsEmpty.hidden = rooms.length > 0;
    reconcile(roomsList, rooms, (r) => r.name, () => convItem((key) => actions.openRoom(key)), (li, r) => {
      const conv = roomConv(r);
      const unread = conv ? conv.unread : 0;
      const lastMsg = conv && conv.lastMessage();
      const typing = typingText(conv);
      let sub = r.topic || '';
      if (lastMsg) sub = `${lastMsg.from === store.me ? 'You' : lastMsg.from}: ${lastMsg.attachment ? `📎 ${lastMsg.attachment.name}` : lastMsg.body}`;
      fillItem(li, {
        key: r.name,
        label: `${r.name}, room${unread ? `, ${unread} unread` : ''}`,
        title: r.name,
        avatarEl: () => avatar(r.name, { room: true }),
        time: conv && conv.last_ts ? formatShort(conv.last_ts, now) : '',
        sub: typing || sub || 'No messages yet',
        subClass: typing ? 'typing' : '',
        unread,
        active: store.current === `room:${r.name}` && !store.panel,
      });
    });

    // Me.
    if (meAvatar._for !== store.me) {
      meAvatar.replaceChildren(avatar(store.me || '?', { presence: store.myPresence.status }));
      meAvatar._for = store.me;
    }
    setPresenceDot(meAvatar.firstChild, store.myPresence.status);
    setText(meName, store.me || '');
    setText(meStatus, store.myPresence.note ? `${store.myPresence.status} · ${store.myPresence.note}` : store.myPresence.status);

    setAttr(roomsBtn, 'aria-expanded', String(store.panel === 'rooms'));
    setAttr(settingsBtn, 'aria-expanded', String(store.panel === 'settings'));
    roomsBtn.classList.toggle('active', store.panel === 'rooms');
    settingsBtn.classList.toggle('active', store.panel === 'settings');
  }

  function pendingOutItem(c) {
    return h('li', { class: 'request request-out' },
      avatar(c.user),
      h('div', { class: 'request-text' }, h('strong', null, c.user), h('span', { class: 'muted' }, 'request sent')),
      h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Cancel request to ${c.user}`, onclick: () => actions.removeContact(c.user) }, 'Cancel'));
  }

  scope.subscribe(store, (topics) => {
    if (TOPICS.some((t) => topics.has(t))) render();
  });
  scope.interval(render, 60000); // "last seen" and times age
  render();
}
