// The rooms browser: search public rooms by name or topic, join or open
// them, and create a new room.
import { h, field, icon, avatar, reconcile, setText, replace, clearIfUnchanged } from './dom.js';

export function createRoomsPanel({ store, actions, ui, scope }) {
  const heading = h('h2', { class: 'panel-title', tabindex: '-1' }, 'Rooms');
  const backBtn = h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Back', title: 'Back', onclick: () => ui.closePanel() }, icon('back'));
  const closeBtn = h('button', { type: 'button', class: 'icon-btn close-btn', 'aria-label': 'Close panel', title: 'Close', onclick: () => ui.closePanel() }, icon('close'));

  // Search.
  const search = h('input', { type: 'search', autocomplete: 'off', placeholder: 'Search by name or topic' });
  const results = h('ul', { class: 'room-results', 'aria-label': 'Public rooms' });
  const resultsNote = h('p', { class: 'muted small', 'aria-live': 'polite' });
  let timer = null;
  let seq = 0;
  let lastRooms = [];
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(load, 250);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); clearTimeout(timer); load(); }
  });

  async function load() {
    const mine = ++seq;
    const q = search.value.trim();
    setText(resultsNote, 'Searching…');
    const rooms = await actions.listRooms(q);
    if (mine !== seq) return;
    if (!rooms) { setText(resultsNote, 'Could not load the rooms. Try again once connected.'); return; }
    lastRooms = rooms;
    renderResults();
  }

  function resultItem(r) {
    const li = h('li', { class: 'room-result' });
    li._parts = {
      topic: h('span', { class: 'muted' }),
      counts: h('span', { class: 'muted small' }),
      action: h('span', { class: 'room-action' }),
    };
    li.append(avatar(r.name, { room: true }),
      h('span', { class: 'room-text' }, h('strong', null, r.name), li._parts.topic, li._parts.counts),
      li._parts.action);
    return li;
  }

  function updateResult(li, r) {
    const p = li._parts;
    setText(p.topic, r.topic || 'No topic');
    setText(p.counts, `${r.members} member${r.members === 1 ? '' : 's'} · ${r.online} online`);
    const member = store.rooms.has(r.name);
    if (p.action._member !== member) {
      p.action._member = member;
      replace(p.action, member
        ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Open ${r.name}`, onclick: () => actions.openRoom(r.name) }, 'Open')
        : h('button', { type: 'button', class: 'btn btn-small btn-primary', 'aria-label': `Join ${r.name}`, onclick: () => actions.joinRoom(r.name) }, 'Join'));
    }
  }

  function renderResults() {
    reconcile(results, lastRooms, (r) => r.name, resultItem, updateResult);
    const q = search.value.trim();
    setText(resultsNote, lastRooms.length
      ? `${lastRooms.length} public room${lastRooms.length === 1 ? '' : 's'}${q ? ` matching “${q}”` : ''}`
      : (q ? `No public room matches “${q}”.` : 'No public rooms yet. Create the first one!'));
  }

  // Create.
  const nameInput = h('input', { type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: '64', required: true });
  const topicInput = h('input', { type: 'text', autocomplete: 'off', maxlength: '256' });
  const publicBox = h('input', { type: 'checkbox', checked: true });
  publicBox.id = 'room-public';
  const createForm = h('form', {
    class: 'stack create-room',
    onsubmit: async (e) => {
      e.preventDefault();
      if (!nameInput.value.trim()) { nameInput.focus(); return; }
      const name = nameInput.value;
      const topic = topicInput.value;
      if (await actions.createRoom(name, topic.trim(), publicBox.checked)) {
        clearIfUnchanged(nameInput, name);
        clearIfUnchanged(topicInput, topic);
        publicBox.checked = true;
      }
    },
  },
  field('Room name', nameInput, { hint: '3 to 32 characters: a–z, 0–9, “_”, “.” or “-”.' }),
  field('Topic', topicInput),
  h('div', { class: 'field' },
    h('div', { class: 'check' }, publicBox, h('label', { htmlFor: 'room-public' }, 'Public')),
    h('p', { class: 'field-hint' }, 'Anyone can find and join a public room. Private rooms are by invitation.')),
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create room'));

  const el = h('section', { class: 'panel rooms-panel', 'aria-labelledby': 'rooms-title' },
    h('header', { class: 'panel-head' }, backBtn, heading, closeBtn),
    h('div', { class: 'panel-body panel-columns' },
      h('section', { class: 'panel-sec' }, h('h3', null, 'Find a room'), field('Search rooms', search, { hideLabel: true }), resultsNote, results),
      h('section', { class: 'panel-sec card' }, h('h3', null, 'Create a room'), createForm)));
  heading.id = 'rooms-title';

  scope.subscribe(store, (topics) => { if (topics.has('rooms') && el.isConnected) renderResults(); });

  return {
    el,
    onShow() {
      load();
      if (matchMedia('(min-width: 721px)').matches) search.focus();
      else heading.focus();
    },
  };
}
