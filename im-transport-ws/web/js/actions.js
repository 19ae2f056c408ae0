// User actions other than messaging: contacts, presence, rooms, devices and
// password. Each returns true on success and shows a clear alert on failure.
import { describeError } from './errors.js';
import { dmConv, normName, storage } from './util.js';

const PRESENCE_KEY = 'im.presence';

export class Actions {
  constructor(store, session, chat) {
    this.store = store;
    this.session = session;
    this.chat = chat;
    this.topicLookups = new Set();
  }

  /** Run a request; on error show the explanation and return null. */
  async run(type, fields = {}, { quiet = false } = {}) {
    try {
      return await this.session.request(type, fields);
    } catch (err) {
      if (!quiet) this.store.showAlert(describeError(err, type, fields));
      return null;
    }
  }

  // ---- conversations -------------------------------------------------------
  async refreshConvs() {
    const r = await this.run('convs', {}, { quiet: true });
    if (!r) return;
    for (const info of r.convs || []) this.store.applyConvInfo(info);
    const cur = this.store.current;
    if (cur && this.chat.isReading(cur)) this.chat.markShown(cur);
    this.store.notify('convs', 'rooms');
  }

  openContact(user) {
    this.chat.open(dmConv(this.store.me, user));
  }

  openRoom(name) {
    this.chat.open(`room:${name}`);
  }

  // ---- contacts ----------------------------------------------------------------
  async addContact(input) {
    const user = normName(input);
    if (!user) return false;
    if (user === this.store.me) {
      this.store.showAlert('You cannot add yourself.');
      return false;
    }
    if (!(await this.run('contact.add', { user }))) return false;
    if (!this.store.contacts.has(user)) this.store.upsertContact(user, { state: 'pending_out' });
    this.store.showAlert(this.store.contacts.get(user)?.state === 'pending_out' ? `Request sent to ${user}.` : null, 'info');
    return true;
  }

  async accept(user) {
    if (!(await this.run('contact.accept', { user }))) return false;
    this.store.upsertContact(user, { state: 'mutual' });
    return true;
  }

  async decline(user) {
    if (!(await this.run('contact.decline', { user }))) return false;
    this.store.removeContact(user);
    return true;
  }

  async removeContact(user) {
    if (!(await this.run('contact.remove', { user }))) return false;
    this.store.removeContact(user);
    return true;
  }

  async block(user) {
    if (!(await this.run('contact.block', { user }))) return false;
    this.store.removeContact(user);
    if (!this.store.blocks) this.store.blocks = [];
    if (this.store.blocks && !this.store.blocks.includes(user)) this.store.blocks = [...this.store.blocks, user].sort();
    this.store.notify('blocks');
    this.store.showAlert(`${user} is blocked.`, 'info');
    return true;
  }

  async unblock(user) {
    if (!(await this.run('contact.unblock', { user }))) return false;
    if (this.store.blocks) this.store.blocks = this.store.blocks.filter((u) => u !== user);
    this.store.notify('blocks');
    return true;
  }

  async loadBlocks() {
    const r = await this.run('contact.blocks', {}, { quiet: true });
    if (r) this.store.set('blocks', [...(r.users || [])].sort());
  }

  // ---- presence ------------------------------------------------------------------
  async setPresence(status, note) {
    const fields = { status };
    if (note) fields.note = note;
    if (!(await this.run('presence.set', fields))) return false;
    this.store.myPresence = { status, note: note || '' };
    storage.set(PRESENCE_KEY, this.store.myPresence);
    this.store.notify('me');
    return true;
  }

  /** A new first session starts "online"; put back the status chosen on this device. */
  restorePresence() {
    const saved = storage.get(PRESENCE_KEY);
    if (!saved || (saved.status === 'online' && !saved.note)) return;
    this.store.myPresence = saved;
    this.store.notify('me');
    const fields = { status: saved.status };
    if (saved.note) fields.note = saved.note;
    this.run('presence.set', fields, { quiet: true });
  }

  // ---- rooms ---------------------------------------------------------------------
  async listRooms(q) {
    const r = await this.run('room.list', q ? { q } : {}, { quiet: true });
    if (!r) return null;
    for (const room of r.rooms || []) {
      if (this.store.rooms.has(room.name)) Object.assign(this.store.room(room.name), { topic: room.topic || '', public: true });
    }
    this.store.notify('rooms');
    return r.rooms || [];
  }

  /** Topics of the public rooms we are in (the protocol has no per-room info request). */
  async loadRoomTopics() {
    await this.listRooms('');
  }

  async loadRoomTopic(name) {
    const room = this.store.rooms.get(name);
    if (!room || room.topic !== null || this.topicLookups.has(name)) return;
    this.topicLookups.add(name);
    await this.listRooms(name);
  }

  async createRoom(input, topic, isPublic) {
    const name = normName(input);
    const fields = { name, public: isPublic };
    if (topic) fields.topic = topic;
    if (!(await this.run('room.create', fields))) return false;
    this.store.addRoom(name, { topic: topic || '', public: isPublic });
    this.store.room(name).members = new Map([[this.store.me, { user: this.store.me, role: 'owner', online: true }]]);
    this.openRoom(name);
    return true;
  }

  async joinRoom(name) {
    if (!(await this.run('room.join', { name }))) return false;
    this.store.invites.delete(name);
    this.store.notify('invites');
    this.store.addRoom(name);
    await this.refreshConvs();
    this.openRoom(name);
    return true;
  }

  async leaveRoom(name) {
    if (!(await this.run('room.leave', { name }))) return false;
    if (this.store.current === `room:${name}`) this.chat.close();
    this.store.removeRoom(name);
    return true;
  }

  async invite(name, input) {
    const user = normName(input);
    if (!user) return false;
    if (!(await this.run('room.invite', { name, user }))) return false;
    this.store.showAlert(`Invitation sent to ${user}.`, 'info');
    return true;
  }

  async loadInvites() {
    const r = await this.run('room.invites', {}, { quiet: true });
    if (!r) return;
    this.store.invites = new Map((r.invites || []).filter((i) => !this.store.rooms.has(i.room)).map((i) => [i.room, i]));
    this.store.notify('invites');
  }

  dismissInvite(name) {
    this.store.invites.delete(name);
    this.store.notify('invites');
  }

  async loadMembers(name) {
    const r = await this.run('room.members', { name }, { quiet: true });
    if (r) this.store.setMembers(name, r.members || []);
  }

  async setTopic(name, topic) {
    if (!(await this.run('room.topic', { name, topic }))) return false;
    this.store.room(name).topic = topic;
    this.store.notify('rooms', 'members');
    this.store.showAlert('Topic saved.', 'info');
    return true;
  }

  async kick(name, user) {
    if (!(await this.run('room.kick', { name, user }))) return false;
    this.store.memberLeft(name, user);
    this.store.showAlert(`${user} was removed from ${name} and banned.`, 'info');
    return true;
  }

  async unban(name, input) {
    const user = normName(input);
    if (!user) return false;
    if (!(await this.run('room.unban', { name, user }))) return false;
    this.store.showAlert(`${user} may join ${name} again.`, 'info');
    return true;
  }

  // ---- devices and password ------------------------------------------------------
  async loadDevices() {
    const r = await this.run('devices', {}, { quiet: true });
    if (r) this.store.set('devices', r.devices || []);
  }

  async revokeDevice(device) {
    if (!(await this.run('device.revoke', { device }))) return false;
    if (this.session.auth && device === this.session.auth.device) {
      this.session.end('device_revoked');
      return true;
    }
    await this.loadDevices();
    return true;
  }

  async changePassword(old, next) {
    if (!(await this.run('password.change', { old, new: next }))) return false;
    this.store.showAlert('Password changed. Your other devices were signed out.', 'info');
    this.loadDevices();
    return true;
  }
}
