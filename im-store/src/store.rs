//! [`SqlStore`]: the store traits implemented once for every backend. A
//! backend provides its connections as a [`Db`]; the domain modules hold
//! the SQL, written once; this file only connects each trait method to its
//! domain function, so SQLite and PostgreSQL share every line of it.

use std::ops::Deref;

use im_core::error::StoreResult;
use im_core::ids::{ConvId, Millis, RoomName, UserId};
use im_core::store::files::{BeginOutcome, UploadLimits};
use im_core::store::prelude::*;
use im_core::store::{
    Appended, Change, ChangeRecord, ContactState, ConvSummary, CursorOutcome, CursorUpdate,
    DeviceRecord, FileRecord, NewMessage, Relation, RoomListing, RoomMember, RoomRecord,
    StoredMessage, UserRecord,
};
use im_core::store::{Granted, TokenGrant};

use crate::db::Db;
use crate::{accounts, changes, contacts, files, messages, rooms};

/// A store on a backend `B` ([`crate::SqliteStore`], [`crate::PgStore`]).
/// Dereferences to the backend for its own methods (its path, schema,
/// settings).
#[derive(Debug)]
pub struct SqlStore<B>(pub(crate) B);

impl<B> Deref for SqlStore<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.0
    }
}

impl<B: Db + Send + Sync + 'static> AccountStore for SqlStore<B> {
    fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        accounts::create_user(&self.0, user)
    }

    fn user(&self, name: &UserId) -> StoreResult<Option<UserRecord>> {
        accounts::user(&self.0, name)
    }

    fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        accounts::list_users(&self.0)
    }

    fn set_password_hash(&self, name: &UserId, hash: &str) -> StoreResult<()> {
        accounts::set_password_hash(&self.0, name, hash)
    }

    fn set_suspended(&self, name: &UserId, suspended: bool) -> StoreResult<()> {
        accounts::set_suspended(&self.0, name, suspended)
    }

    fn set_last_seen(&self, name: &UserId, at: Millis) -> StoreResult<()> {
        accounts::set_last_seen(&self.0, name, at)
    }

    fn suspended_users(&self) -> StoreResult<Vec<UserId>> {
        accounts::suspended_users(&self.0)
    }

    fn grant_token(&self, grant: &TokenGrant) -> StoreResult<Granted> {
        accounts::grant_token(&self.0, grant)
    }

    fn issue_token(
        &self,
        user: &UserId,
        device: &str,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<()> {
        accounts::issue_token(&self.0, user, device, token_hash, now)
    }

    fn device_by_token(
        &self,
        user: &UserId,
        token_hash: &str,
    ) -> StoreResult<Option<DeviceRecord>> {
        accounts::device_by_token(&self.0, user, token_hash)
    }

    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<(UserId, DeviceRecord)>> {
        accounts::user_by_token(&self.0, token_hash)
    }

    fn touch_device(&self, user: &UserId, device: &str, now: Millis) -> StoreResult<()> {
        accounts::touch_device(&self.0, user, device, now)
    }

    fn touch_devices(&self, touches: &[(UserId, String, Millis)]) -> StoreResult<()> {
        accounts::touch_devices(&self.0, touches)
    }

    fn devices(&self, user: &UserId) -> StoreResult<Vec<DeviceRecord>> {
        accounts::devices(&self.0, user)
    }

    fn revoke_device(&self, user: &UserId, device: &str) -> StoreResult<bool> {
        accounts::revoke_device(&self.0, user, device)
    }

    fn revoke_all_devices(&self, user: &UserId, keep: Option<&str>) -> StoreResult<()> {
        accounts::revoke_all_devices(&self.0, user, keep)
    }

    fn server_secret(&self) -> StoreResult<Vec<u8>> {
        accounts::server_secret(&self.0)
    }
}

impl<B: Db + Send + Sync + 'static> ContactStore for SqlStore<B> {
    fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Relation> {
        contacts::relation(&self.0, a, b)
    }

    fn set_relation(&self, a: &UserId, b: &UserId, rel: &Relation) -> StoreResult<()> {
        contacts::set_relation(&self.0, a, b, rel)
    }

    fn contacts(&self, user: &UserId) -> StoreResult<Vec<(UserId, ContactState)>> {
        contacts::contacts(&self.0, user)
    }

    fn set_block(&self, by: &UserId, target: &UserId, blocked: bool) -> StoreResult<()> {
        contacts::set_block(&self.0, by, target, blocked)
    }

    fn blocks(&self, by: &UserId) -> StoreResult<Vec<UserId>> {
        contacts::blocks(&self.0, by)
    }

    fn blocked_by(&self, target: &UserId) -> StoreResult<Vec<UserId>> {
        contacts::blocked_by(&self.0, target)
    }
}

impl<B: Db + Send + Sync + 'static> MessageStore for SqlStore<B> {
    fn write_batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> StoreResult<(Vec<Appended>, Vec<CursorOutcome>)> {
        messages::write_batch(&self.0, messages, cursors)
    }

    fn find_client_id(
        &self,
        conv: &ConvId,
        from: &UserId,
        client_id: &str,
    ) -> StoreResult<Option<Appended>> {
        messages::find_client_id(&self.0, conv, from, client_id)
    }

    fn messages_after(
        &self,
        conv: &ConvId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        messages::messages_after(&self.0, conv, after, limit)
    }

    fn messages_before(
        &self,
        conv: &ConvId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        messages::messages_before(&self.0, conv, before, limit)
    }

    fn is_member(&self, conv: &ConvId, user: &UserId) -> StoreResult<bool> {
        messages::is_member(&self.0, conv, user)
    }

    fn conversations(&self, user: &UserId, device: &str) -> StoreResult<Vec<ConvSummary>> {
        messages::conversations(&self.0, user, device)
    }
}

impl<B: Db + Send + Sync + 'static> RoomStore for SqlStore<B> {
    fn create_room(&self, room: &RoomRecord, owner: &UserId) -> StoreResult<()> {
        rooms::create_room(&self.0, room, owner)
    }

    fn room(&self, name: &RoomName) -> StoreResult<Option<RoomRecord>> {
        rooms::room(&self.0, name)
    }

    fn list_rooms(&self, q: Option<&str>, limit: usize) -> StoreResult<Vec<RoomListing>> {
        rooms::list_rooms(&self.0, q, limit)
    }

    fn room_members(&self, name: &RoomName) -> StoreResult<Vec<RoomMember>> {
        rooms::room_members(&self.0, name)
    }

    fn join_room(&self, name: &RoomName, user: &UserId, now: Millis) -> StoreResult<bool> {
        rooms::join_room(&self.0, name, user, now)
    }

    fn leave_room(&self, name: &RoomName, user: &UserId) -> StoreResult<Option<UserId>> {
        rooms::leave_room(&self.0, name, user)
    }

    fn set_room_topic(&self, name: &RoomName, topic: &str) -> StoreResult<()> {
        rooms::set_room_topic(&self.0, name, topic)
    }

    fn set_room_ban(&self, name: &RoomName, user: &UserId, banned: bool) -> StoreResult<()> {
        rooms::set_room_ban(&self.0, name, user, banned)
    }

    fn is_room_banned(&self, name: &RoomName, user: &UserId) -> StoreResult<bool> {
        rooms::is_room_banned(&self.0, name, user)
    }

    fn rooms_owned(&self, user: &UserId) -> StoreResult<u64> {
        rooms::rooms_owned(&self.0, user)
    }

    fn add_room_invite(&self, name: &RoomName, user: &UserId, from: &UserId) -> StoreResult<()> {
        rooms::add_room_invite(&self.0, name, user, from)
    }

    fn room_invites(&self, user: &UserId) -> StoreResult<Vec<(RoomName, UserId)>> {
        rooms::room_invites(&self.0, user)
    }
}

impl<B: Db + Send + Sync + 'static> FileStore for SqlStore<B> {
    fn create_file(&self, file: &FileRecord) -> StoreResult<()> {
        files::create_file(&self.0, file)
    }

    fn begin_file(&self, file: &FileRecord, limits: UploadLimits) -> StoreResult<BeginOutcome> {
        files::begin_file(&self.0, file, limits)
    }

    fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        files::file(&self.0, id)
    }

    fn set_file_received(&self, id: &str, received: u64) -> StoreResult<()> {
        files::set_file_received(&self.0, id, received)
    }

    fn finish_file(&self, id: &str, sha256: &str) -> StoreResult<()> {
        files::finish_file(&self.0, id, sha256)
    }

    fn attach_file(&self, id: &str, conv: &ConvId) -> StoreResult<()> {
        files::attach_file(&self.0, id, conv)
    }

    fn detach_unsent(&self, id: &str, conv: &ConvId) -> StoreResult<()> {
        files::detach_unsent(&self.0, id, conv)
    }

    fn file_convs(&self, id: &str) -> StoreResult<Vec<ConvId>> {
        files::file_convs(&self.0, id)
    }

    fn user_file_bytes(&self, user: &UserId) -> StoreResult<u64> {
        files::user_file_bytes(&self.0, user)
    }

    fn stale_files(&self, before: Millis) -> StoreResult<Vec<FileRecord>> {
        files::stale_files(&self.0, before)
    }

    fn delete_file(&self, id: &str) -> StoreResult<()> {
        files::delete_file(&self.0, id)
    }

    fn delete_stale_file(&self, id: &str, before: Millis) -> StoreResult<Option<FileRecord>> {
        files::delete_stale_file(&self.0, id, before)
    }

    fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        files::blob_in_use(&self.0, sha256)
    }
}

impl<B: Db + Send + Sync + 'static> ChangeStore for SqlStore<B> {
    fn publish_change(&self, origin: u64, change: &Change, at: Millis) -> StoreResult<()> {
        changes::publish_change(&self.0, origin, change, at)
    }

    fn changes_after(&self, after: u64, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        changes::changes_after(&self.0, after, limit)
    }

    fn last_change_id(&self) -> StoreResult<u64> {
        changes::last_change_id(&self.0)
    }

    fn prune_changes(&self, before: Millis) -> StoreResult<()> {
        changes::prune_changes(&self.0, before)
    }
}
