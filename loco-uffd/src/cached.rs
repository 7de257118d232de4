//! The other nodes' pages this node holds: a list, roughly oldest first,
//! from which any one page can be removed in constant time. Atomics and
//! volatile accesses drop single pages; finding one by scanning a list as
//! long as the cache, under the lock every release takes, would make each
//! of them cost as much as the cache is large.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::Mapping;

pub struct CachedPages {
    order: Vec<u32>,
    /// Per page: its index in `order` plus one, 0 when absent. Lazily backed
    /// (one word per page of the region, touched only for pages cached).
    slots: Mapping,
}

impl CachedPages {
    pub fn new(pages: usize) -> io::Result<CachedPages> {
        Ok(CachedPages {
            order: Vec::new(),
            slots: Mapping::anywhere((pages * 8).max(8))?,
        })
    }

    fn slot(&self, page: u32) -> &AtomicU64 {
        &self.slots.as_atomic_u64()[page as usize]
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn contains(&self, page: u32) -> bool {
        self.slot(page).load(Ordering::Relaxed) != 0
    }

    /// Adds `page` at the young end (no-op if it is already listed).
    pub fn push(&mut self, page: u32) {
        if self.contains(page) {
            return;
        }
        self.order.push(page);
        self.slot(page)
            .store(self.order.len() as u64, Ordering::Relaxed);
    }

    /// Removes `page`; returns whether it was listed. The last page takes
    /// its place, so the order is only roughly by age afterwards.
    pub fn remove(&mut self, page: u32) -> bool {
        let at = self.slot(page).swap(0, Ordering::Relaxed);
        if at == 0 {
            return false;
        }
        let index = at as usize - 1;
        self.order.swap_remove(index);
        if let Some(&moved) = self.order.get(index) {
            self.slot(moved).store(at, Ordering::Relaxed);
        }
        true
    }

    /// Every page, in list order (the list is unchanged).
    pub fn snapshot(&self) -> Vec<u32> {
        self.order.clone()
    }

    /// Removes and returns every page.
    pub fn take_all(&mut self) -> Vec<u32> {
        for &p in &self.order {
            self.slot(p).store(0, Ordering::Relaxed);
        }
        std::mem::take(&mut self.order)
    }

    /// Removes and returns the `n` oldest pages.
    pub fn take_oldest(&mut self, n: usize) -> Vec<u32> {
        let n = n.min(self.order.len());
        let taken: Vec<u32> = self.order.drain(..n).collect();
        for &p in &taken {
            self.slot(p).store(0, Ordering::Relaxed);
        }
        for (i, &p) in self.order.iter().enumerate() {
            self.slot(p).store(i as u64 + 1, Ordering::Relaxed);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::CachedPages;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of pushes, removals and takes leaves exactly the
        /// pages a plain set would hold.
        #[test]
        fn behaves_as_a_set(ops in proptest::collection::vec((0u8..4, 0u32..64), 0..200)) {
            let mut list = CachedPages::new(64).unwrap();
            let mut model = std::collections::BTreeSet::new();
            for (op, page) in ops {
                match op {
                    0 | 1 => { list.push(page); model.insert(page); }
                    2 => prop_assert_eq!(list.remove(page), model.remove(&page)),
                    _ => {
                        let taken = list.take_oldest((page % 5) as usize);
                        for p in taken { prop_assert!(model.remove(&p)); }
                    }
                }
                prop_assert_eq!(list.len(), model.len());
                for p in 0..64 { prop_assert_eq!(list.contains(p), model.contains(&p)); }
            }
            let mut all = list.take_all();
            all.sort_unstable();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(list.len(), 0);
        }
    }
}
