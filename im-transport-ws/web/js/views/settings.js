// Settings: status and note, notifications, devices, password, blocked users.
import { h, field, icon, reconcile, setText, replace, clearIfUnchanged } from './dom.js';
import { formatFull, formatShort } from '../util.js';
import { notificationState, enableNotifications, disableNotifications } from '../notify.js';

export function createSettingsPanel({ store, actions, session, ui, scope }) {
  const heading = h('h2', { class: 'panel-title', tabindex: '-1' }, 'Settings');
  heading.id = 'settings-title';
  const backBtn = h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Back', title: 'Back', onclick: () => ui.closePanel() }, icon('back'));
  const closeBtn = h('button', { type: 'button', class: 'icon-btn close-btn', 'aria-label': 'Close panel', title: 'Close', onclick: () => ui.closePanel() }, icon('close'));

  // ---- status -----------------------------------------------------------------
  const statusSelect = h('select', null,
    h('option', { value: 'online' }, 'Online'),
    h('option', { value: 'away' }, 'Away'),
    h('option', { value: 'busy' }, 'Busy'));
  const noteInput = h('input', { type: 'text', maxlength: '256', autocomplete: 'off', placeholder: 'What are you up to?' });
  const statusForm = h('form', {
    class: 'stack',
    onsubmit: async (e) => {
      e.preventDefault();
      if (await actions.setPresence(statusSelect.value, noteInput.value.trim())) store.showAlert('Status saved.', 'info');
    },
  }, h('div', { class: 'row-fields' }, field('Status', statusSelect), field('Status note', noteInput)),
  h('div', null, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save status')));

  // ---- notifications ------------------------------------------------------------
  const notifText = h('p', { class: 'muted' });
  const notifAction = h('div');
  function renderNotifications() {
    const state = notificationState();
    const texts = {
      unsupported: 'This browser does not support desktop notifications.',
      denied: 'Notifications are blocked for this site. Allow them in the browser’s site settings.',
      default: 'Get a desktop notification when a message arrives while this tab is in the background.',
      on: 'Notifications are on: you will be told about messages while this tab is in the background.',
      off: 'Notifications are off.',
    };
    setText(notifText, texts[state]);
    if (state === 'default' || state === 'off') {
      replace(notifAction, h('button', {
        type: 'button', class: 'btn',
        onclick: async () => { await enableNotifications(); renderNotifications(); },
      }, icon('bell'), h('span', null, 'Enable notifications')));
    } else if (state === 'on') {
      replace(notifAction, h('button', { type: 'button', class: 'btn', onclick: () => { disableNotifications(); renderNotifications(); } }, 'Turn off notifications'));
    } else {
      notifAction.replaceChildren();
    }
  }

  // ---- devices ------------------------------------------------------------------
  const deviceList = h('ul', { class: 'device-list' });
  const deviceNote = h('p', { class: 'muted small' });
  function deviceItem(d) {
    const li = h('li', { class: 'device' });
    li._parts = { name: h('strong'), info: h('span', { class: 'muted small' }), tag: h('span', { class: 'tag' }), action: h('span') };
    li.append(h('span', { class: 'device-text' }, h('span', null, li._parts.name, ' ', li._parts.tag), li._parts.info), li._parts.action);
    return li;
  }
  function updateDevice(li, d) {
    const p = li._parts;
    const mine = session.auth && d.device === session.auth.device;
    setText(p.name, d.device);
    setText(p.tag, mine ? 'this device' : d.online ? 'online' : '');
    p.tag.hidden = !mine && !d.online;
    p.tag.className = `tag ${mine ? 'tag-accent' : 'tag-online'}`;
    const when = d.last_login ? `last login ${formatShort(d.last_login)}` : 'never logged in';
    setText(p.info, d.online ? `online now · ${when}` : when);
    p.info.title = d.last_login ? formatFull(d.last_login) : '';
    if (!p.action.firstChild) {
      replace(p.action, h('button', { type: 'button', class: 'btn btn-small danger', 'aria-label': `Revoke ${d.device}`, onclick: () => actions.revokeDevice(d.device) }, 'Revoke'));
    }
  }
  function renderDevices() {
    const devices = store.devices || [];
    reconcile(deviceList, devices, (d) => d.device, deviceItem, updateDevice);
    setText(deviceNote, store.devices ? (devices.length ? 'Revoking a device signs it out at once and forgets its login.' : 'No devices.') : 'Loading…');
  }

  // ---- password -------------------------------------------------------------------
  const oldPw = h('input', { type: 'password', autocomplete: 'current-password' });
  const newPw = h('input', { type: 'password', autocomplete: 'new-password' });
  const pwForm = h('form', {
    class: 'stack',
    onsubmit: async (e) => {
      e.preventDefault();
      if (!oldPw.value || !newPw.value) { (oldPw.value ? newPw : oldPw).focus(); return; }
      const bytes = new TextEncoder().encode(newPw.value).length;
      if (bytes < 8 || bytes > 72) {
        store.showAlert('The new password must be 8 to 72 bytes long.');
        newPw.focus();
        return;
      }
      const [o, n] = [oldPw.value, newPw.value];
      if (await actions.changePassword(o, n)) {
        clearIfUnchanged(oldPw, o);
        clearIfUnchanged(newPw, n);
      }
    },
  }, h('div', { class: 'row-fields' }, field('Current password', oldPw), field('New password', newPw, { hint: '8 to 72 bytes. Your other devices will be signed out.' })),
  h('div', null, h('button', { type: 'submit', class: 'btn' }, 'Change password')));

  // ---- blocked users ------------------------------------------------------------
  const blockList = h('ul', { class: 'block-list' });
  const blockNote = h('p', { class: 'muted small' });
  function renderBlocks() {
    const users = store.blocks || [];
    reconcile(blockList, users, (u) => u, (u) => h('li', { class: 'blocked' }, h('span', null, u),
      h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Unblock ${u}`, onclick: () => actions.unblock(u) }, 'Unblock')));
    setText(blockNote, store.blocks ? (users.length ? '' : 'You have not blocked anyone.') : 'Loading…');
    blockNote.hidden = !blockNote.textContent;
  }

  const section = (title, ...content) => h('section', { class: 'panel-sec card' }, h('h3', null, title), ...content);
  const el = h('section', { class: 'panel settings-panel', 'aria-labelledby': 'settings-title' },
    h('header', { class: 'panel-head' }, backBtn, heading, closeBtn),
    h('div', { class: 'panel-body' },
      section('Your status', statusForm),
      section('Notifications', notifText, notifAction),
      section('Devices', deviceNote, deviceList),
      section('Password', pwForm),
      section('Blocked users', blockNote, blockList)));

  function renderStatus() {
    if (document.activeElement !== statusSelect) statusSelect.value = store.myPresence.status;
    if (document.activeElement !== noteInput) noteInput.value = store.myPresence.note || '';
  }

  scope.subscribe(store, (topics) => {
    if (!el.isConnected) return;
    if (topics.has('devices')) renderDevices();
    if (topics.has('blocks')) renderBlocks();
    if (topics.has('me')) renderStatus();
  });

  return {
    el,
    onShow() {
      renderStatus();
      renderNotifications();
      renderDevices();
      renderBlocks();
      actions.loadDevices();
      actions.loadBlocks();
      heading.focus();
    },
  };
}
