// The room panel: topic (editable by owners), invitations, the member list
// with who is online, and the owner's kick and unban controls.
import { h, field, icon, avatar, reconcile, setText, setPresenceDot, replace, clearIfUnchanged } from './dom.js';
import { parseConv } from '../util.js';

export function mountMembers(root, { store, actions, ui, scope }) {
  const closeBtn = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close member list', title: 'Close', onclick: () => ui.closeMembers() }, icon('close'));
  const heading = h('h2', { class: 'panel-title', tabindex: '-1' }, 'Members');

  // Topic: text for everyone, a form for owners.
  const topicText = h('p', { class: 'topic-text' });
  const topicInput = h('input', { type: 'text', maxlength: '256', autocomplete: 'off' });
  const topicForm = h('form', {
    class: 'stack',
    onsubmit: async (e) => {
      e.preventDefault();
      const room = currentRoom();
      if (room) await actions.setTopic(room, topicInput.value.trim());
    },
  }, field('Room topic', topicInput), h('button', { type: 'submit', class: 'btn btn-small' }, 'Save topic'));

  // Invite.
  const inviteInput = h('input', { type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', placeholder: 'username' });
  const inviteForm = h('form', {
    class: 'inline-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const room = currentRoom();
      if (!room || !inviteInput.value.trim()) { inviteInput.focus(); return; }
      const v = inviteInput.value;
      if (await actions.invite(room, v)) clearIfUnchanged(inviteInput, v);
    },
  }, field('Invite user', inviteInput), h('button', { type: 'submit', class: 'btn btn-small btn-primary' }, 'Invite'));

  // Unban (owners): the server keeps no list of bans, so it takes a name.
  const unbanInput = h('input', { type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', placeholder: 'username' });
  const unbanForm = h('form', {
    class: 'inline-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const room = currentRoom();
      if (!room || !unbanInput.value.trim()) { unbanInput.focus(); return; }
      const v = unbanInput.value;
      if (await actions.unban(room, v)) clearIfUnchanged(unbanInput, v);
    },
  }, field('Unban user', unbanInput), h('button', { type: 'submit', class: 'btn btn-small' }, 'Unban'));

  const list = h('ul', { class: 'member-list', 'aria-label': 'Members' });
  const countLine = h('p', { class: 'muted small' });
  const topicSec = h('section', { class: 'panel-sec' }, h('h3', null, 'Topic'), topicText);
  const inviteSec = h('section', { class: 'panel-sec' }, inviteForm);
  const listSec = h('section', { class: 'panel-sec' }, h('h3', null, 'People'), countLine, list);
  const unbanSec = h('section', { class: 'panel-sec' }, h('h3', null, 'Bans'), h('p', { class: 'muted small' }, 'Kicked members are banned until you lift it.'), unbanForm);

  const head = h('header', { class: 'panel-head' }, heading, closeBtn);
  const body = h('div', { class: 'panel-body' }, topicSec, inviteSec, listSec);

  function currentRoom() {
    if (!store.current) return null;
    const p = parseConv(store.current, store.me);
    return p.kind === 'room' ? p.room : null;
  }

  function memberItem(m) {
    const av = avatar(m.user, { presence: m.online ? 'online' : 'offline', size: 'sm' });
    const name = h('span', { class: 'member-name' });
    const role = h('span', { class: 'role-badge' }, 'owner');
    const state = h('span', { class: 'member-state muted' });
    const actionsSlot = h('span', { class: 'member-actions' });
    const li = h('li', { class: 'member' }, av, h('span', { class: 'member-text' }, h('span', { class: 'member-row' }, name, role), state), actionsSlot);
    li._parts = { av, name, role, state, actionsSlot };
    return li;
  }

  function updateMember(li, m, room, owner) {
    const p = li._parts;
    setText(p.name, m.user === store.me ? `${m.user} (you)` : m.user);
    p.role.hidden = m.role !== 'owner';
    setText(p.state, m.online ? 'online' : 'offline');
    setPresenceDot(p.av, m.online ? 'online' : 'offline');
    const canKick = owner && m.user !== store.me && m.role !== 'owner';
    if (canKick && !p.actionsSlot.firstChild) {
      replace(p.actionsSlot, h('button', { type: 'button', class: 'btn btn-small danger', 'aria-label': `Kick ${m.user}`, title: `Remove ${m.user} and ban them`, onclick: () => actions.kick(room, m.user) }, 'Kick'));
    } else if (!canKick && p.actionsSlot.firstChild) {
      p.actionsSlot.replaceChildren();
    }
  }

  let shownRoom = null;
  function render() {
    const name = currentRoom();
    const room = name && store.rooms.get(name);
    // Only in the page while shown, so its fields never shadow others' labels.
    if (!room || !store.membersOpen || store.panel) {
      root.hidden = true;
      root.replaceChildren();
      shownRoom = null;
      return;
    }
    root.hidden = false;
    if (!root.firstChild) root.replaceChildren(head, body);
    const owner = store.isRoomOwner(name);
    setText(heading, `${name} members`);
    setText(topicText, room.topic || 'No topic.');
    if (owner) {
      if (topicText.parentNode) topicText.replaceWith(topicForm);
      if (shownRoom !== name || document.activeElement !== topicInput) topicInput.value = room.topic || '';
    } else if (topicForm.parentNode) {
      topicForm.replaceWith(topicText);
    }
    if (owner && !unbanSec.parentNode) body.append(unbanSec);
    else if (!owner && unbanSec.parentNode) unbanSec.remove();
    if (shownRoom !== name) {
      inviteInput.value = '';
      unbanInput.value = '';
      shownRoom = name;
    }
    const members = room.members ? [...room.members.values()] : [];
    members.sort((a, b) => (b.online - a.online) || ((b.role === 'owner') - (a.role === 'owner')) || a.user.localeCompare(b.user));
    const online = members.filter((m) => m.online).length;
    setText(countLine, room.members ? `${members.length} member${members.length === 1 ? '' : 's'}, ${online} online` : 'Loading…');
    reconcile(list, members, (m) => m.user, memberItem, (li, m) => updateMember(li, m, name, owner));
  }

  scope.subscribe(store, (topics) => {
    if (topics.has('members') || topics.has('current') || topics.has('rooms') || topics.has('panel') || topics.has('me')) render();
  });
  render();

  return {
    focusInvite() { inviteInput.focus(); },
    focus() { heading.focus(); },
  };
}
