//! [`ChangeStore`] for [`MemoryStore`]: the change log in a vector.

use super::*;

impl ChangeStore for MemoryStore {
    fn publish_change(&self, origin: u64, change: &Change, at: Millis) -> StoreResult<()> {
        let mut g = self.lock()?;
        let id = g.changes.last().map_or(1, |(r, _)| r.id + 1);
        let record = ChangeRecord {
            id,
            origin,
            change: change.clone(),
        };
        g.changes.push((record, at));
        Ok(())
    }

    fn changes_after(&self, after: u64, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        let g = self.lock()?;
        Ok(g.changes
            .iter()
            .filter(|(r, _)| r.id > after)
            .take(limit)
            .map(|(r, _)| r.clone())
            .collect())
    }

    fn last_change_id(&self) -> StoreResult<u64> {
        Ok(self.lock()?.changes.last().map_or(0, |(r, _)| r.id))
    }

    fn prune_changes(&self, before: Millis) -> StoreResult<()> {
        self.lock()?.changes.retain(|(_, at)| *at >= before);
        Ok(())
    }
}
