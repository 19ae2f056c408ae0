// The login / sign-up screen.
import { h, field, icon } from './dom.js';
import { themeToggle } from '../theme.js';
import { describeError } from '../errors.js';
import { normName } from '../util.js';

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{2,31}$/;

export function mountLogin(root, { store, session }) {
  const username = h('input', {
    type: 'text', name: 'username', autocomplete: 'username', autocapitalize: 'none',
    spellcheck: 'false', required: true, maxlength: '64',
  });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const loginBtn = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Log in');
  const createBtn = h('button', { type: 'button', class: 'btn btn-block', onclick: () => submit('register') }, 'Create account');

  let busy = false;
  async function submit(action) {
    if (busy) return;
    const name = username.value.trim();
    const pw = password.value;
    if (!name || !pw) {
      store.showAlert('Enter a username and a password.');
      (name ? password : username).focus();
      return;
    }
    if (action === 'register') {
      if (!NAME_RE.test(normName(name))) {
        store.showAlert(describeError({ code: 'invalid_username' }, 'register'));
        username.focus();
        return;
      }
      const bytes = new TextEncoder().encode(pw).length;
      if (bytes < 8 || bytes > 72 || pw.includes('\u0000')) {
        store.showAlert(describeError({ code: 'weak_password' }, 'register'));
        password.focus();
        return;
      }
    }
    busy = true;
    form.setAttribute('aria-busy', 'true');
    loginBtn.disabled = createBtn.disabled = true;
    store.showAlert(null);
    try {
      if (action === 'register') {
        const user = await session.register(name, pw);
        username.value = user;
        store.showAlert(`Account “${user}” created. Log in to start chatting.`, 'info');
        loginBtn.focus();
      } else {
        await session.passwordLogin(name, pw);
      }
    } catch (err) {
      store.showAlert(describeError(err, action));
      password.select();
    } finally {
      busy = false;
      form.removeAttribute('aria-busy');
      loginBtn.disabled = createBtn.disabled = false;
    }
  }

  const form = h('form', {
    class: 'login-form', novalidate: true,
    onsubmit: (e) => { e.preventDefault(); submit('login'); },
  },
  field('Username', username),
  field('Password', password, { hint: 'Passwords are 8 to 72 bytes long.' }),
  h('div', { class: 'login-actions' }, loginBtn, createBtn));

  const el = h('div', { class: 'login' },
    h('div', { class: 'login-theme' }, themeToggle()),
    h('main', { class: 'login-card' },
      h('div', { class: 'login-logo', 'aria-hidden': 'true' }, icon('chat')),
      h('h1', null, 'Chat'),
      h('p', { class: 'muted login-sub' }, 'Log in, or create an account to start talking.'),
      form));
  root.replaceChildren(el);
  username.focus();
}
