//! The other nodes' pages this node holds: a list from which any one page
//! can be removed in constant time (atomics and volatile accesses drop
//! single pages; finding one by scanning a list as long as the cache,
//! under the lock every release takes, would make each of them cost as
//! much as the cache is large), swept like a CLOCK for eviction, and the
//! places reserved for pages being fetched, so that listed plus reserved
//! never exceeds the cache limit.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::Mapping;

pub struct CachedPages {
    order: Vec<u32>,
    /// The CLOCK hand: where the next sweep starts in `order`.
    hand: usize,
    /// Places taken by fetches under way (`reserve`), not yet listed.
    reserved: usize,
    /// Per page: its index in `order` plus one, 0 when absent. Lazily backed
    /// (one word per page of the region, touched only for pages cached).
    slots: Mapping,
}

impl CachedPages {
    pub fn new(pages: usize) -> io::Result<CachedPages> {
        Ok(CachedPages {
            order: Vec::new(),
            hand: 0,
            reserved: 0,
            slots: Mapping::anywhere((pages * 8).max(8))?,
        })
    }

    fn slot(&self, page: u32) -> &AtomicU64 {
        &self.slots.as_atomic_u64()[page as usize]
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Listed pages plus places reserved for fetches under way.
    pub fn taken(&self) -> usize {
        self.order.len() + self.reserved
    }

    /// Reserves `n` places if that keeps `taken()` within `limit`.
    pub fn reserve(&mut self, n: usize, limit: usize) -> bool {
        if self.taken() + n > limit {
            return false;
        }
        self.reserved += n;
        true
    }

    /// Gives back `n` reserved places (the fetch listed its pages with
    /// `push`, or failed).
    pub fn unreserve(&mut self, n: usize) {
        self.reserved = self.reserved.saturating_sub(n);
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

    /// Removes and returns up to `n` pages the CLOCK hand finds not
    /// `referenced` (which clears a page's reference as the hand passes
    /// it: a second chance). After two turns of the hand without enough,
    /// referenced pages go too.
    pub fn sweep(&mut self, n: usize, mut referenced: impl FnMut(u32) -> bool) -> Vec<u32> {
        let mut taken = Vec::with_capacity(n);
        let mut passed = 0;
        while taken.len() < n && !self.order.is_empty() {
            if self.hand >= self.order.len() {
                self.hand = 0;
            }
            let page = self.order[self.hand];
            if passed < 2 * self.order.len() && referenced(page) {
                passed += 1;
                self.hand += 1;
                continue;
            }
            // The last page moves into its place, where the hand stays:
            // it is looked at next.
            self.remove(page);
            taken.push(page);
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
                        let taken = list.sweep((page % 5) as usize, |p| p % 3 == 0);
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

    #[test]
    fn reservations_count_against_the_limit() {
        let mut list = CachedPages::new(16).unwrap();
        assert!(list.reserve(3, 4));
        assert!(!list.reserve(2, 4));
        list.push(7);
        list.unreserve(1);
        assert_eq!(list.taken(), 3);
        assert!(list.reserve(1, 4));
        assert!(!list.reserve(1, 4));
    }

    #[test]
    fn the_clock_spares_referenced_pages_once() {
        let mut list = CachedPages::new(16).unwrap();
        for p in 0..8 {
            list.push(p);
        }
        let mut referenced: std::collections::HashSet<u32> = [0, 1, 2].into_iter().collect();
        // Referenced pages lose their mark as the hand passes and are
        // taken only when nothing else is left.
        let first = list.sweep(5, |p| referenced.remove(&p));
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![3, 4, 5, 6, 7]);
        let rest = list.sweep(5, |p| referenced.remove(&p));
        assert_eq!(rest.len(), 3);
        assert_eq!(list.len(), 0);
    }
}
