// One row of the message list: a day separator, the "New messages" marker,
// or a message (bubble, attachment, time, delivery status, retry).
import { h, icon, avatar, setAttr, replace } from './dom.js';
import { formatTime, formatFull, formatSize } from '../util.js';
import { previewKind } from '../files.js';

const STATUS_ICON = { pending: 'clock', sent: 'check', delivered: 'checks', read: 'checks', failed: 'alert' };
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

/** Body text with http(s) links made clickable; everything else stays text. */
function linkify(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const trail = url.match(/[.,;:!?)\]]+$/);
    if (trail) url = url.slice(0, -trail[0].length);
    let ok = false;
    try { ok = ['http:', 'https:'].includes(new URL(url).protocol); } catch { ok = false; }
    if (!ok) continue;
    out.push(text.slice(last, match.index));
    out.push(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer nofollow' }, url));
    last = match.index + url.length;
  }
  out.push(text.slice(last));
  return out;
}

/** The attachment block: image, audio, video or a download card. */
function attachmentView(att, { files, localUrl, onMediaLoad }) {
  const kind = previewKind(att.mime);
  const wrap = h('div', { class: `att att-${kind}` });
  const setUrl = (fn) => {
    files.url(att.file).then(fn, () => {
      wrap.classList.add('att-missing');
      wrap.append(h('span', { class: 'att-error' }, 'File unavailable'));
    });
  };
  if (kind === 'image') {
    const img = h('img', { alt: att.name, decoding: 'async' });
    img.addEventListener('load', onMediaLoad);
    const link = h('a', { class: 'att-image-link', target: '_blank', rel: 'noopener' }, img);
    if (localUrl) img.src = localUrl;
    setUrl((url) => {
      link.href = url;
      if (!localUrl) img.src = url;
    });
    wrap.append(link);
  } else if (kind === 'audio' || kind === 'video') {
    const media = h(kind, { controls: true, preload: 'metadata' });
    media.addEventListener('loadedmetadata', onMediaLoad);
    if (localUrl) media.src = localUrl;
    else setUrl((url) => { media.src = url; });
    const dl = h('a', { class: 'att-caption', download: att.name }, icon('download'), h('span', null, `${att.name} · ${formatSize(att.size)}`));
    setUrl((url) => { dl.href = url; });
    wrap.append(media, dl);
  } else {
    const a = h('a', { class: 'att-card', download: att.name },
      h('span', { class: 'att-icon' }, icon('file')),
      h('span', { class: 'att-meta' }, h('span', { class: 'att-name' }, att.name), h('span', { class: 'att-size' }, formatSize(att.size))),
      icon('download', 'att-dl'));
    setUrl((url) => { a.href = url; });
    wrap.append(a);
  }
  return wrap;
}

/** A pending upload: local preview (if any), name, size and progress. */
function uploadView(p) {
  const kind = previewKind(p.mime);
  const wrap = h('div', { class: `att att-${kind} att-uploading` });
  if (kind === 'image' && p.localUrl) wrap.append(h('img', { alt: p.fileName, src: p.localUrl }));
  else wrap.append(h('span', { class: 'att-card' }, h('span', { class: 'att-icon' }, icon('file')),
    h('span', { class: 'att-meta' }, h('span', { class: 'att-name' }, p.fileName), h('span', { class: 'att-size' }, formatSize(p.size)))));
  return wrap;
}

export function createRow(row, ctx) {
  if (row.type === 'day') {
    return h('li', { class: 'sep sep-day' }, h('span', null, row.label));
  }
  if (row.type === 'new') {
    return h('li', { class: 'sep sep-new' }, h('span', null, 'New messages'));
  }
  const m = row.msg || row.pending;
  const li = h('li', { class: ['msg', row.own ? 'msg-own' : 'msg-other'] });
  const parts = {};
  if (!row.own && row.room) {
    parts.avatar = h('span', { class: 'msg-avatar' }, avatar(m.from, { size: 'sm' }));
    li.append(parts.avatar);
  }
  const bubble = h('div', { class: 'bubble' });
  if (!row.own && row.room) {
    parts.sender = h('div', { class: 'sender' }, m.from);
    bubble.append(parts.sender);
  }
  if (row.pending && row.pending.upload) {
    bubble.append(uploadView(row.pending));
    parts.progress = h('progress', { max: '1', value: String(row.pending.progress || 0), 'aria-label': 'Upload progress' });
    bubble.append(parts.progress);
  } else if (m.attachment) {
    bubble.append(attachmentView(m.attachment, { files: ctx.files, localUrl: m.localUrl, onMediaLoad: ctx.onMediaLoad }));
  }
  if (m.body) bubble.append(h('p', { class: 'body' }, linkify(m.body)));
  const time = h('time', { datetime: new Date(m.ts).toISOString(), title: formatFull(m.ts) }, formatTime(m.ts));
  const meta = h('div', { class: 'meta' }, time);
  if (row.own) {
    parts.status = h('span', { class: 'status', role: 'img' });
    meta.append(parts.status);
  }
  bubble.append(meta);
  parts.failed = h('div', { class: 'failed-row', hidden: true });
  bubble.append(parts.failed);
  li.append(bubble);
  li._parts = parts;
  if (row.pending) li.dataset.pending = '';
  return li;
}

export function updateRow(li, row, ctx) {
  if (row.type !== 'msg') {
    if (row.type === 'day' && li.textContent !== row.label) li.firstChild.textContent = row.label;
    return;
  }
  const p = li._parts;
  li.classList.toggle('grouped', !!row.grouped);
  li.classList.toggle('group-end', !!row.groupEnd);
  if (p.status && p.status._status !== row.status) {
    p.status._status = row.status;
    setAttr(p.status, 'aria-label', row.status);
    p.status.title = row.status[0].toUpperCase() + row.status.slice(1);
    p.status.className = `status status-${row.status}`;
    replace(p.status, icon(STATUS_ICON[row.status]));
    li.classList.toggle('msg-failed', row.status === 'failed');
  }
  if (p.progress && row.pending) {
    p.progress.value = row.pending.progress || 0;
    p.progress.hidden = row.status === 'failed';
  }
  const error = row.status === 'failed' ? row.pending.error || 'Not sent.' : '';
  if (p.failed._error !== error) {
    p.failed._error = error;
    p.failed.hidden = !error;
    if (error) {
      replace(p.failed, h('span', null, error),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => ctx.retry(row.pending.client_id) }, 'Retry'));
    } else {
      p.failed.replaceChildren();
    }
  }
}
