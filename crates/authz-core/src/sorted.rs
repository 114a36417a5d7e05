//! A map kept as a list sorted by key, for keys that mostly grow (stream ids, call tokens):
//! found by binary search, added at the back; a removal leaves a gap that is swept out once
//! gaps are half the list, so that streams leaving oldest first cost no quadratic moves. It does
//! what a BTreeMap does here for a few KB less wasm.

#[derive(Debug)]
pub struct SortedMap<K, V> {
    /// Sorted by key; `None` is a removed entry not yet swept out.
    entries: Vec<(K, Option<V>)>,
    gaps: usize,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            entries: Vec::new(),
            gaps: 0,
        }
    }
}

/// Gaps are swept out once there are this many and they are half the list.
const SWEEP_AFTER: usize = 32;

impl<K: Ord + Copy, V> SortedMap<K, V> {
    fn find(&self, key: K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(&key))
    }

    /// Adds or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.entries.last().is_none_or(|(last, _)| *last < key) {
            self.entries.push((key, Some(value)));
            return None;
        }
        match self.find(key) {
            Ok(at) => {
                let slot = &mut self.entries.get_mut(at)?.1;
                let old = slot.replace(value);
                if old.is_none() {
                    self.gaps -= 1;
                }
                old
            }
            Err(at) => {
                self.entries.insert(at, (key, Some(value)));
                None
            }
        }
    }

    pub fn get(&self, key: K) -> Option<&V> {
        let at = self.find(key).ok()?;
        self.entries.get(at)?.1.as_ref()
    }

    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        let at = self.find(key).ok()?;
        self.entries.get_mut(at)?.1.as_mut()
    }

    pub fn contains_key(&self, key: K) -> bool {
        self.get(key).is_some()
    }

    pub fn remove(&mut self, key: K) -> Option<V> {
        let at = self.find(key).ok()?;
        let removed = self.entries.get_mut(at)?.1.take()?;
        self.gaps += 1;
        if self.gaps >= SWEEP_AFTER && self.gaps * 2 >= self.entries.len() {
            self.entries.retain(|(_, value)| value.is_some());
            self.gaps = 0;
        }
        Some(removed)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(K, &mut V) -> bool) {
        self.entries.retain_mut(|(key, value)| match value {
            Some(value) => keep(*key, value),
            None => false,
        });
        self.gaps = 0;
    }

    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.entries
            .iter()
            .filter_map(|(key, value)| Some((*key, value.as_ref()?)))
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.gaps
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Whatever is done to it, it holds what a BTreeMap would, in the same order.
        #[test]
        fn it_behaves_as_a_btreemap(ops in prop::collection::vec((0u8..4, 0u32..64, any::<u16>()), 0..200)) {
            let mut sorted = SortedMap::default();
            let mut model = BTreeMap::new();
            for (op, key, value) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(sorted.insert(key, value), model.insert(key, value)),
                    2 => prop_assert_eq!(sorted.remove(key), model.remove(&key)),
                    _ => {
                        sorted.retain(|k, _| k % 3 != 0);
                        model.retain(|k, _| k % 3 != 0);
                    }
                }
                prop_assert_eq!(sorted.get(key), model.get(&key));
                prop_assert_eq!(sorted.len(), model.len());
            }
            let pairs: Vec<(u32, u16)> = sorted.iter().map(|(k, v)| (k, *v)).collect();
            let expected: Vec<(u32, u16)> = model.into_iter().collect();
            prop_assert_eq!(pairs, expected);
        }
    }

    #[test]
    fn two_hundred_thousand_streams_drain_oldest_first() {
        // 200k streams leaving in the order they came: each removal is at the front.
        let mut sorted = SortedMap::default();
        for id in 0..200_000u32 {
            sorted.insert(id, id);
        }
        for id in 0..200_000u32 {
            assert_eq!(sorted.remove(id), Some(id));
        }
        assert!(sorted.is_empty());
    }
}
