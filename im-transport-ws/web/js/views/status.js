// Connection banner (role=status), error alert (role=alert) and the quieter
// confirmation toast. Mounted once at the top of the page, for every screen.
import { h, setText, replace, icon } from './dom.js';
import { CLOSING_TEXT } from '../errors.js';

const ALERT_MS = 9000;
const TOAST_MS = 3500;

export function mountStatus(root, { store, conn }) {
  const bannerText = h('span', { class: 'banner-text' });
  const reconnectBtn = h('button', { type: 'button', class: 'btn btn-small', hidden: true, onclick: () => conn.reconnectNow() }, 'Reconnect now');
  const banner = h('div', { class: 'banner', role: 'status' }, bannerText, reconnectBtn);

  const alertHost = h('div', { class: 'alert-host' });
  const toast = h('div', { class: 'toast', 'aria-live': 'polite' });
  root.append(banner, alertHost, toast);

  let tick = null;
  function renderBanner() {
    const c = store.conn;
    const inApp = store.screen === 'app';
    let text = '';
    let showButton = false;
    if (inApp && c.state === 'waiting') {
      const secs = Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000));
      const why = c.reason && CLOSING_TEXT[c.reason] ? `${CLOSING_TEXT[c.reason]} ` : '';
      text = `${c.browserOnline ? why : 'Offline. '}Reconnecting in ${secs} s…`;
      showButton = true;
    } else if (!c.browserOnline) {
      text = 'Offline';
      showButton = inApp && c.state !== 'open' && c.state !== 'connecting';
    } else if (inApp && (c.state === 'connecting' || (c.state === 'open' && !c.synced))) {
      text = 'Connecting…';
    }
    setText(bannerText, text);
    reconnectBtn.hidden = !showButton;
    banner.classList.toggle('banner-shown', !!text);
    banner.classList.toggle('banner-warn', !c.browserOnline || c.state === 'waiting');
    clearInterval(tick);
    tick = null;
    if (inApp && c.state === 'waiting') tick = setInterval(renderBanner, 500);
  }

  let alertTimer = null;
  function renderAlert() {
    clearTimeout(alertTimer);
    const a = store.alert;
    if (!a) {
      alertHost.replaceChildren();
      return;
    }
    const dismiss = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss', title: 'Dismiss', onclick: () => store.showAlert(null) }, icon('close'));
    replace(alertHost, h('div', { class: 'alert', role: 'alert' }, icon('alert', 'alert-icon'), h('span', { class: 'alert-text' }, a.text), dismiss));
    // On the login screen the message stays until the next attempt.
    if (store.screen === 'app') alertTimer = setTimeout(() => { if (store.alert === a) store.showAlert(null); }, Math.max(0, a.at + ALERT_MS - Date.now()));
  }

  let toastTimer = null;
  function renderToast() {
    clearTimeout(toastTimer);
    const t = store.toast;
    setText(toast, t ? t.text : '');
    toast.classList.toggle('toast-shown', !!t);
    if (t) toastTimer = setTimeout(() => { if (store.toast === t) store.showAlert(null, 'info'); }, Math.max(0, t.at + TOAST_MS - Date.now()));
  }

  store.subscribe((topics) => {
    if (topics.has('conn') || topics.has('screen')) renderBanner();
    if (topics.has('alert')) renderAlert();
    if (topics.has('toast')) renderToast();
    if (topics.has('screen') && store.toast && store.screen === 'app') store.showAlert(null, 'info');
  });
  renderBanner();
}
