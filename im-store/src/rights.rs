//! A cache of the send rights `write_batch` has found, valid while the
//! store's rights version is unchanged.
//!
//! Checking every guarded message's rights (device signed in, no block,
//! contact, room membership) costs point reads per sender in every batch.
//! What was allowed stays allowed until something takes a right away, and
//! every write that can (a relation changed, a block, a room left, a
//! device revoked, an account suspended) bumps the one-row `rights`
//! table's version after its change, in the same connection. A batch reads
//! the version inside its transaction: unchanged, it trusts what it found
//! allowed before and reads only what is new; changed, it forgets all of
//! it. Only allowed answers are kept (a refusal is checked again), so
//! changes that grant rights need no bump. The version lives in the
//! database, so a bump by any process sharing it clears every process's
//! cache.

use std::collections::HashSet;

use crate::batch::{DeviceKey, PairKey, ReadKey};
use crate::error::DbError;
use crate::sql::{sql, statements, Conn, Exec, I64Row, Reads};

statements! {
    BumpRights = "UPDATE rights SET version = version + 1 WHERE id = 1";
    ReadRights = "SELECT version AS v FROM rights WHERE id = 1";
}

/// Call after a write that takes a right away, on the same connection.
pub(crate) fn bump(c: &mut impl Conn) -> Result<(), DbError> {
    sql::<BumpRights>().run(c)?;
    Ok(())
}

/// The current version (0 when the row is missing).
pub(crate) fn version<C>(c: &mut C) -> Result<i64, DbError>
where
    C: Conn<Backend: Reads<I64Row>>,
{
    Ok(sql::<ReadRights>().row::<I64Row, _>(c)?.map_or(0, |r| r.v))
}

/// Past this many entries the cache starts over.
const MAX_ENTRIES: usize = 1 << 20;

/// What the last batches found allowed, as of `version`.
#[derive(Debug, Default)]
pub(crate) struct RightsCache {
    version: Option<i64>,
    /// Signed-in devices of accounts in good standing.
    pub devices: HashSet<DeviceKey>,
    /// Pairs (name order) with no block either way.
    pub unblocked: HashSet<PairKey>,
    /// Pairs (name order) that are mutual contacts.
    pub mutual: HashSet<PairKey>,
    /// Room memberships.
    pub members: HashSet<ReadKey>,
}

impl RightsCache {
    /// Keeps the cache if the store is still at `version`, else empties it.
    pub(crate) fn at(&mut self, version: i64) {
        let size = self.devices.len() + self.unblocked.len() + self.mutual.len();
        if self.version != Some(version) || size + self.members.len() > MAX_ENTRIES {
            *self = RightsCache {
                version: Some(version),
                ..RightsCache::default()
            };
        }
    }
}
