//! [`ContactStore`] for [`MemoryStore`]: contacts: relations and blocks.

use super::*;

impl ContactStore for MemoryStore {
    fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Relation> {
        let g = self.lock()?;
        Ok(g.relations
            .get(&pair(a, b))
            .cloned()
            .unwrap_or(Relation::None))
    }

    fn set_relation(&self, a: &UserId, b: &UserId, rel: &Relation) -> StoreResult<()> {
        let mut g = self.lock()?;
        match rel {
            Relation::None => g.relations.remove(&pair(a, b)),
            r => g.relations.insert(pair(a, b), r.clone()),
        };
        Ok(())
    }

    fn contacts(&self, user: &UserId) -> StoreResult<Vec<(UserId, ContactState)>> {
        let g = self.lock()?;
        let mut out: Vec<(UserId, ContactState)> = g
            .relations
            .iter()
            .filter_map(|((a, b), rel)| {
                let peer = if a == user {
                    b
                } else if b == user {
                    a
                } else {
                    return None;
                };
                let state = match rel {
                    Relation::Mutual => ContactState::Mutual,
                    Relation::Requested { by } if by == user => ContactState::PendingOut,
                    Relation::Requested { .. } => ContactState::PendingIn,
                    Relation::None => return None,
                };
                Some((peer.clone(), state))
            })
            .collect();
        out.sort_by(|x, y| x.0.cmp(&y.0));
        Ok(out)
    }

    fn set_block(&self, by: &UserId, target: &UserId, blocked: bool) -> StoreResult<()> {
        let mut g = self.lock()?;
        let key = (by.clone(), target.clone());
        if blocked {
            g.blocks.insert(key);
        } else {
            g.blocks.remove(&key);
        }
        Ok(())
    }

    fn blocks(&self, by: &UserId) -> StoreResult<Vec<UserId>> {
        let g = self.lock()?;
        Ok(g.blocks
            .iter()
            .filter(|(b, _)| b == by)
            .map(|(_, t)| t.clone())
            .collect())
    }

    fn blocked_by(&self, target: &UserId) -> StoreResult<Vec<UserId>> {
        let g = self.lock()?;
        let mut v: Vec<UserId> = g
            .blocks
            .iter()
            .filter(|(_, t)| t == target)
            .map(|(b, _)| b.clone())
            .collect();
        v.sort();
        Ok(v)
    }
}
