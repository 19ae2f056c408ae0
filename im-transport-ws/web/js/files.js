// File transfer over the protocol: chunked uploads that survive reconnects,
// and signed URLs for previews and downloads.

export const CHUNK = 32768;      // the protocol's maximum decoded chunk size
const WINDOW = 4;                // chunks in flight at once
const URL_MARGIN = 5 * 60 * 1000; // refresh a signed link this long before it expires

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

function cleanName(name) {
  let n = String(name || 'file').replace(/\u0000/g, '').trim() || 'file';
  if ([...n].length > 255) {
    const dot = n.lastIndexOf('.');
    const ext = dot > 0 && n.length - dot <= 16 ? n.slice(dot) : '';
    n = [...n].slice(0, 255 - ext.length).join('') + ext;
  }
  return n;
}

function cleanMime(type) {
  const t = String(type || '').toLowerCase().split(';')[0].trim();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(t) ? t : null;
}

/** Kinds of preview the server serves inline (others download as attachments). */
export function previewKind(mime) {
  const m = String(mime || '').toLowerCase();
  if (['image/png', 'image/jpeg', 'image/gif', 'image/webp'].includes(m)) return 'image';
  if (m.startsWith('audio/')) return 'audio';
  if (m.startsWith('video/')) return 'video';
  return 'file';
}

export class Files {
  /**
   * @param conn      the protocol Connection
   * @param whenReady () => Promise that resolves once logged in and synced
   */
  constructor(conn, whenReady) {
    this.conn = conn;
    this.whenReady = whenReady;
    this.urls = new Map(); // file id -> {url, expires} or a pending Promise
  }

  /**
   * Upload a File/Blob. `job` carries the state that lets an interrupted
   * upload resume: {file: File, id?: string}. `onProgress(sent, size)`.
   * Resolves with {file, name, mime, size, sha256}.
   */
  async upload(job, onProgress = () => {}) {
    const blob = job.file;
    const name = cleanName(job.name || blob.name);
    const mime = cleanMime(blob.type);
    const size = blob.size;
    for (;;) {
      await this.whenReady();
      try {
        let offset = 0;
        if (!job.id) {
          const begin = await this.conn.request('file.begin', mime ? { name, mime, size } : { name, size });
          job.id = begin.file;
        } else {
          const st = await this.conn.request('file.status', { file: job.id });
          offset = st.done ? size : st.received;
        }
        onProgress(offset, size);
        if (offset < size) await this.sendChunks(job.id, blob, offset, onProgress);
        const end = await this.conn.request('file.end', { file: job.id });
        onProgress(size, size);
        return { file: end.file, name, mime: mime || 'application/octet-stream', size: end.size, sha256: end.sha256 };
      } catch (err) {
        if (err.code === 'disconnected' || err.code === 'unauthenticated') {
          // The connection dropped (or was closing): resume with file.status after the reconnect.
          await new Promise((r) => setTimeout(r, 300));
          continue;
        }
        if (err.code === 'not_found' && job.id && !job.restarted) {
          job.id = null;               // the unfinished upload expired: start again once
          job.restarted = true;
          continue;
        }
        throw err;
      }
    }
  }

  async sendChunks(id, blob, offset, onProgress) {
    const size = blob.size;
    const inflight = [];
    let next = offset;
    while (next < size || inflight.length) {
      while (inflight.length < WINDOW && next < size) {
        const end = Math.min(size, next + CHUNK);
        const data = toBase64(await blob.slice(next, end).arrayBuffer());
        const p = this.conn.request('file.chunk', { file: id, offset: next, data }).then(() => end);
        p.catch(() => {}); // awaited in turn below; never reported as unhandled meanwhile
        inflight.push(p);
        next = end;
      }
      let done;
      try {
        done = await inflight.shift();
      } catch (err) {
        // Let the others settle so nothing rejects unobserved.
        await Promise.allSettled(inflight);
        throw err;
      }
      onProgress(done, size);
    }
  }

  /** A signed URL for a file (cached until shortly before it expires). */
  async url(fileId) {
    const cached = this.urls.get(fileId);
    if (cached instanceof Promise) return cached;
    if (cached && cached.expires - Date.now() > URL_MARGIN) return cached.url;
    const p = (async () => {
      await this.whenReady();
      const r = await this.conn.request('file.url', { file: fileId });
      this.urls.set(fileId, { url: r.url, expires: r.expires || Date.now() + 3600000 });
      return r.url;
    })();
    this.urls.set(fileId, p);
    try {
      return await p;
    } catch (err) {
      this.urls.delete(fileId);
      throw err;
    }
  }

  clear() {
    this.urls.clear();
  }
}
