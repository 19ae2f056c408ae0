// Bootstraps the client: protocol connection, state, session, views.
import { Connection } from './protocol.js';
import { Store } from './state.js';
import { Session } from './session.js';
import { Chat } from './chat.js';
import { Actions } from './actions.js';
import { Files } from './files.js';
import { applyTheme } from './theme.js';
import { mountStatus } from './views/status.js';
import { mountLogin } from './views/login.js';
import { mountApp } from './views/app.js';
import { createScope } from './views/dom.js';

applyTheme();

const store = new Store();
const conn = new Connection();
const session = new Session(store, conn);
const files = new Files(conn, () => session.whenReady());
const chat = new Chat(store, session, files);
const actions = new Actions(store, session, chat);
session.chat = chat;
session.actions = actions;

const ctx = { store, conn, session, chat, actions, files };

const statusRoot = document.getElementById('status');
const screenRoot = document.getElementById('screen');
mountStatus(statusRoot, ctx);

let screen = null;
let scope = null;
store.subscribe((topics) => {
  if (topics.has('screen') && store.screen !== screen) {
    screen = store.screen;
    if (scope) scope.dispose(); // the previous screen's subscriptions and timers
    scope = createScope();
    if (screen === 'login') mountLogin(screenRoot, { ...ctx, scope });
    else if (screen === 'app') mountApp(screenRoot, { ...ctx, scope });
  }
  if (topics.has('convs') || topics.has('rooms') || topics.has('screen')) {
    const n = store.screen === 'app' ? store.totalUnread() : 0;
    const title = n ? `(${n}) Chat` : 'Chat';
    if (document.title !== title) document.title = title;
  }
});

session.boot();
