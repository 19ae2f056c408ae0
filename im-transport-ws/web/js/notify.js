// Desktop notifications for messages that arrive while the tab is hidden.
import { storage } from './util.js';

const KEY = 'im.notifications';

export function notificationsSupported() {
  return 'Notification' in window;
}

export function notificationsEnabled() {
  return notificationsSupported() && Notification.permission === 'granted' && storage.get(KEY) !== false;
}

export function notificationState() {
  if (!notificationsSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  if (Notification.permission === 'granted') return storage.get(KEY) === false ? 'off' : 'on';
  return 'default';
}

/** Ask for permission: call only from a user action (a click). */
export async function enableNotifications() {
  if (!notificationsSupported()) return 'unsupported';
  let perm = Notification.permission;
  if (perm === 'default') perm = await Notification.requestPermission();
  if (perm === 'granted') storage.set(KEY, true);
  return notificationState();
}

export function disableNotifications() {
  storage.set(KEY, false);
}

/**
 * Show a notification unless the page is visible. `onOpen` runs when the
 * user clicks it (after the window is focused).
 */
export function notify({ title, body, tag, onOpen }) {
  if (!notificationsEnabled() || document.visibilityState === 'visible') return;
  try {
    const n = new Notification(title, { body: body.slice(0, 200), tag, icon: '/icon.svg' });
    n.onclick = () => {
      window.focus();
      n.close();
      if (onOpen) onOpen();
    };
  } catch (err) {
    // Some platforms only allow notifications from a service worker.
    console.warn('notification failed', err);
  }
}
