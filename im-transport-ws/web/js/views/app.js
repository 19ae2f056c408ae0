// The logged-in layout: sidebar | main (conversation, rooms or settings) |
// room members. On a phone the sidebar and the main view take turns.
import { h, icon } from './dom.js';
import { mountSidebar } from './sidebar.js';
import { createConversation } from './conversation.js';
import { createRoomsPanel } from './rooms.js';
import { createSettingsPanel } from './settings.js';
import { mountMembers } from './members.js';
import { parseConv } from '../util.js';

const PHONE = matchMedia('(max-width: 720px)');

export function mountApp(root, ctx) {
  const { store, chat, actions, scope } = ctx;
  const ui = {};
  ctx.ui = ui;

  const sidebar = h('aside', { class: 'sidebar', 'aria-label': 'Contacts and rooms' });
  const main = h('main', { class: 'main' });
  const membersAside = h('aside', { class: 'members-panel', 'aria-label': 'Room members', hidden: true });
  const shell = h('div', { class: 'app' }, sidebar, main, membersAside);
  root.replaceChildren(shell);

  mountSidebar(sidebar, ctx);
  const conversation = createConversation(ctx);
  const rooms = createRoomsPanel(ctx);
  const settings = createSettingsPanel(ctx);
  const members = mountMembers(membersAside, ctx);
  const empty = h('div', { class: 'empty-state' },
    h('div', { class: 'empty-art', 'aria-hidden': 'true' }, icon('chat')),
    h('h2', null, 'Pick a conversation'),
    h('p', { class: 'muted' }, 'Choose a contact or a room on the left, add a contact by username, or browse the rooms.'));

  let shown = null;
  let returnFocus = null;

  function show(view) {
    if (shown === view) return false;
    shown = view;
    main.replaceChildren(view.el || view);
    return true;
  }

  function render() {
    let changed = false;
    if (store.panel === 'rooms') {
      if (show(rooms)) rooms.onShow();
    } else if (store.panel === 'settings') {
      if (show(settings)) settings.onShow();
    } else if (store.current && store.convs.has(store.current)) {
      changed = show(conversation);
      conversation.show(store.current);
      if (changed) conversation.reattached();
      if (changed && !PHONE.matches) conversation.focusComposer();
    } else {
      conversation.hide();
      show(empty);
    }
    const inMain = !!store.panel || !!store.current;
    shell.dataset.view = inMain ? 'main' : 'list';
    const cur = store.current && parseConv(store.current, store.me);
    const membersShown = !store.panel && !!cur && cur.kind === 'room' && store.membersOpen;
    shell.dataset.members = membersShown ? 'open' : 'closed';
    if (!inMain && returnFocus && returnFocus.isConnected && document.activeElement === document.body) {
      returnFocus.focus();
      returnFocus = null;
    }
  }

  ui.openMembers = ({ invite = false } = {}) => {
    store.membersOpen = true;
    store.notify('panel');
    queueMicrotask(() => queueMicrotask(() => (invite ? members.focusInvite() : members.focus())));
  };
  ui.closeMembers = () => {
    store.membersOpen = false;
    store.notify('panel');
    conversation.focusComposer();
  };
  ui.closePanel = () => {
    store.set('panel', null);
  };

  // Remember what opened the main view, to return there (phone "Back", Escape).
  sidebar.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b) returnFocus = b;
  });

  scope.listen(document, 'keydown', (e) => {
    if (e.key !== 'Escape' || store.screen !== 'app' || e.defaultPrevented) return;
    if (document.querySelector('.app')?.dataset.members === 'open' && (PHONE.matches || membersAside.contains(document.activeElement))) {
      ui.closeMembers();
    } else if (store.panel) {
      ui.closePanel();
    } else if (store.current && PHONE.matches) {
      chat.close();
    } else if (store.current && membersAside.hidden === false) {
      ui.closeMembers();
    } else {
      return;
    }
    e.preventDefault();
  });

  // Keep the room's member list (who is online) fresh while it is shown.
  scope.interval(() => {
    const cur = store.current && parseConv(store.current, store.me);
    if (cur && cur.kind === 'room' && store.membersOpen && !store.panel && document.visibilityState === 'visible') {
      actions.loadMembers(cur.room);
    }
  }, 30000);

  scope.subscribe(store, (topics) => {
    if (topics.has('current') || topics.has('panel') || topics.has('convs') || topics.has('rooms')) render();
  });
  render();
}
