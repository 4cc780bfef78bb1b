//! The dimensions seen by one partition, each stored once and named by a
//! small id, so that window state and per-series history are keyed by
//! `(Metric, DimensionsId)`: hashing and comparing a key touches no string,
//! opening a series allocates nothing, and closing a window frees nothing.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use crate::rollup::{Dimensions, DimensionsRef};

/// Names one set of dimensions in a partition's interner.
pub type DimensionsId = u32;

#[derive(Debug, Default)]
struct Slot {
    dimensions: Dimensions,
    hash: u64,
    /// Newest window position (start / slide) the dimensions were seen in.
    last_position: i64,
}

/// Dimensions by id, and ids by dimensions. Ids of forgotten dimensions are
/// reused.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    table: hashbrown::HashTable<DimensionsId>,
    slots: Vec<Slot>,
    free: Vec<DimensionsId>,
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
            slot.last_position = slot.last_position.max(position);
            return id;
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

    /// Forgets every dimensions last seen in a window before `oldest_kept`.
    /// The caller guarantees that no open window or kept history refers to
    /// them.
    pub(crate) fn forget_before(&mut self, oldest_kept: i64) {
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

    /// Whether `dimensions` are held.
    pub(crate) fn contains(&self, dimensions: DimensionsRef<'_>) -> bool {
        let slots = &self.slots;
        self.table
            .find(hash_of(dimensions), |&id| {
                slots[id as usize].dimensions.as_ref() == dimensions
            })
            .is_some()
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
}
