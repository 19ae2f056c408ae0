//! Contacts: relations and blocks.

use im_core::store::prelude::*;
use im_core::store::{ContactState, Relation};

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    (
        "relations_and_contacts_from_both_sides",
        relations_and_contacts_from_both_sides,
    ),
    ("blocks_and_blocked_by", blocks_and_blocked_by),
];

fn relations_and_contacts_from_both_sides(s: &dyn Store) {
    let (a, b, c, d) = (uid("alice"), uid("bob"), uid("carol"), uid("dave"));
    assert_eq!(s.relation(&a, &b).unwrap(), Relation::None);
    assert!(s.contacts(&a).unwrap().is_empty());

    s.set_relation(&b, &a, &Relation::Requested { by: a.clone() })
        .unwrap();
    assert_eq!(
        s.relation(&a, &b).unwrap(),
        Relation::Requested { by: a.clone() }
    );
    assert_eq!(
        s.relation(&b, &a).unwrap(),
        Relation::Requested { by: a.clone() }
    );
    assert_eq!(
        s.contacts(&a).unwrap(),
        [(b.clone(), ContactState::PendingOut)]
    );
    assert_eq!(
        s.contacts(&b).unwrap(),
        [(a.clone(), ContactState::PendingIn)]
    );

    s.set_relation(&a, &b, &Relation::Mutual).unwrap();
    assert_eq!(s.relation(&b, &a).unwrap(), Relation::Mutual);
    assert_eq!(s.contacts(&a).unwrap(), [(b.clone(), ContactState::Mutual)]);
    assert_eq!(s.contacts(&b).unwrap(), [(a.clone(), ContactState::Mutual)]);

    s.set_relation(&d, &a, &Relation::Requested { by: d.clone() })
        .unwrap();
    s.set_relation(&a, &c, &Relation::Requested { by: a.clone() })
        .unwrap();
    assert_eq!(
        s.contacts(&a).unwrap(),
        [
            (b.clone(), ContactState::Mutual),
            (c.clone(), ContactState::PendingOut),
            (d.clone(), ContactState::PendingIn),
        ]
    );
    assert_eq!(
        s.contacts(&c).unwrap(),
        [(a.clone(), ContactState::PendingIn)]
    );
    assert_eq!(
        s.contacts(&d).unwrap(),
        [(a.clone(), ContactState::PendingOut)]
    );

    s.set_relation(&b, &a, &Relation::None).unwrap();
    assert_eq!(s.relation(&a, &b).unwrap(), Relation::None);
    assert!(s.contacts(&b).unwrap().is_empty());
    assert_eq!(s.contacts(&a).unwrap().len(), 2);
    // Removing what is not there is fine.
    s.set_relation(&b, &c, &Relation::None).unwrap();
}

fn blocks_and_blocked_by(s: &dyn Store) {
    let (a, b, c, d) = (uid("alice"), uid("bob"), uid("carol"), uid("dave"));
    assert!(s.blocks(&a).unwrap().is_empty());
    s.set_block(&a, &c, true).unwrap();
    s.set_block(&a, &b, true).unwrap();
    s.set_block(&a, &b, true).unwrap();
    s.set_block(&d, &b, true).unwrap();
    assert_eq!(s.blocks(&a).unwrap(), [b.clone(), c.clone()]);
    assert_eq!(s.blocked_by(&b).unwrap(), [a.clone(), d.clone()]);
    assert!(s.blocks(&b).unwrap().is_empty(), "blocks are one-way");
    assert!(s.blocked_by(&a).unwrap().is_empty());
    s.set_block(&a, &b, false).unwrap();
    s.set_block(&a, &d, false).unwrap();
    assert_eq!(s.blocks(&a).unwrap(), [c]);
    assert_eq!(s.blocked_by(&b).unwrap(), [d]);
}
