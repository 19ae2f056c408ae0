// Light and dark themes: follow the system until the user picks one with the
// toggle; the choice is kept in localStorage.
import { storage } from './util.js';
import { h, icon, replace } from './views/dom.js';

const KEY = 'im.theme';
const media = matchMedia('(prefers-color-scheme: dark)');
const buttons = new Set();

function effective() {
  const saved = storage.get(KEY);
  if (saved === 'dark' || saved === 'light') return saved;
  return media.matches ? 'dark' : 'light';
}

export function applyTheme() {
  const saved = storage.get(KEY);
  const root = document.documentElement;
  if (saved === 'dark' || saved === 'light') root.dataset.theme = saved;
  else delete root.dataset.theme;
  const dark = effective() === 'dark';
  const meta = document.querySelector('meta[name="theme-color"]');
  if (meta) meta.content = dark ? '#111318' : '#ffffff';
  for (const b of buttons) {
    if (b.isConnected) b.wasShown = true;
    else if (b.wasShown) { buttons.delete(b); continue; } // its screen is gone
    b.setAttribute('aria-pressed', String(dark));
    b.title = dark ? 'Switch to the light theme' : 'Switch to the dark theme';
    replace(b, icon(dark ? 'sun' : 'moon'));
  }
}

export function toggleTheme() {
  storage.set(KEY, effective() === 'dark' ? 'light' : 'dark');
  applyTheme();
}

/** A toggle button named "Dark theme", pressed while the dark theme is on. */
export function themeToggle() {
  const b = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dark theme', onclick: toggleTheme });
  buttons.add(b);
  applyTheme();
  return b;
}

media.addEventListener('change', applyTheme);
