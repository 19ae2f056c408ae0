// Human messages for protocol errors. `action` names what was attempted so
// the same code can be explained in context.

const LOGIN = {
  invalid_credentials: 'Wrong username or password.',
  account_suspended: 'This account has been suspended.',
  rate_limited: 'Too many attempts. Please wait a minute and try again.',
  username_taken: 'That username is already taken.',
  invalid_username: 'Usernames are 3 to 32 characters: letters a–z, digits, "_", "." or "-", starting with a letter or digit.',
  weak_password: 'Passwords must be 8 to 72 bytes long.',
  unavailable: 'The server is unavailable right now. Please try again in a moment.',
  unreachable: 'Cannot reach the server. Check your connection and try again.',
  disconnected: 'Cannot reach the server. Check your connection and try again.',
  conflict: 'Too many devices are signed in to this account. Revoke one from another device first.',
};

const CONTEXT = {
  'contact.add': {
    not_found: (a) => `There is no user named "${a.user}".`,
    bad_request: () => 'You cannot add yourself.',
    conflict: (a) => `You blocked ${a.user}. Unblock them in Settings first.`,
    forbidden: (a) => `${a.user} is not accepting contact requests from you.`,
    rate_limited: () => 'You have too many requests waiting for an answer.',
  },
  'contact.accept': { not_found: (a) => `${a.user} no longer has a request waiting.` },
  'contact.decline': { not_found: (a) => `${a.user} no longer has a request waiting.` },
  'msg.send': {
    forbidden: () => 'You cannot send messages here (not a contact, blocked, or not a member).',
    not_found: () => 'This conversation does not exist any more.',
    too_large: () => 'This message is too long.',
    bad_request: () => 'This message cannot be sent.',
  },
  'file.begin': {
    too_large: () => 'This file is too large (or your storage quota is used up).',
    rate_limited: () => 'Too many uploads at once. Wait for the others to finish.',
  },
  'room.create': {
    bad_request: () => 'Room names are 3 to 32 characters: letters a–z, digits, "_", "." or "-", starting with a letter or digit.',
    conflict: () => 'That room name is taken (or you own too many rooms).',
    too_large: () => 'The topic is too long (256 characters at most).',
  },
  'room.join': {
    not_found: (a) => `Room "${a.name}" does not exist, or it is private and you were not invited.`,
    forbidden: (a) => `You are banned from ${a.name}.`,
  },
  'room.invite': {
    not_found: (a) => `There is no user named "${a.user}".`,
    forbidden: () => 'You cannot invite this user.',
    rate_limited: () => 'This user has too many invitations waiting.',
  },
  'room.topic': { forbidden: () => 'Only the room owner can change the topic.', too_large: () => 'The topic is too long (256 characters at most).' },
  'room.kick': { forbidden: () => 'Only the room owner can remove members.', bad_request: () => 'You cannot remove yourself: leave the room instead.' },
  'room.unban': { forbidden: () => 'Only the room owner can lift bans.', not_found: (a) => `There is no user named "${a.user}".` },
  'presence.set': { too_large: () => 'The status note is too long (256 characters at most).' },
  'password.change': {
    invalid_credentials: () => 'The current password is wrong.',
    weak_password: () => 'The new password must be 8 to 72 bytes long.',
    rate_limited: () => 'Too many attempts. Please wait a minute and try again.',
  },
  'device.revoke': { not_found: (a) => `No device named "${a.device}".` },
};

const GENERIC = {
  bad_request: 'The server did not understand the request.',
  unauthenticated: 'You are not logged in.',
  not_found: 'Not found.',
  forbidden: 'You are not allowed to do that.',
  conflict: 'That conflicts with the current state.',
  too_large: 'That is too large.',
  rate_limited: 'You are going too fast. Please wait a moment.',
  unavailable: 'The server is unavailable right now. Please try again in a moment.',
  internal: 'Something went wrong on the server.',
  disconnected: 'Not connected to the server. Try again once reconnected.',
  account_suspended: 'This account has been suspended.',
};

export function describeError(err, action, args = {}) {
  const code = err && err.code;
  if (!code) return String((err && err.message) || err || 'Something went wrong.');
  if (action === 'login' || action === 'register') return LOGIN[code] || GENERIC[code] || err.message;
  const ctx = CONTEXT[action];
  if (ctx && ctx[code]) return ctx[code](args);
  return GENERIC[code] || err.message || code;
}

export const CLOSING_TEXT = {
  shutdown: 'The server is restarting.',
  idle_timeout: 'The connection timed out.',
  login_timeout: 'The connection timed out.',
  too_slow: 'The connection was too slow.',
  too_many_errors: 'The connection was closed after too many errors.',
  rate_limited: 'The connection was closed for sending too fast.',
  server_full: 'The server is full.',
  device_revoked: 'This device was signed out from another device.',
  password_changed: 'Your password was changed on another device. Please log in again.',
  account_suspended: 'This account has been suspended.',
  expired: 'Your session has ended. Please log in again.',
};
