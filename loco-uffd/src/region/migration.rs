//! Home migration as the region applies it (the decisions are in
//! `crate::migrate`): proposals, write streaks, moving pages in and out.

use super::*;

impl Inner {
    /// How many times `page`'s home has moved.
    pub(super) fn moves(&self, page: usize) -> &AtomicU8 {
        &self.moves.as_atomic_u8()[page]
    }

    /// At a gathering barrier: the pages of other homes this node asks to
    /// become home to (migrate.rs): those it found itself the only writer
    /// of, besides their home, at the last `threshold` barriers where it
    /// wrote them (`count_streaks`).
    pub(super) fn proposals(&self) -> Vec<(u32, NodeId)> {
        let candidates = std::mem::take(&mut *self.candidates.lock().unwrap());
        candidates
            .into_iter()
            .filter_map(|page| {
                let home = self.home_if_known(page as usize)?;
                (home != self.rank).then_some((page, home))
            })
            .collect()
    }

    /// After a gathering barrier (every node's notices came with it): the
    /// intervals in which this node wrote a page of another home count up,
    /// and any interval in which a third node wrote it starts the count
    /// again. A page whose count reaches the threshold is a candidate for
    /// the next barrier's proposals.
    pub(super) fn count_streaks(&self, written: &[Vec<u32>]) {
        let streaks = self.write_streaks.as_atomic_u64();
        for (n, pages) in written.iter().enumerate() {
            if n == self.rank {
                continue;
            }
            for &page in pages {
                let p = page as usize;
                if p < self.layout.pages()
                    && streaks[p].load(Ordering::Relaxed) != 0
                    && self.known_home(p).load(Ordering::Acquire) != n as u64 + 1
                {
                    streaks[p].store(0, Ordering::Relaxed);
                }
            }
        }
        let mut mine = written[self.rank].clone();
        mine.sort_unstable();
        mine.dedup();
        let others: Vec<Vec<u32>> = written
            .iter()
            .map(|w| {
                let mut w = w.clone();
                w.sort_unstable();
                w
            })
            .collect();
        let mut candidates = Vec::new();
        for page in mine {
            let p = page as usize;
            if p >= self.layout.pages() || self.layout.static_home(p).is_some() {
                continue;
            }
            let Some(home) = self.home_if_known(p) else {
                continue;
            };
            let moves = self.moves(p).load(Ordering::Relaxed);
            if home == self.rank || moves >= migrate::MAX_MOVES {
                continue;
            }
            let shared = others
                .iter()
                .enumerate()
                .any(|(n, w)| n != self.rank && n != home && w.binary_search(&page).is_ok());
            let streak = if shared {
                0
            } else {
                (streaks[p].load(Ordering::Relaxed) + 1).min(u16::MAX as u64)
            };
            streaks[p].store(streak, Ordering::Relaxed);
            if streak >= migrate::threshold(moves) {
                candidates.push(page);
            }
        }
        *self.candidates.lock().unwrap() = candidates;
    }

    /// After a gathering barrier's acquire: takes the decisions every node
    /// takes from the same contributions, applies them, and (if any page
    /// moved) waits until every node has.
    pub(super) fn migrate(&self, parts: &[Vec<u8>]) -> Result<(), HeapError> {
        if parts.len() != self.layout.nodes {
            return Ok(());
        }
        let mut written = Vec::with_capacity(parts.len());
        let mut proposals = Vec::with_capacity(parts.len());
        for part in parts {
            // A node whose notices did not come whole: nobody knows all the
            // writers, so nothing moves this time (on every node alike).
            let Some((pages, end)) = NoticeLog::pages_in(part) else {
                return Ok(());
            };
            written.push(pages);
            proposals.push(migrate::decode(&part[end..]).unwrap_or_default());
        }
        let moves = migrate::decide(&written, &proposals);
        let leaving = if moves.is_empty() {
            Vec::new()
        } else {
            self.apply_moves(&moves)?
        };
        self.count_streaks(&written);
        if moves.is_empty() {
            return Ok(());
        }
        // Nobody asks a new home for a page before it has it.
        if let Err(e) = self.transport.barrier() {
            self.list_cached(&leaving);
            return Err(HeapError::Transport(e));
        }
        // Now that the new homes have read them, the old homes' copies go
        // too: no node caches a page that moved, so its new home need not
        // notice its own writes to it until another node reads it.
        let _c = self.consistency.lock().unwrap();
        self.invalidate(leaving)
    }

    /// Applies moves decided at a barrier. Every thread of every node that
    /// touches the region is inside that barrier (OpenMP threads are;
    /// serving threads only serve), so pages are neither faulted nor
    /// written here meanwhile; other nodes may already read the old homes.
    ///
    /// Returns the pages that left this node and were present here: cached
    /// copies now (`move_out`), which their new homes read from this node
    /// during the barrier that follows. They are *not* listed in `cached`,
    /// so the evictor cannot drop them before then: the new home's read
    /// would make a serving thread here fault on the dropped page, and the
    /// fault handler would fetch it from its new home, whose serving
    /// thread faults in turn on the page `move_in` is still reading (and
    /// an evicted copy's bytes would go to a new home that does not have
    /// the page yet). The caller drops them after that barrier.
    pub(super) fn apply_moves(&self, moves: &[Move]) -> Result<Vec<u32>, HeapError> {
        let _c = self.consistency.lock().unwrap();
        let me = self.rank;
        let incoming: Vec<Move> = moves.iter().copied().filter(|m| m.to == me).collect();
        // Every cached copy of a moving page goes (with anything unsent, to
        // the old home): here it may miss the old home's own writes, and
        // elsewhere its new home would have to notice its writes to it.
        // The old home's own copy goes once the new home has read it.
        let cached_here: Vec<u32> = {
            let mut cached = self.cached.lock().unwrap();
            moves
                .iter()
                .filter(|m| m.from != me)
                .map(|m| m.page)
                .filter(|&p| cached.remove(p))
                .collect()
        };
        self.invalidate(cached_here)?;
        let mut k = 0;
        while k < incoming.len() {
            let first = incoming[k];
            let run = incoming[k..]
                .iter()
                .enumerate()
                .take_while(|(i, m)| m.page == first.page + *i as u32 && m.from == first.from)
                .count();
            self.move_in(first.page as usize, run, first.from)?;
            k += run;
        }
        let mut leaving = Vec::new();
        for m in moves.iter().filter(|m| m.from == me) {
            match self.move_out(m.page as usize, m.to) {
                Ok(true) => leaving.push(m.page),
                Ok(false) => {}
                Err(e) => {
                    self.list_cached(&leaving);
                    return Err(e);
                }
            }
        }
        if !leaving.is_empty() {
            self.home_written
                .lock()
                .unwrap()
                .retain(|p| !moves.iter().any(|m| m.page == *p && m.from == me));
        }
        for m in moves {
            let p = m.page as usize;
            if m.from != me && m.to != me {
                let known = self.known_home(p);
                loop {
                    match known.load(Ordering::Acquire) {
                        CLAIMING => std::thread::yield_now(),
                        0 => break,
                        _ => {
                            known.store(m.to as u64 + 1, Ordering::Release);
                            break;
                        }
                    }
                }
            }
            // A page going back to the node it last left is written by
            // both (each sees itself as the only writer besides the home:
            // the home cannot tell its own writes from those it serves):
            // it stays there from now on instead of bouncing until
            // MAX_MOVES (data each node updates in its own part moves once
            // and never comes back).
            let left = &self.left.as_atomic_u8()[p];
            let back = left.load(Ordering::Relaxed) == m.to as u8 + 1;
            left.store(m.from as u8 + 1, Ordering::Relaxed);
            let count = self.moves(p);
            count.store(
                if back {
                    migrate::MAX_MOVES
                } else {
                    count.load(Ordering::Relaxed).saturating_add(1)
                },
                Ordering::Relaxed,
            );
            self.write_streaks.as_atomic_u64()[p].store(0, Ordering::Relaxed);
            if me == 0 {
                // Nodes that have not met the page yet ask the directory.
                let dir = self
                    .directory
                    .expect("first-touch placement has a directory");
                if let Err(e) = self.transport.compare_swap(
                    0,
                    dir,
                    p as u64 * 8,
                    m.from as u64 + 1,
                    m.to as u64 + 1,
                ) {
                    self.list_cached(&leaving);
                    return Err(HeapError::Transport(e));
                }
            }
        }
        Ok(leaving)
    }

    /// Lists pages that left this node (`apply_moves`) as cached after
    /// all, where the barrier that lets their new homes read them failed:
    /// so that the next acquire or eviction drops them.
    fn list_cached(&self, pages: &[u32]) {
        let mut cached = self.cached.lock().unwrap();
        for &p in pages {
            cached.push(p);
        }
    }

    /// Becomes home to pages `first .. first+count` (not cached here),
    /// reading them from their old home `from`. No other node keeps a copy
    /// (`apply_moves`), so they are not exported: this node's writes need
    /// no notice until another node reads them.
    pub(super) fn move_in(
        &self,
        first: usize,
        count: usize,
        from: NodeId,
    ) -> Result<(), HeapError> {
        let pages = first..first + count;
        for p in pages.clone() {
            loop {
                match self.state(p).load(Ordering::Acquire) {
                    MISSING => {
                        if self
                            .state(p)
                            .compare_exchange(
                                MISSING,
                                FETCHING,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                        {
                            break;
                        }
                    }
                    FETCHING => std::thread::yield_now(),
                    INVALIDATING => self.wait_while_invalidating(p),
                    other => {
                        return Err(HeapError::Invalid(format!(
                            "home migration: page {p} is in state {other} here, not missing"
                        )))
                    }
                }
            }
        }
        if !self.hold_move_in.is_zero() {
            std::thread::sleep(self.hold_move_in);
        }
        let size = self.page_size();
        let mut bytes = vec![0u8; count * size];
        if let Err(e) =
            self.transport
                .read(from, self.data, self.layout.page_offset(first), &mut bytes)
        {
            for p in pages {
                self.state(p).store(MISSING, Ordering::Release);
            }
            return Err(HeapError::Transport(e));
        }
        let mut scratch = vec![0u64; self.words_per_page];
        for p in pages.clone() {
            self.known_home(p)
                .store(self.rank as u64 + 1, Ordering::Release);
            self.bitmap.take_page(p, &mut scratch);
            self.written(p).store(0, Ordering::Relaxed);
            self.home_streaks.as_atomic_u64()[p].store(0, Ordering::Relaxed);
            self.exported(p).store(0, Ordering::Release);
        }
        // SAFETY: `bytes` holds count pages; the destination pages are
        // pages of the region, registered with this userfaultfd, and
        // claimed (FETCHING) by this thread.
        unsafe {
            sys::uffd_install(
                &self.uffd,
                bytes.as_ptr(),
                self.page_ptr(first),
                bytes.len(),
                size,
                false,
                &|p, n| self.discard_pages(p, n),
            )
        }
        .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_COPY: {e}")))?;
        for p in pages {
            self.bitmap.set_home(p, true);
            self.state(p).store(HOME, Ordering::Release);
        }
        let _ = self.uffd.wake(self.page_ptr(first).cast(), count * size);
        self.stats
            .pages_migrated_in
            .fetch_add(count as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Gives up home page `page` to node `to`: this node's copy becomes a
    /// cached copy of it (its twin the page as it is), which the new home
    /// reads and which is then dropped. True if it was present (the caller
    /// lists it as cached).
    pub(super) fn move_out(&self, page: usize, to: NodeId) -> Result<bool, HeapError> {
        let _g = self.lock_page(page);
        let present = self.state(page).load(Ordering::Acquire) == HOME;
        if present {
            // This node's writes to it are marked from now on.
            self.bitmap.set_home(page, false);
            let size = self.page_size();
            // SAFETY: the page is present (HOME) and nothing writes it
            // during a barrier; its twin is a page of the twin mapping.
            unsafe { sys::copy_bytes(self.page_ptr(page), self.twin_ptr(page), size) };
            let mut scratch = vec![0u64; self.words_per_page];
            // Marks from its home days were never sent and must not be.
            self.bitmap.take_page(page, &mut scratch);
            self.written(page).store(0, Ordering::Relaxed);
            self.exported(page).store(0, Ordering::Relaxed);
            self.protected(page).store(0, Ordering::Relaxed);
            self.home_streaks.as_atomic_u64()[page].store(0, Ordering::Relaxed);
            let ptr = self.page_ptr(page).cast();
            if self.track {
                self.uffd.write_protect(ptr, size)
            } else {
                self.uffd.remove_write_protection(ptr, size, false)
            }
            .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
        }
        self.known_home(page)
            .store(to as u64 + 1, Ordering::Release);
        if present {
            self.track_chunk(page);
            self.state(page).store(CACHED, Ordering::Release);
            self.stats
                .pages_migrated_out
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(present)
    }
}
