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
        while let Some(h) = self.held.remove(&(self.last + 1)) {
            self.last += 1;
            out.push((self.last, h));
        }
        out
    }

    fn gap(&mut self) -> Option<(u64, u64)> {
        let first = *self.held.keys().next()?;
        if self.filling {
            return None;
        }
        self.filling = true;
        Some((self.last, first))
    }
}

impl Order {
    /// Message `seq` of `conv` arrived. The first message seen of a
    /// conversation starts its stream (earlier ones were replayed or
    /// predate this actor).
    pub fn arrive(&mut self, conv: &ConvId, seq: u64, held: Held) -> Ready {
        let s = self.convs.entry(conv.clone()).or_insert_with(|| Stream {
            last: seq.saturating_sub(1),
            ..Stream::default()
        });
        if seq <= s.last {
            return (Vec::new(), None);
        }
        s.held.entry(seq).or_insert(held);
        let out = s.drain();
        (out, s.gap())
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
        o.arrive(&conv, 1, h(1));
        o.arrive(&conv, 5, h(5));
        assert_eq!(o.open_gap(&conv), Some((1, 5)));
        // The store has 2 and 4 (3 is not for us).
        let r = o.filled(&conv, vec![(2, h(2)), (4, h(4))]);
        assert_eq!(seqs(&r), [2, 4, 5]);
        assert_eq!(o.open_gap(&conv), None);
        assert_eq!(seqs(&o.arrive(&conv, 6, h(6))), [6]);
    }
}
