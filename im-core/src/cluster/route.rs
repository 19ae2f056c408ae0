//! The hub's side of the bus: events for users go to their actors here and
//! to every other node where they have sessions (one bus message per node,
//! not per user); presence is aggregated over the nodes; heartbeats find
//! dead nodes; "the change log moved" makes every node read it at once,
//! acknowledged, so control takes effect everywhere with its `ok`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::view::View;
use super::wire::{Envelope, Event, Online, Wire, PART};
use super::{Bus, Dest, NodeId, INBOX};
use crate::actors::user::{AdoptPresence, Deliver, Emit, KickSessions, PresenceOf, UserActor};
use crate::actors::Core;
use crate::ids::{now_millis, ConvId, SessionId, UserId};
use crate::protocol::{Encoded, ServerFrame, Status};
use crate::store::ContactState;

/// This node's place in a cluster.
pub(crate) struct Cluster {
    bus: Arc<dyn Bus>,
    /// This node (the hub's change-log origin).
    pub node: NodeId,
    /// Longest silence before a node counts as dead.
    pub timeout: Duration,
    view: Mutex<View>,
    /// Users online here, as announced.
    local: Mutex<HashMap<UserId, Online>>,
    /// Users who went offline here while online on another node: if that
    /// node lets go at the same moment, both would think the other still
    /// holds them, so the last word on them comes from here.
    suppressed: Mutex<HashSet<UserId>>,
    /// Snapshots arriving in parts, by node.
    snapshots: Mutex<HashMap<NodeId, Vec<(UserId, Online)>>>,
    /// Control changes waiting for other nodes' acknowledgements.
    acks: Mutex<HashMap<u64, Waiting>>,
    next_ack: AtomicU64,
    /// Presence version: one more with every announcement.
    version: AtomicU64,
    /// Said `Bye`: heartbeats stop.
    left: std::sync::atomic::AtomicBool,
}

/// What to send each user actor an event from another node reaches.
type ToActor = Box<dyn Fn(&Addr<UserActor>)>;

/// The nodes a change still waits for, and who to tell when none is left.
type Waiting = (HashSet<NodeId>, Option<oneshot::Sender<()>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A control change's entry in the ack map, removed when dropped.
struct AckEntry<'a> {
    acks: &'a Mutex<HashMap<u64, Waiting>>,
    id: u64,
}

impl Drop for AckEntry<'_> {
    fn drop(&mut self) {
        lock(self.acks).remove(&self.id);
    }
}

impl Cluster {
    /// This node (`node`) on `bus`.
    pub fn new(bus: Arc<dyn Bus>, node: NodeId, timeout: Duration) -> Cluster {
        Cluster {
            bus,
            node,
            timeout,
            view: Mutex::default(),
            local: Mutex::default(),
            suppressed: Mutex::default(),
            snapshots: Mutex::default(),
            acks: Mutex::default(),
            next_ack: AtomicU64::new(1),
            version: AtomicU64::new(0),
            left: Default::default(),
        }
    }

    fn say(&self, to: Dest, msg: Wire) {
        let payload = Envelope {
            from: self.node,
            msg,
        }
        .encode();
        crate::telemetry::cluster_sent();
        self.bus.send(to, payload);
    }

    /// Heartbeats go this often.
    fn beat(&self) -> Duration {
        (self.timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// Completes the acknowledgements `node` will never send.
    fn release_acks(&self, node: NodeId) {
        let mut acks = lock(&self.acks);
        for (waiting, done) in acks.values_mut() {
            waiting.remove(&node);
            if waiting.is_empty() {
                if let Some(tx) = done.take() {
                    let _ = tx.send(());
                }
            }
        }
        acks.retain(|_, (_, done)| done.is_some());
    }
}

impl Core {
    fn cluster(&self) -> Option<&Cluster> {
        self.actors.cluster.as_ref()
    }

    /// Whether this hub is one node of several.
    pub(crate) fn clustered(&self) -> bool {
        self.actors.cluster.is_some()
    }

    /// Hands `users` an event: local actors through `local`, other nodes
    /// (where those users have sessions) one `ToUsers` each.
    fn fan<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
        local: impl Fn(&UserId, &Addr<UserActor>),
        event: impl FnOnce() -> Event,
    ) {
        let mut remote: HashMap<NodeId, Vec<String>> = HashMap::new();
        let view = self.cluster().map(|c| lock(&c.view));
        for u in users {
            if let Some(l) = self.actors.users.get(u) {
                local(u, &l.addr);
            }
            if let Some(v) = &view {
                for n in v.nodes_of(u) {
                    remote.entry(n).or_default().push(u.as_str().to_owned());
                }
            }
        }
        drop(view);
        let (Some(c), false) = (self.cluster(), remote.is_empty()) else {
            return;
        };
        let event = event();
        for (n, users) in remote {
            for part in users.chunks(PART) {
                c.say(
                    Dest::Node(n),
                    Wire::ToUsers {
                        users: part.to_vec(),
                        event: event.clone(),
                    },
                );
            }
        }
    }

    /// A stored message to every member's sessions, but the sending one:
    /// one bus message per node, whatever the number of members there.
    pub(crate) fn deliver(
        &self,
        members: &[UserId],
        conv: &ConvId,
        seq: u64,
        frame: &Encoded,
        sender: (&UserId, SessionId),
    ) {
        self.fan(
            members,
            |m, a| {
                a.do_send(Deliver {
                    conv: conv.clone(),
                    seq,
                    frame: frame.clone(),
                    except: (m == sender.0).then_some(sender.1),
                })
            },
            || Event::Deliver {
                conv: conv.to_string(),
                seq,
                frame: frame.as_str().to_owned(),
            },
        );
    }

    /// Any other event to these users' sessions on every node, but
    /// `except` (a session of this node).
    pub(crate) fn emit_to<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
        frame: &Encoded,
        except: Option<SessionId>,
    ) {
        self.emit(users, frame, Some(except));
    }

    /// An event to these users' sessions on other nodes only (this node's
    /// had it another way).
    pub(crate) fn emit_remote<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
        frame: &Encoded,
    ) {
        if self.cluster().is_some() {
            self.emit(users, frame, None);
        }
    }

    /// `here`: this node's sessions too, but the one given.
    fn emit<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
        frame: &Encoded,
        here: Option<Option<SessionId>>,
    ) {
        self.fan(
            users,
            |_, a| {
                if let Some(except) = here {
                    a.do_send(Emit {
                        frame: frame.clone(),
                        except,
                    })
                }
            },
            || Event::Emit {
                frame: frame.as_str().to_owned(),
            },
        );
    }

    /// `from`'s presence frame to these contacts, on every node.
    pub(crate) fn presence_to<'a>(
        &self,
        peers: impl IntoIterator<Item = &'a UserId>,
        from: &UserId,
        frame: &Encoded,
    ) {
        self.fan(
            peers,
            |_, a| {
                a.do_send(PresenceOf {
                    from: from.clone(),
                    frame: frame.clone(),
                })
            },
            || Event::Presence {
                from: from.as_str().to_owned(),
                frame: frame.as_str().to_owned(),
            },
        );
    }

    /// Whether `user` has a session on this node or another.
    pub(crate) fn is_online(&self, user: &UserId) -> bool {
        crate::services::Services::is_online(self, user) || self.online_elsewhere(user)
    }

    /// Whether `user` has a session on another node.
    pub(crate) fn online_elsewhere(&self, user: &UserId) -> bool {
        self.remote_presence(user).is_some()
    }

    /// `user`'s status and note on another node.
    pub(crate) fn remote_presence(&self, user: &UserId) -> Option<(Status, Option<String>)> {
        let c = self.cluster()?;
        lock(&c.view).presence(user).map(|o| (o.status, o.note))
    }

    /// Tells the other nodes `user` is online here as `online`, or (None)
    /// no longer.
    pub(crate) fn announce(&self, user: &UserId, online: Option<(Status, Option<String>)>) {
        let Some(c) = self.cluster() else {
            return;
        };
        let online = online.map(|(status, note)| Online { status, note });
        let elsewhere = self.online_elsewhere(user);
        match (&online, elsewhere) {
            (Some(_), _) => {
                lock(&c.suppressed).remove(user);
            }
            (None, true) => {
                lock(&c.suppressed).insert(user.clone());
            }
            (None, false) => {}
        }
        // The version moves with the map, so a snapshot is as of one, and
        // it goes on the bus under the same lock: user actors on other
        // threads cannot send their versions out of order.
        let mut local = lock(&c.local);
        match &online {
            Some(o) => {
                local.insert(user.clone(), o.clone());
            }
            None => {
                local.remove(user);
            }
        }
        let v = c.version.fetch_add(1, Ordering::AcqRel) + 1;
        c.say(
            Dest::All,
            Wire::Presence {
                user: user.as_str().to_owned(),
                online,
                v,
            },
        );
    }

    /// After a control change is in the change log: every other node
    /// reads the log now, and this returns once they all have (or the node
    /// timeout passed), so the change holds everywhere with its `ok`.
    pub(crate) async fn changed(&self) {
        self.changed_with(None).await
    }

    /// Like [`Core::changed`], also closing `suspended`'s sessions on
    /// every node.
    pub(crate) async fn changed_with(&self, suspended: Option<&UserId>) {
        let Some(c) = self.cluster() else {
            return;
        };
        // Read past our own change, so our heartbeats carry the log's end
        // and a node that misses the message below catches up at a beat.
        if let Err(e) = self.follow_changes().await {
            tracing::warn!(error = %e, "could not read the change log");
        }
        let nodes: HashSet<NodeId> = lock(&c.view).nodes().into_iter().collect();
        let id = c.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if !nodes.is_empty() {
            lock(&c.acks).insert(id, (nodes, Some(tx)));
        }
        // Gone however the wait ends, also when the request is dropped
        // (its client disconnected) before the acks came.
        let _entry = AckEntry { acks: &c.acks, id };
        c.say(
            Dest::All,
            Wire::Changes {
                ack: Some(id),
                suspended: suspended.map(|u| u.as_str().to_owned()),
            },
        );
        if !lock(&c.acks).contains_key(&id) {
            return;
        }
        if tokio::time::timeout(c.timeout, rx).await.is_err() {
            tracing::warn!("a node did not confirm a change in time");
        }
    }

    /// Joins the bus: the inbound loop, heartbeats, a `Hello` so the
    /// others say who is online on them.
    pub(crate) fn join_cluster(&self) {
        let Some(c) = self.cluster() else {
            return;
        };
        let (tx, mut rx) = mpsc::channel::<Bytes>(INBOX);
        c.bus.attach(c.node, tx);
        let weak = self.downgrade();
        actix_rt::spawn(async move {
            while let Some(payload) = rx.recv().await {
                let Some(core) = weak.upgrade() else {
                    return;
                };
                match Envelope::decode(&payload) {
                    Some(e) => core.on_wire(e),
                    None => tracing::warn!("undecodable bus payload dropped"),
                }
            }
        });
        let weak = self.downgrade();
        let beat = c.beat();
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(beat);
            loop {
                tick.tick().await;
                let Some(core) = weak.upgrade() else {
                    return;
                };
                if core
                    .cluster()
                    .is_some_and(|c| c.left.load(Ordering::Acquire))
                {
                    return;
                }
                core.heartbeat();
            }
        });
        c.say(Dest::All, Wire::Hello);
    }

    /// Tells the other nodes this one is going.
    pub(crate) fn leave_cluster(&self) {
        if let Some(c) = self.cluster() {
            c.left.store(true, Ordering::Release);
            c.say(Dest::All, Wire::Bye);
        }
    }

    fn heartbeat(&self) {
        let Some(c) = self.cluster() else {
            return;
        };
        let change_id = self.actors.feed.position();
        {
            // A version read under the lock has been sent already.
            let _local = lock(&c.local);
            let presence = c.version.load(Ordering::Acquire);
            c.say(
                Dest::All,
                Wire::Heartbeat {
                    change_id,
                    presence,
                },
            );
        }
        let silent = lock(&c.view).silent(c.timeout);
        for n in silent {
            tracing::warn!(node = n, "node silent for too long: taken as dead");
            self.node_gone(n);
        }
        crate::telemetry::cluster_nodes(lock(&c.view).nodes().len());
    }

    fn node_gone(&self, node: NodeId) {
        let Some(c) = self.cluster() else {
            return;
        };
        tracing::info!(node, "node gone");
        let offline = lock(&c.view).forget(node);
        lock(&c.snapshots).remove(&node);
        {
            let mut suppressed = lock(&c.suppressed);
            for u in &offline {
                suppressed.remove(u);
            }
        }
        c.release_acks(node);
        self.offline_everywhere(offline, true);
    }

    /// Users no longer online on any node: their contacts here (`local`)
    /// or everywhere learn it, and `last_seen` is stored.
    fn offline_everywhere(&self, users: Vec<UserId>, local: bool) {
        for user in users {
            if self.is_online(&user) {
                continue;
            }
            let now = now_millis();
            let frame = ServerFrame::offline(user.clone(), Some(now)).encode();
            self.tell_contacts(user, frame, Some(now), !local);
        }
    }

    /// `user`'s mutual contacts, read from the store (the user's actor is
    /// on another node, or gone); with `seen`, `last_seen` is stored first.
    async fn mutual_contacts(&self, user: &UserId, seen: Option<i64>) -> Vec<UserId> {
        let u = user.clone();
        let contacts = self
            .db(move |s| {
                if let Some(at) = seen {
                    // Several nodes may write this: the same moment, give or take.
                    s.set_last_seen(&u, at)?;
                }
                s.contacts(&u)
            })
            .await
            .unwrap_or_default();
        contacts
            .into_iter()
            .filter(|(_, st)| *st == ContactState::Mutual)
            .map(|(u, _)| u)
            .collect()
    }

    /// `user`'s presence `frame` to their mutual contacts, on this node
    /// only or (`everywhere`) on every node.
    fn tell_contacts(&self, user: UserId, frame: Encoded, seen: Option<i64>, everywhere: bool) {
        let core = self.clone();
        actix_rt::spawn(async move {
            let mutual = core.mutual_contacts(&user, seen).await;
            if everywhere {
                return core.presence_to(&mutual, &user, &frame);
            }
            for peer in mutual {
                if let Some(l) = core.actors.users.get(&peer) {
                    l.addr.do_send(PresenceOf {
                        from: user.clone(),
                        frame: frame.clone(),
                    });
                }
            }
        });
    }

    fn on_wire(&self, e: Envelope) {
        let Some(c) = self.cluster() else {
            return;
        };
        if e.from == c.node {
            return;
        }
        crate::telemetry::cluster_received();
        let from = e.from;
        let new = lock(&c.view).heard(from);
        if new {
            tracing::info!(node = from, "node joined");
        }
        if new && !matches!(e.msg, Wire::Hello | Wire::Snapshot { .. }) {
            // A node we did not know: ask who is online there.
            c.say(Dest::Node(from), Wire::Hello);
        }
        match e.msg {
            Wire::Heartbeat {
                change_id,
                presence,
            } => {
                if change_id > self.actors.feed.position() {
                    self.read_changes(None);
                }
                if !new && !lock(&c.view).at(from, presence) {
                    // Presence lost or out of order: start again from a
                    // snapshot.
                    c.say(Dest::Node(from), Wire::Hello);
                }
            }
            Wire::Hello => {
                // Under the lock, so no presence change of a later
                // version goes out before the snapshot.
                let local = lock(&c.local);
                let users: Vec<(String, Online)> = local
                    .iter()
                    .map(|(u, o)| (u.as_str().to_owned(), o.clone()))
                    .collect();
                let v = c.version.load(Ordering::Acquire);
                let mut parts = users.chunks(PART).peekable();
                if parts.peek().is_none() {
                    let (users, done) = (Vec::new(), true);
                    c.say(Dest::Node(from), Wire::Snapshot { users, done, v });
                }
                while let Some(part) = parts.next() {
                    let (users, done) = (part.to_vec(), parts.peek().is_none());
                    c.say(Dest::Node(from), Wire::Snapshot { users, done, v });
                }
            }
            Wire::Snapshot { users, done, v } => {
                let mut parts = lock(&c.snapshots);
                let got = parts.entry(from).or_default();
                got.extend(
                    users
                        .into_iter()
                        .filter_map(|(u, o)| Some((UserId::parse(&u)?, o))),
                );
                if !done {
                    return;
                }
                let users = parts.remove(&from).unwrap_or_default();
                drop(parts);
                let (offline, online) = {
                    let mut view = lock(&c.view);
                    view.synced_to(from, v);
                    view.replace(from, users)
                };
                self.offline_everywhere(offline, true);
                // After NATS came back, say, contacts here saw them go.
                for (user, o) in online {
                    if !crate::services::Services::is_online(self, &user) {
                        let frame = ServerFrame::online(user.clone(), o.status, o.note).encode();
                        self.tell_contacts(user, frame, None, false);
                    }
                }
            }
            Wire::Presence { user, online, v } => {
                if !lock(&c.view).step(from, v) {
                    c.say(Dest::Node(from), Wire::Hello);
                }
                self.on_presence(from, &user, online)
            }
            Wire::ToUsers { users, event } => self.on_event(&users, event),
            Wire::Changes { ack, suspended } => {
                if let Some(u) = suspended.as_deref().and_then(UserId::parse) {
                    self.kick_sessions(&u, KickSessions::suspended());
                }
                self.read_changes(ack.map(|id| (from, id)))
            }
            Wire::Ack { id } => {
                let mut acks = lock(&c.acks);
                if let Some((waiting, done)) = acks.get_mut(&id) {
                    waiting.remove(&from);
                    if waiting.is_empty() {
                        if let Some(tx) = done.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
            Wire::Bye => self.node_gone(from),
        }
    }

    fn on_presence(&self, from: NodeId, user: &str, online: Option<Online>) {
        let (Some(c), Some(user)) = (self.cluster(), UserId::parse(user)) else {
            return;
        };
        if let (Some(o), Some(l)) = (&online, self.actors.users.get(&user)) {
            l.addr.do_send(AdoptPresence {
                status: o.status,
                note: o.note.clone(),
            });
            // Our snapshots show the status the user chose last.
            if let Some(mine) = lock(&c.local).get_mut(&user) {
                *mine = o.clone();
            }
        }
        let gone = online.is_none();
        let (_, still) = lock(&c.view).set(from, &user, online);
        if gone && !still && lock(&c.suppressed).remove(&user) {
            self.offline_everywhere(vec![user], false);
        }
    }

    /// An event from another node for users of this one.
    fn on_event(&self, users: &[String], event: Event) {
        let send: ToActor = match event {
            Event::Deliver { conv, seq, frame } => {
                let Some(conv) = ConvId::parse(&conv) else {
                    return;
                };
                let frame = Encoded::from_text(frame);
                Box::new(move |a| {
                    a.do_send(Deliver {
                        conv: conv.clone(),
                        seq,
                        frame: frame.clone(),
                        except: None,
                    })
                })
            }
            Event::Emit { frame } => {
                let frame = Encoded::from_text(frame);
                Box::new(move |a| {
                    a.do_send(Emit {
                        frame: frame.clone(),
                        except: None,
                    })
                })
            }
            Event::Presence { from, frame } => {
                let (Some(from), frame) = (UserId::parse(&from), Encoded::from_text(frame)) else {
                    return;
                };
                Box::new(move |a| {
                    a.do_send(PresenceOf {
                        from: from.clone(),
                        frame: frame.clone(),
                    })
                })
            }
        };
        for u in users.iter().filter_map(|u| UserId::parse(u)) {
            if let Some(l) = self.actors.users.get(&u) {
                send(&l.addr);
            }
        }
    }

    /// Reads the change log now; then acknowledges to `ack`'s node.
    fn read_changes(&self, ack: Option<(NodeId, u64)>) {
        let core = self.clone();
        actix_rt::spawn(async move {
            if let Err(e) = core.follow_changes().await {
                tracing::warn!(error = %e, "could not read the change log");
            }
            if let (Some(c), Some((node, id))) = (core.cluster(), ack) {
                c.say(Dest::Node(node), Wire::Ack { id });
            }
        });
    }
}
