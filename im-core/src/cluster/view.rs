//! What a node knows of the others: which are alive (last heard), and
//! who is online on each.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::wire::Online;
use super::NodeId;
use crate::ids::UserId;

/// The other nodes, as heard on the bus.
#[derive(Default)]
pub(crate) struct View {
    /// Nodes heard from, and when last.
    nodes: HashMap<NodeId, Instant>,
    /// Users online on other nodes: where, and as what.
    users: HashMap<UserId, HashMap<NodeId, Online>>,
    /// The last presence version applied, by node.
    versions: HashMap<NodeId, u64>,
}

impl View {
    /// Notes that `node` spoke; `true` when it is new to us.
    pub fn heard(&mut self, node: NodeId) -> bool {
        self.nodes.insert(node, Instant::now()).is_none()
    }

    /// Applies presence version `v` of `node`; `false` when it does not
    /// follow the last one (something was lost or came out of order).
    pub fn step(&mut self, node: NodeId, v: u64) -> bool {
        let last = self.versions.insert(node, v).unwrap_or(0);
        v == last + 1
    }

    /// A snapshot as of version `v` of `node` was applied.
    pub fn synced_to(&mut self, node: NodeId, v: u64) {
        self.versions.insert(node, v);
    }

    /// Whether we are at `node`'s presence version `v`.
    pub fn at(&self, node: NodeId, v: u64) -> bool {
        self.versions.get(&node).copied().unwrap_or(0) == v
    }

    /// The nodes alive, as far as we know.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Sets `user`'s presence on `node`; returns whether the user was
    /// online on some other node before and after.
    pub fn set(&mut self, node: NodeId, user: &UserId, online: Option<Online>) -> (bool, bool) {
        let before = self.users.contains_key(user);
        match online {
            Some(o) => {
                self.users.entry(user.clone()).or_default().insert(node, o);
            }
            None => {
                if let Some(at) = self.users.get_mut(user) {
                    at.remove(&node);
                    if at.is_empty() {
                        self.users.remove(user);
                    }
                }
            }
        }
        (before, self.users.contains_key(user))
    }

    /// Replaces what we know of `node`'s users; returns those no longer
    /// online on any other node, and those who were not before.
    pub fn replace(
        &mut self,
        node: NodeId,
        users: Vec<(UserId, Online)>,
    ) -> (Vec<UserId>, Vec<(UserId, Online)>) {
        let now: HashSet<&UserId> = users.iter().map(|(u, _)| u).collect();
        let gone: Vec<UserId> = self
            .users
            .iter()
            .filter(|(u, at)| at.contains_key(&node) && !now.contains(u))
            .map(|(u, _)| u.clone())
            .collect();
        let mut offline = Vec::new();
        for u in gone {
            if let (_, false) = self.set(node, &u, None) {
                offline.push(u);
            }
        }
        let mut online = Vec::new();
        for (u, o) in users {
            if let (false, true) = self.set(node, &u, Some(o.clone())) {
                online.push((u, o));
            }
        }
        (offline, online)
    }

    /// Forgets `node` (dead or gone); returns its users no longer online
    /// anywhere else.
    pub fn forget(&mut self, node: NodeId) -> Vec<UserId> {
        self.nodes.remove(&node);
        self.versions.remove(&node);
        self.replace(node, Vec::new()).0
    }

    /// Nodes not heard from for `timeout`.
    pub fn silent(&self, timeout: Duration) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, at)| at.elapsed() > timeout)
            .map(|(n, _)| *n)
            .collect()
    }

    /// The other nodes where `user` has sessions.
    pub fn nodes_of(&self, user: &UserId) -> impl Iterator<Item = NodeId> + '_ {
        self.users
            .get(user)
            .into_iter()
            .flat_map(|at| at.keys().copied())
    }

    /// `user`'s presence on some other node.
    pub fn presence(&self, user: &UserId) -> Option<Online> {
        let at = self.users.get(user)?;
        // The lowest node id decides, so every node shows the same.
        at.iter().min_by_key(|(n, _)| **n).map(|(_, o)| o.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Status;

    fn on() -> Option<Online> {
        Some(Online {
            status: Status::Online,
            note: None,
        })
    }

    #[test]
    fn a_user_is_online_elsewhere_until_the_last_node_lets_go() {
        let mut v = View::default();
        let alice = UserId::parse("alice").unwrap();
        assert_eq!(v.set(1, &alice, on()), (false, true));
        assert_eq!(v.set(2, &alice, on()), (true, true));
        assert_eq!(v.set(1, &alice, None), (true, true));
        assert_eq!(v.nodes_of(&alice).collect::<Vec<_>>(), [2]);
        assert_eq!(v.set(2, &alice, None), (true, false));
        assert!(v.presence(&alice).is_none());
    }

    #[test]
    fn forgetting_a_node_returns_only_users_it_alone_had() {
        let mut v = View::default();
        let (a, b) = (
            UserId::parse("alice").unwrap(),
            UserId::parse("bob").unwrap(),
        );
        v.heard(1);
        v.heard(2);
        v.set(1, &a, on());
        v.set(1, &b, on());
        v.set(2, &b, on());
        assert_eq!(v.forget(1), [a]);
        assert!(v.presence(&b).is_some());
        assert_eq!(v.nodes(), [2]);
    }
}
