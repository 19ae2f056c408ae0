//! Per-conversation order for a user's live deliveries when several nodes
//! send them: conversation actors on different nodes commit into the same
//! conversation, and their deliveries reach this node on separate paths,
//! so `seq` 6 can arrive before 5. A user actor in a cluster hands its
//! sessions each conversation's messages in `seq` order without gaps:
//! early arrivals wait, a gap that is not filled by the bus soon is filled
//! from the store, duplicates are dropped.

use std::collections::{BTreeMap, HashMap};

use crate::ids::{ConvId, SessionId};
use crate::protocol::Encoded;

/// A message waiting for its turn.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub frame: Encoded,
    /// The sending session (no carbon to it).
    pub except: Option<SessionId>,
}

#[derive(Default)]
struct Stream {
    /// The last seq handed out.
    last: u64,
    held: BTreeMap<u64, Held>,
    filling: bool,
    /// Started by a live arrival, not by a replay: where the stream
    /// starts is not known yet, so what arrives during the first wait is
    /// collected and handed out in order when it ends.
    open: bool,
}

/// The streams of one user.
#[derive(Default)]
pub(crate) struct Order {
    convs: HashMap<ConvId, Stream>,
}

/// Messages ready to hand out, in order, and a gap `(after, before)` to
/// fill from the store (exclusive bounds) when one just opened.
pub(crate) type Ready = (Vec<(u64, Held)>, Option<(u64, u64)>);

impl Stream {
    fn drain(&mut self) -> Vec<(u64, Held)> {
        let mut out = Vec::new();
        while let Some(h) = self.last.checked_add(1).and_then(|n| self.held.remove(&n)) {
            self.last += 1;
            out.push((self.last, h));
        }
        out
    }

    /// A gap to fill, once per gap: none while one is being filled, and a
    /// closed gap (nothing held) ends the fill.
    fn gap(&mut self) -> Option<(u64, u64)> {
        let Some(first) = self.held.keys().next().copied() else {
            self.filling = false;
            return None;
        };
        if self.filling {
            return None;
        }
        self.filling = true;
        Some((self.last, first))
    }
}

impl Order {
    /// Message `seq` of `conv` arrived. A conversation not seen before
    /// (and not seeded by a replay) starts with a wait, so messages that
    /// overtook each other on the way are still handed out in order; its
    /// stream then starts at the lowest that arrived.
    pub fn arrive(&mut self, conv: &ConvId, seq: u64, held: Held) -> Ready {
        let s = self.convs.entry(conv.clone()).or_insert_with(|| Stream {
            open: true,
            ..Stream::default()
        });
        if seq <= s.last {
            return (Vec::new(), None);
        }
        s.held.entry(seq).or_insert(held);
        if s.open {
            return (Vec::new(), s.gap());
        }
        let out = s.drain();
        (out, s.gap())
    }

    /// Ends the first wait of a stream started by a live arrival: it
    /// starts at the lowest seq that arrived. `None` when it was not
    /// waiting.
    pub fn settle(&mut self, conv: &ConvId) -> Option<Ready> {
        let s = self.convs.get_mut(conv).filter(|s| s.open)?;
        s.open = false;
        s.filling = false;
        if let Some(first) = s.held.keys().next().copied() {
            s.last = first.saturating_sub(1);
        }
        let out = s.drain();
        Some((out, s.gap()))
    }

    /// What a session's login replay carried: a stream not started yet
    /// starts after it, so a later arrival that skips a message opens a
    /// gap instead of starting past it.
    pub fn seed(&mut self, conv: &ConvId, replayed_to: u64) {
        let s = self.convs.entry(conv.clone()).or_default();
        if s.held.is_empty() && s.last < replayed_to {
            s.last = replayed_to;
            s.open = false;
        }
    }

    /// The gap of `conv` is still open: `(after, before)`.
    pub fn open_gap(&self, conv: &ConvId) -> Option<(u64, u64)> {
        let s = self.convs.get(conv)?;
        let first = *s.held.keys().next()?;
        Some((s.last, first))
    }

    /// The store's messages for the gap (`found`, ascending); what is
    /// still missing after them is skipped (not stored, or not for this
    /// user). Returns what is ready now.
    pub fn filled(&mut self, conv: &ConvId, found: Vec<(u64, Held)>) -> Ready {
        let Some(s) = self.convs.get_mut(conv) else {
            return (Vec::new(), None);
        };
        s.filling = false;
        for (seq, h) in found {
            if seq > s.last {
                s.held.entry(seq).or_insert(h);
            }
        }
        let mut out = s.drain();
        if let Some(first) = s.held.keys().next().copied() {
            s.last = first - 1;
            out.extend(s.drain());
        }
        (out, s.gap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RoomName;

    fn h(n: u64) -> Held {
        Held {
            frame: crate::protocol::Encoded::from_text(n.to_string()),
            except: None,
        }
    }

    fn seqs(r: &Ready) -> Vec<u64> {
        r.0.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn early_arrivals_wait_for_the_gap_and_duplicates_are_dropped() {
        let conv = ConvId::Room(RoomName::parse("lobby").unwrap());
        let mut o = Order::default();
        // The first arrival waits; what overtook it is still in order.
        assert_eq!(o.arrive(&conv, 6, h(6)).1, Some((0, 6)));
        assert_eq!(o.arrive(&conv, 5, h(5)).1, None);
        assert_eq!(seqs(&o.settle(&conv).unwrap()), [5, 6]);
        assert!(o.settle(&conv).is_none());
        let r = o.arrive(&conv, 8, h(8));
        assert_eq!((seqs(&r), r.1), (vec![], Some((6, 8))));
        assert_eq!(seqs(&o.arrive(&conv, 7, h(7))), [7, 8]);
        assert_eq!(seqs(&o.arrive(&conv, 5, h(5))), Vec::<u64>::new());
        assert_eq!(o.open_gap(&conv), None);
        let mut o = Order::default();
        o.seed(&conv, 4);
        assert_eq!(seqs(&o.arrive(&conv, 5, h(5))), [5]);
        let r = o.arrive(&conv, 7, h(7));
        assert_eq!((seqs(&r), r.1), (vec![], Some((5, 7))));
        // A second early one does not ask again.
        assert_eq!(o.arrive(&conv, 8, h(8)).1, None);
        assert_eq!(seqs(&o.arrive(&conv, 6, h(6))), [6, 7, 8]);
        assert_eq!(seqs(&o.arrive(&conv, 7, h(7))), Vec::<u64>::new());
        assert_eq!(o.open_gap(&conv), None);
    }

    #[test]
    fn a_gap_the_store_fills_is_handed_out_in_order_and_the_rest_skipped() {
        let conv = ConvId::Room(RoomName::parse("lobby").unwrap());
        let mut o = Order::default();
        o.seed(&conv, 1);
        o.arrive(&conv, 5, h(5));
        assert_eq!(o.open_gap(&conv), Some((1, 5)));
        // The store has 2 and 4 (3 is not for us).
        let r = o.filled(&conv, vec![(2, h(2)), (4, h(4))]);
        assert_eq!(seqs(&r), [2, 4, 5]);
        assert_eq!(o.open_gap(&conv), None);
        assert_eq!(seqs(&o.arrive(&conv, 6, h(6))), [6]);
    }

    #[test]
    fn a_gap_closed_by_the_bus_does_not_block_the_next_one() {
        let conv = ConvId::Room(RoomName::parse("lobby").unwrap());
        let mut o = Order::default();
        o.seed(&conv, 5);
        assert_eq!(o.arrive(&conv, 7, h(7)).1, Some((5, 7)));
        assert_eq!(seqs(&o.arrive(&conv, 6, h(6))), [6, 7]);
        // The next gap asks for a fill again.
        assert_eq!(o.arrive(&conv, 9, h(9)).1, Some((7, 9)));
    }

    #[test]
    fn a_replay_seeds_the_stream() {
        let conv = ConvId::Room(RoomName::parse("lobby").unwrap());
        let mut o = Order::default();
        o.seed(&conv, 4);
        let r = o.arrive(&conv, 6, h(6));
        assert_eq!((seqs(&r), r.1), (vec![], Some((4, 6))));
        assert_eq!(seqs(&o.arrive(&conv, u64::MAX, h(0))), Vec::<u64>::new());
    }
}
