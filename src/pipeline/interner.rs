//! The dimensions seen by one partition, each stored once and named by a
//! small id, so that window state and per-series history are keyed by
//! `(Metric, DimensionsId)`: hashing and comparing a key touches no string,
//! opening a series allocates nothing, and closing a window frees nothing.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use crate::rollup::{Dimensions, DimensionsRef};

/// Names one set of dimensions in a partition's interner.
pub type DimensionsId = u32;

#[derive(Debug, Clone, Default)]
struct Slot {
    dimensions: Dimensions,
    hash: u64,
    /// Newest window position (start / slide) the dimensions were seen in.
    last_position: i64,
}

/// Dimensions by id, and ids by dimensions. Ids of forgotten dimensions are
/// reused.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    table: hashbrown::HashTable<DimensionsId>,
    slots: Vec<Slot>,
    free: Vec<DimensionsId>,
    /// The last [`Self::held_since`] answer, `(oldest_kept, count)`, kept
    /// up to date as dimensions are interned.
    since: Option<(i64, usize)>,
}

fn hash_of(d: DimensionsRef<'_>) -> u64 {
    FxBuildHasher.hash_one((d.campaign_id, d.content_id, d.channel))
}

impl Interner {
    /// The id of `dimensions`, seen in the window at `position`; stored if
    /// new.
    pub(crate) fn intern(&mut self, dimensions: DimensionsRef<'_>, position: i64) -> DimensionsId {
        let hash = hash_of(dimensions);
        let slots = &mut self.slots;
        if let Some(&id) = self.table.find(hash, |&id| {
            slots[id as usize].dimensions.as_ref() == dimensions
        }) {
            let slot = &mut slots[id as usize];
            if let Some((since, count)) = &mut self.since {
                if slot.last_position < *since && position >= *since {
                    *count += 1;
                }
            }
            slot.last_position = slot.last_position.max(position);
            return id;
        }
        if let Some((since, count)) = &mut self.since {
            *count += usize::from(position >= *since);
        }
        let slot = Slot {
            dimensions: dimensions.to_owned(),
            hash,
            last_position: position,
        };
        let id = match self.free.pop() {
            Some(id) => {
                slots[id as usize] = slot;
                id
            }
            None => {
                slots.push(slot);
                DimensionsId::try_from(slots.len() - 1).unwrap_or(DimensionsId::MAX)
            }
        };
        let _entry = self
            .table
            .insert_unique(hash, id, |&id| slots[id as usize].hash);
        id
    }

    /// The dimensions named by `id`.
    pub(crate) fn get(&self, id: DimensionsId) -> &Dimensions {
        &self.slots[id as usize].dimensions
    }

    /// How many dimensions held were last seen in a window at or after
    /// `oldest_kept`: how many [`Self::forget_before`] would keep. Counted
    /// once per `oldest_kept` (once per window slide), then kept up to date.
    pub(crate) fn held_since(&mut self, oldest_kept: i64) -> usize {
        match self.since {
            Some((since, count)) if since == oldest_kept => count,
            _ => {
                let slots = &self.slots;
                let count = self
                    .table
                    .iter()
                    .filter(|&&id| slots[id as usize].last_position >= oldest_kept)
                    .count();
                self.since = Some((oldest_kept, count));
                count
            }
        }
    }

    /// Forgets every dimensions last seen in a window before `oldest_kept`.
    /// The caller guarantees that no open window or kept history refers to
    /// them.
    pub(crate) fn forget_before(&mut self, oldest_kept: i64) {
        if self.since.is_some_and(|(since, _)| since < oldest_kept) {
            self.since = None; // some of those counted go
        }
        let (slots, free) = (&mut self.slots, &mut self.free);
        self.table.retain(|&mut id| {
            let slot = &mut slots[id as usize];
            if slot.last_position >= oldest_kept {
                return true;
            }
            *slot = Slot::default();
            free.push(id);
            false
        });
    }

    /// Dimensions held.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether `dimensions` are held and were last seen in a window at or
    /// after `oldest_kept`: whether [`Self::forget_before`] would keep
    /// them.
    pub(crate) fn holds_since(&self, dimensions: DimensionsRef<'_>, oldest_kept: i64) -> bool {
        let slots = &self.slots;
        self.table
            .find(hash_of(dimensions), |&id| {
                slots[id as usize].dimensions.as_ref() == dimensions
            })
            .is_some_and(|&id| slots[id as usize].last_position >= oldest_kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(campaign: &str) -> Dimensions {
        Dimensions {
            campaign_id: campaign.into(),
            content_id: "x".into(),
            channel: "web".into(),
        }
    }

    #[test]
    fn interns_once_forgets_the_old_and_reuses_ids() {
        let mut interner = Interner::default();
        let (a, b) = (dims("a"), dims("b"));
        let id_a = interner.intern(a.as_ref(), 1);
        let id_b = interner.intern(b.as_ref(), 1);
        assert_ne!(id_a, id_b);
        assert_eq!(interner.intern(a.as_ref(), 5), id_a);
        assert_eq!((interner.get(id_a), interner.get(id_b)), (&a, &b));
        interner.forget_before(3);
        assert_eq!(interner.len(), 1);
        assert_eq!(interner.get(id_a), &a);
        let c = dims("c");
        let id_c = interner.intern(c.as_ref(), 6);
        assert_eq!(id_c, id_b, "the forgotten id is reused");
        assert_eq!(interner.get(id_c), &c);
        assert_eq!(interner.intern(a.as_ref(), 6), id_a);
    }

    #[test]
    fn counts_what_forgetting_would_keep_as_dimensions_come_and_go() {
        let mut interner = Interner::default();
        let _a = interner.intern(dims("a").as_ref(), 1);
        let _b = interner.intern(dims("b").as_ref(), 4);
        assert_eq!(interner.held_since(3), 1);
        let _c = interner.intern(dims("c").as_ref(), 5); // new, kept
        let _a = interner.intern(dims("a").as_ref(), 5); // seen again: kept now
        let _d = interner.intern(dims("d").as_ref(), 2); // new, too old
        assert_eq!(interner.held_since(3), 3);
        interner.forget_before(2); // forgets nothing counted
        assert_eq!(interner.held_since(3), 3);
        interner.forget_before(5);
        assert_eq!(interner.len(), 2);
        assert_eq!(interner.held_since(3), 2);
        assert_eq!(interner.held_since(6), 0);
        assert!(interner.holds_since(dims("a").as_ref(), 5));
        assert!(
            !interner.holds_since(dims("a").as_ref(), 6),
            "would be forgotten"
        );
        assert!(!interner.holds_since(dims("b").as_ref(), 0), "forgotten");
    }
}
