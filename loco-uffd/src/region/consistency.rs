//! Release and acquire: gathering this node's writes into batches per
//! home, write-back, invalidation, eviction.

use super::*;

/// Bytes a release collects before it sends them (`release_pages_locked`).
const RELEASE_PIECE: usize = 4 << 20;

/// Pages (in bytes) past which a release sends pieces while it collects
/// the next ones (`release_pipelined`): a thread of its own is worth it.
const PIPELINED_RELEASE: usize = 2 * RELEASE_PIECE;

/// Most pages one eviction batch writes back and drops.
const EVICTION_BATCH: usize = 256;

/// Unchanged words a masked run takes in rather than end (`collect_masked`):
/// a new run costs a 12-byte header and the work of one more run at both
/// ends; a word taken in costs 9 bytes.
const MASKED_GAP_WORDS: usize = 2;

impl Inner {
    /// Gathers the modified bytes of `page` into `batch` and refreshes its
    /// twin. `diff` compares against the twin as well as reading the bitmap.
    /// `data` is where the page's bytes are: the page itself, or where an
    /// invalidation moved it.
    pub(super) fn collect(
        &self,
        page: usize,
        data: *const u8,
        diff: bool,
        batch: &mut Batch,
    ) -> Result<(), HeapError> {
        let size = self.page_size();
        // Before taking the marks: an error here must leave them in place.
        let home = self.home_of(page)?;
        let mut bits = vec![0u64; self.words_per_page];
        self.bitmap.take_page(page, &mut bits);
        let twin = self.twin_ptr(page);
        // SAFETY: the page is present at `data` (CACHED or INVALIDATING:
        // only this thread, holding `consistency`, drops pages) and so is
        // its twin.
        // Other threads of this node may be writing the page right now; what
        // this reads is a snapshot, and any byte written after it is marked
        // (or differs from the twin) again for the next release.
        let (page_bytes, twin_bytes) = unsafe {
            (
                std::slice::from_raw_parts(data, size),
                std::slice::from_raw_parts(twin as *const u8, size),
            )
        };
        let base = self.layout.page_offset(page);
        let runs_before = batch.run_count();
        if batch.masked() {
            // A page neither flagged nor marked equals its twin.
            if diff || bits.iter().any(|&w| w != 0) {
                self.collect_masked(page_bytes, twin_bytes, home, base, batch);
            }
        } else {
            self.collect_exact(page_bytes, twin_bytes, bits, diff, home, base, batch);
        }
        // Bytes for its home: it is not untouched there any more (before
        // they are sent, and so before the page can be dropped and fetched).
        if batch.run_count() > runs_before {
            self.forget_fresh(page);
        }
        Ok(())
    }

    /// `collect` with byte-exact runs: the bytes this node wrote (marked,
    /// or differing from the twin when `diff`) that differ from the twin,
    /// with the short gaps between them (`bridge_written_gaps`).
    #[allow(clippy::too_many_arguments)]
    fn collect_exact(
        &self,
        page_bytes: &[u8],
        twin_bytes: &[u8],
        mut bits: Vec<u64>,
        diff: bool,
        home: NodeId,
        base: u64,
        batch: &mut Batch,
    ) {
        if diff {
            // One comparison with the twin: the differing bytes are both
            // what was written besides the marks and what is kept.
            let mut differing = vec![0u64; self.words_per_page];
            mark_differences(page_bytes, twin_bytes, &mut differing);
            self.stats.pages_diffed.fetch_add(1, Ordering::Relaxed);
            let written: Vec<u64> = bits.iter().zip(&differing).map(|(m, d)| m | d).collect();
            bridge_written_gaps(&mut differing, &written);
            bits = differing;
        } else {
            let written = bits.clone();
            keep_differences(page_bytes, twin_bytes, &mut bits);
            bridge_written_gaps(&mut bits, &written);
        }
        if bits.iter().all(|&w| w == 0) {
            return;
        }
        for_each_run(&bits, |start, len| {
            // SAFETY: start+len <= the page size: inside `page_bytes`.
            unsafe {
                batch.push_from(
                    home,
                    base + start as u64,
                    page_bytes.as_ptr().add(start),
                    len,
                )
            };
        });
    }

    /// `release_pages_locked` for a large release: this thread collects
    /// the pages in pieces while a second one sends the pieces collected
    /// before, so the home applies one piece while the next is gathered
    /// (one after the other, a 64 MiB release took twice as long). A piece
    /// that is not sent is marked again, as in `send_batch`.
    fn release_pipelined(&self, work: Vec<(usize, bool)>) -> Result<(), HeapError> {
        std::thread::scope(|s| {
            let (pieces, received) = std::sync::mpsc::sync_channel::<Batch>(1);
            let sender = s.spawn(move || -> Result<(), HeapError> {
                let mut failed = None;
                for batch in received {
                    if failed.is_some() {
                        self.mark_again(&batch);
                    } else if let Err(e) = self.send_counted(&batch) {
                        // send_batch marked it again.
                        failed = Some(e);
                    }
                }
                failed.map_or(Ok(()), Err)
            });
            let collected = self.collect_in_pieces(work, |piece| {
                if let Err(unsent) = pieces.send(piece) {
                    // The sender is gone (it panicked): keep the bytes.
                    self.mark_again(&unsent.0);
                }
                Ok(())
            });
            drop(pieces);
            let sent = sender.join().unwrap_or_else(|_| {
                Err(HeapError::Invalid("the release's sender panicked".into()))
            });
            collected.and(sent)
        })
    }

    /// `collect` where the transport takes masked runs: every byte that
    /// differs from the twin is sent (only this node's writes can make its
    /// copy differ), in runs of whole words that take in short stretches
    /// of unchanged words, each with the mask of its changed bytes (the
    /// home writes only those: another node may be writing the others).
    /// Marks are not needed to find them, nor to join runs safely.
    fn collect_masked(
        &self,
        page_bytes: &[u8],
        twin_bytes: &[u8],
        home: NodeId,
        base: u64,
        batch: &mut Batch,
    ) {
        self.stats.pages_diffed.fetch_add(1, Ordering::Relaxed);
        // Most pages an eviction drops were only read: one comparison.
        if page_bytes == twin_bytes {
            return;
        }
        batch.push_changed_page(home, base, page_bytes, twin_bytes, MASKED_GAP_WORDS);
    }

    /// Sends a batch. Only once the homes have the bytes do the twins take
    /// them (the twin is what the home has); if the send fails, the bytes
    /// are marked again, so nothing collected is lost: the next release
    /// (or a restored page's diff against its unchanged twin) sends them.
    /// Caller holds `consistency` (no page of the batch is dropped meanwhile).
    pub(super) fn send_batch(&self, batch: &Batch) -> Result<(u64, u64), HeapError> {
        self.send_batch_then(batch, true)
    }

    /// `send_batch`; `keep_twins` false when the pages are dropped right
    /// after (an invalidation): their twins need not take the bytes.
    pub(super) fn send_batch_then(
        &self,
        batch: &Batch,
        keep_twins: bool,
    ) -> Result<(u64, u64), HeapError> {
        match batch.send(&*self.transport, self.data) {
            Ok(sent) => {
                // The bytes are at their homes: other nodes may learn of them.
                let mut pages: Vec<u32> = batch
                    .runs()
                    .map(|(offset, _)| self.layout.page_of_offset(offset) as u32)
                    .collect();
                pages.dedup();
                self.notices.append(pages);
                for (offset, bytes) in batch.runs().filter(|_| keep_twins) {
                    // SAFETY: offset..offset+len lies in one page of the
                    // region, so in the twin mapping of the same size, and
                    // that page's twin is only written under `consistency`.
                    unsafe {
                        sys::copy_bytes(
                            bytes.as_ptr(),
                            self.twins.ptr().add(offset as usize),
                            bytes.len(),
                        )
                    };
                }
                Ok(sent)
            }
            Err(e) => {
                self.mark_again(batch);
                Err(e)
            }
        }
    }

    /// Marks a batch's bytes dirty again (it was not sent), so the next
    /// release sends them.
    pub(super) fn mark_again(&self, batch: &Batch) {
        for (offset, bytes) in batch.runs() {
            self.bitmap.mark(offset, bytes.len() as u64);
        }
    }

    /// Waits for the fetches under way to finish (their pages CACHED and
    /// listed). A fetched page is present a moment before it is CACHED,
    /// and a thread that touches it then (without a fault: it is there)
    /// writes and marks a page a release would skip as not cached; its
    /// release must not run until the page is listed. Fetches that start
    /// after this cannot hold a write the caller must release.
    pub(super) fn settle_fetches(&self) {
        drop(self.fetch_gate.write().unwrap());
    }

    pub(super) fn release(&self) -> Result<(), HeapError> {
        let _c = self.consistency.lock().unwrap();
        self.settle_fetches();
        let pages: Vec<u32> = self.cached.lock().unwrap().snapshot();
        self.release_pages_locked(pages)?;
        self.log_home_writes()?;
        self.stats.releases.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends this node's writes to `page` home and drops its cached copy
    /// (waiting for a fetch under way to finish first: it may have read the
    /// home before the change the caller must see), so the next access
    /// fetches the home's current bytes.
    pub(super) fn refresh_page(&self, page: usize) -> Result<(), HeapError> {
        loop {
            match self.state(page).load(Ordering::Acquire) {
                CACHED => return self.drop_cached_page(page),
                FETCHING => std::thread::yield_now(),
                INVALIDATING => self.wait_while_invalidating(page),
                _ => return Ok(()),
            }
        }
    }

    /// Sends this node's writes to `pages` (cached copies) home; a release
    /// of all of them is `release`.
    pub(super) fn release_pages(&self, pages: Vec<u32>) -> Result<(), HeapError> {
        let _c = self.consistency.lock().unwrap();
        self.settle_fetches();
        self.release_pages_locked(pages)
    }

    /// `release_pages`, for a caller holding `consistency`.
    pub(super) fn release_pages_locked(&self, pages: Vec<u32>) -> Result<(), HeapError> {
        // Pages written by unmarked code: clear the flag, then protect, then
        // compare, so that a write after the protection faults and flags the
        // page again. No page can be dropped meanwhile: that needs `consistency`.
        // With WP_ASYNC the scan flags the written pages and protects them.
        self.scan_writes()?;
        let mut work: Vec<(usize, bool)> = Vec::new();
        for page in pages {
            let page = page as usize;
            // Pages nobody wrote are skipped without a lock or a bitmap scan.
            if !self.bitmap.page_has_marks(page) && self.written(page).load(Ordering::Acquire) == 0
            {
                continue;
            }
            if self.state(page).load(Ordering::Acquire) != CACHED {
                continue;
            }
            let diff = self.track && self.written(page).swap(0, Ordering::AcqRel) != 0;
            work.push((page, diff));
        }
        let mut flagged: Vec<usize> = if self.async_wp {
            Vec::new()
        } else {
            work.iter().filter(|w| w.1).map(|w| w.0).collect()
        };
        flagged.sort_unstable();
        for (first, count) in contiguous(&flagged) {
            self.uffd
                .write_protect(self.page_ptr(first).cast(), count * self.page_size())
                .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
        }
        if work.len() * self.page_size() > PIPELINED_RELEASE {
            return self.release_pipelined(work);
        }
        self.collect_in_pieces(work, |piece| self.send_counted(&piece))
    }

    /// Collects the `work` pages (page, compare with the twin) into
    /// batches of about `RELEASE_PIECE` bytes, each handed to `piece` as it
    /// fills, the last one too. A large release goes in pieces: a buffer
    /// that stays small stays in the cache, where one the size of
    /// everything written would be allocated, faulted in and copied as it
    /// grows. If a page cannot be collected, what the unfinished batch took
    /// is marked again and the error returned.
    fn collect_in_pieces(
        &self,
        work: Vec<(usize, bool)>,
        mut piece: impl FnMut(Batch) -> Result<(), HeapError>,
    ) -> Result<(), HeapError> {
        let new_batch = || Batch::new(self.layout.nodes, self.masked_write_back);
        let mut batch = new_batch();
        for (page, diff) in work {
            {
                let _g = self.lock_page(page);
                if let Err(e) = self.collect(page, self.page_ptr(page), diff, &mut batch) {
                    self.mark_again(&batch);
                    return Err(e);
                }
            }
            if batch.bytes() >= RELEASE_PIECE {
                piece(std::mem::replace(&mut batch, new_batch()))?;
            }
        }
        piece(batch)
    }

    /// `send_batch`, counting what went into the release statistics.
    fn send_counted(&self, batch: &Batch) -> Result<(), HeapError> {
        let (bytes, runs) = self.send_batch(batch)?;
        self.stats
            .bytes_released
            .fetch_add(bytes, Ordering::Relaxed);
        self.stats.runs_released.fetch_add(runs, Ordering::Relaxed);
        Ok(())
    }

    pub(super) fn acquire(&self) -> Result<(), HeapError> {
        self.acquire_learning(|| {
            if self.selective {
                self.notices.learn(&*self.transport)
            } else {
                Ok(Learned::Everything)
            }
        })
    }

    /// An acquire that learns what changed from `learn`.
    pub(super) fn acquire_learning(
        &self,
        learn: impl FnOnce() -> Result<Learned, HeapError>,
    ) -> Result<(), HeapError> {
        let outcome = self.acquire_once(learn);
        if let Err(FailedInvalidation { pages, error }) = outcome {
            // The notices are spent: remember what they named.
            self.stale.lock().unwrap().extend(pages);
            return Err(error);
        }
        Ok(())
    }

    pub(super) fn acquire_once(
        &self,
        learn: impl FnOnce() -> Result<Learned, HeapError>,
    ) -> Result<(), FailedInvalidation> {
        let _c = self.consistency.lock().unwrap();
        // What other nodes changed, learned after the synchronisation that
        // made their releases happen before this acquire.
        let learned = learn().map_err(|error| FailedInvalidation {
            pages: Vec::new(),
            error,
        })?;
        // Fetches under way finish (their pages join the list) first: one
        // may have read a page before the release this acquire must see.
        let pages: Vec<u32> = {
            let _gate = self.fetch_gate.write().unwrap();
            // Pages found untouched before this acquire may have been
            // written by a release it must see.
            self.new_fresh_epoch();
            let mut cached = self.cached.lock().unwrap();
            // Pages an earlier acquire had to keep (its write-back failed)
            // are stale all the same.
            let mut noticed = std::mem::take(&mut *self.stale.lock().unwrap());
            match learned {
                Learned::Everything => cached.take_all(),
                Learned::Pages(more) => {
                    noticed.extend(more);
                    noticed
                        .into_iter()
                        .filter(|&page| cached.remove(page))
                        .collect()
                }
            }
        };
        if let Err(error) = self.invalidate(pages.clone()) {
            return Err(FailedInvalidation { pages, error });
        }
        self.stats.acquires.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends the pages' modifications home and drops them. Caller holds `consistency`.
    pub(super) fn invalidate(&self, pages: Vec<u32>) -> Result<(), HeapError> {
        let detached = self.detach(pages)?;
        self.finish_detached(detached)
    }

    /// The first half of `invalidate`: takes the pages out of the
    /// program's reach and gathers their modifications into a batch (on
    /// error they are put back). Caller holds `consistency` until
    /// `finish_detached` is done with them.
    pub(super) fn detach(&self, pages: Vec<u32>) -> Result<Detached, HeapError> {
        let mut victims: Vec<usize> = Vec::with_capacity(pages.len());
        for page in pages {
            let page = page as usize;
            let _g = self.lock_page(page);
            if self.state(page).load(Ordering::Acquire) == CACHED {
                self.state(page).store(INVALIDATING, Ordering::Release);
                victims.push(page);
            }
        }
        victims.sort_unstable();
        let size = self.page_size();
        // From here on no write can land in these pages unseen: writers fault
        // and wait (resolve_write_protect) until the page is gone. With
        // WP_ASYNC a write to a protected page would go through, so the
        // pages leave the region instead (UFFDIO_MOVE): any touch faults
        // as missing and waits (resolve_missing) while they are read where
        // they went.
        let moved = self.scratch.as_ref().map(|s| s.ptr());
        // A shared file with WP_ASYNC: the pages are unmapped from the
        // region (a touch faults as minor and waits) and read from the
        // file, through the second view (mapped whole: pages of other
        // homes may lie outside the part served), where they stay until
        // `finish_detached` punches them out.
        let from_file = match (&self.home_view, self.async_wp) {
            (Some(view), true) => Some(view.ptr()),
            _ => None,
        };
        for (first, count) in contiguous(&victims) {
            if from_file.is_some() {
                self.map
                    .discard(first * size, count * size)
                    .map_err(|e| HeapError::Userfaultfd(format!("madvise(MADV_DONTNEED): {e}")))
                    .inspect_err(|_| self.restore(&victims))?;
                continue;
            }
            match moved {
                // SAFETY: the scratch mapping has the region's size and
                // protection and is registered with `uffd`; its pages at
                // these offsets are empty (every use ends by discarding
                // them); the victims are INVALIDATING, which nothing but
                // this thread (holding `consistency`) changes.
                Some(scratch) => unsafe {
                    let offset = first * size;
                    sys::uffd_move(
                        &self.uffd,
                        self.page_ptr(first),
                        scratch.add(offset),
                        count * size,
                    )
                }
                .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_MOVE: {e}"))),
                None => self
                    .uffd
                    .write_protect(self.page_ptr(first).cast(), count * size)
                    .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}"))),
            }
            .inspect_err(|_| self.restore(&victims))?;
        }
        let data_of = |page: usize| match (moved, from_file) {
            // SAFETY: page < pages, inside the scratch mapping.
            (Some(scratch), _) => unsafe { scratch.add(page * size) as *const u8 },
            // SAFETY: page < pages, inside the view (the file's size).
            (None, Some(view)) => unsafe { view.add(page * size) as *const u8 },
            (None, None) => self.page_ptr(page) as *const u8,
        };
        // With WP_ASYNC the moved pages keep their protection state: those
        // written since the last scan are unprotected where they went.
        let mut written_since = Vec::new();
        if let (Some(scanner), Some(scratch)) = (&self.scanner, moved) {
            for (first, count) in contiguous(&victims) {
                // SAFETY: first < pages, inside the scratch mapping.
                let at = unsafe { scratch.add(first * size) };
                if let Err(e) = scanner.take_written(at, count * size, &mut written_since) {
                    self.restore(&victims);
                    return Err(HeapError::Userfaultfd(format!("PAGEMAP_SCAN: {e}")));
                }
            }
        }
        let scratch_base = moved.map_or(0, |s| s as u64);
        let written_since: Vec<usize> = written_since
            .into_iter()
            .flat_map(|(a, b)| {
                ((a - scratch_base) / size as u64) as usize
                    ..((b - scratch_base) / size as u64) as usize
            })
            .collect();
        let mut batch = Batch::new(self.layout.nodes, self.masked_write_back);
        let collected = victims
            .iter()
            // In tracked mode a page nobody wrote since it was last protected
            // has no write flag (a write would have faulted and set it, or
            // unprotected it for the scan above to find): its twin is its
            // copy, there is nothing to compare. Marks are still taken.
            .try_for_each(|&page| {
                // Unmapped from a file, a page keeps no trace of writes
                // since the last scan: it is compared in full.
                let diff = !self.track
                    || from_file.is_some()
                    || self.written(page).load(Ordering::Acquire) != 0
                    || written_since.binary_search(&page).is_ok();
                self.collect(page, data_of(page), diff, &mut batch)
            });
        if let Err(e) = collected {
            // Keep the pages (and their unsent bytes) rather than lose data.
            self.restore(&victims);
            return Err(e);
        }
        Ok(Detached { victims, batch })
    }

    /// The second half of `invalidate`: sends the detached pages'
    /// modifications home, then drops them (on error they are put back,
    /// with their unsent bytes).
    pub(super) fn finish_detached(&self, detached: Detached) -> Result<(), HeapError> {
        let Detached { victims, batch } = detached;
        let size = self.page_size();
        let (bytes, runs) = match self.send_batch_then(&batch, false) {
            Ok(sent) => sent,
            Err(e) => {
                self.restore(&victims);
                return Err(e);
            }
        };
        for (first, count) in contiguous(&victims) {
            let offset = first * size;
            let dropped = match &self.scratch {
                Some(scratch) => scratch.discard(offset, count * size),
                None => self.discard_pages(self.page_ptr(first), count * size),
            };
            // The twins' memory stays for the next fetch to reuse (it
            // writes them in full) unless the kernel needs it: a fetch
            // into freed twins took a page fault and a zeroing per page.
            dropped
                .and_then(|()| self.twins.release_lazily(offset, count * size))
                .map_err(|e| HeapError::Userfaultfd(format!("madvise(MADV_DONTNEED): {e}")))?;
        }
        for &page in &victims {
            self.written(page).store(0, Ordering::Relaxed);
            self.state(page).store(MISSING, Ordering::Release);
        }
        self.notify_invalidated();
        self.stats
            .bytes_released
            .fetch_add(bytes, Ordering::Relaxed);
        self.stats.runs_released.fetch_add(runs, Ordering::Relaxed);
        self.stats
            .pages_invalidated
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Drops one cached page (after sending its modifications home).
    pub(super) fn drop_cached_page(&self, page: usize) -> Result<(), HeapError> {
        let _c = self.consistency.lock().unwrap();
        let present = { self.cached.lock().unwrap().remove(page as u32) };
        if present {
            self.invalidate(vec![page as u32])?;
        }
        Ok(())
    }

    /// Puts pages whose invalidation failed back in the cache, writable and flagged.
    pub(super) fn restore(&self, pages: &[usize]) {
        let size = self.page_size();
        for &page in pages {
            self.written(page).store(1, Ordering::Release);
            if let Some(scratch) = &self.scratch {
                // Back from where `invalidate` moved it (a page it never
                // moved is a hole there and stays where it is).
                // SAFETY: the region's page is empty if the page was moved
                // (or the move skips it: the source is a hole); both ranges
                // are registered with `uffd`; the page is INVALIDATING.
                if let Err(e) = unsafe {
                    sys::uffd_move(
                        &self.uffd,
                        scratch.ptr().add(page * size),
                        self.page_ptr(page),
                        size,
                    )
                } {
                    self.fatal(&format!(
                        "cannot put back a page whose invalidation failed: {e}"
                    ));
                }
            }
            let _ = self
                .uffd
                .remove_write_protection(self.page_ptr(page).cast(), size, true);
            self.state(page).store(CACHED, Ordering::Release);
            self.cached.lock().unwrap().push(page as u32);
        }
        self.notify_invalidated();
    }

    /// The most places (listed and reserved) the cache may take before the
    /// evictor starts, and what it evicts down to: it works a little ahead
    /// of the limit, so a fault rarely waits for it, while a cache as
    /// large as the working set holds nearly all of it. The low mark
    /// leaves room for two of the largest read-ahead windows: a scan's
    /// next window goes in at once while the evictor makes room for the
    /// one after (with room for one, each window waited for a whole
    /// eviction round).
    pub(super) fn eviction_marks(&self) -> (usize, usize) {
        let limit = self.cache_limit;
        let batch = (limit / 32).max(MAX_READ_AHEAD.min(limit / 4)).max(1);
        (
            limit - (batch / 2).max(1),
            limit - (2 * batch).min(limit / 2),
        )
    }

    /// Wakes the evictor.
    pub(super) fn start_eviction(&self) {
        let (flag, cv) = &self.evict;
        *flag.lock().unwrap() = true;
        cv.notify_one();
    }

    /// Reserves room in the cache for `n` pages about to be fetched,
    /// waiting for the evictor while there is none. The caller holds no
    /// lock and no `fetch_gate` (an acquire waits for those, and the
    /// evictor for the acquire's `consistency`).
    pub(super) fn reserve_room(&self, n: usize) {
        // More than the cache holds would wait for ever.
        debug_assert!(
            n <= self.cache_limit,
            "{n} pages for a cache of {}",
            self.cache_limit
        );
        let (high, _) = self.eviction_marks();
        let mut cached = self.cached.lock().unwrap();
        while !cached.reserve(n, self.cache_limit) {
            if self.stopping.load(Ordering::Acquire) {
                // No evictor any more: over the limit rather than stuck.
                cached.reserve(n, usize::MAX);
                break;
            }
            self.start_eviction();
            cached = self
                .room
                .wait_timeout(cached, Duration::from_millis(10))
                .unwrap()
                .0;
        }
        if cached.taken() > high {
            self.start_eviction();
        }
    }

    pub(super) fn evict_loop(self: Arc<Self>) {
        loop {
            {
                let (flag, cv) = &self.evict;
                let mut pending = flag.lock().unwrap();
                while !*pending && !self.stopping.load(Ordering::Acquire) {
                    pending = cv.wait(pending).unwrap();
                }
                *pending = false;
            }
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            self.evict_round();
        }
    }

    /// Evicts down to the low mark, in batches, each making room for the
    /// faults waiting for it as soon as it is done. While one batch goes
    /// home (a second thread sends it and drops its pages), this thread
    /// detaches the next: one after the other, a fill that evicts written
    /// pages waited for a whole round trip and a home's write per batch.
    /// Holds `consistency` for the round, so no release returns while an
    /// evicted page's bytes are still on their way.
    fn evict_round(&self) {
        let (_, low) = self.eviction_marks();
        let _c = self.consistency.lock().unwrap();
        // What is over the mark now: pages that come in meanwhile wait for
        // the next round, and a release waiting for `consistency` gets it
        // between rounds even while a fill goes on.
        let mut budget = self.cached.lock().unwrap().taken().saturating_sub(low);
        let failed = |e: HeapError| -> ! {
            // The pages are back in the cache with their unsent bytes
            // (detach and finish_detached restore them), but a home that
            // cannot take writes means the run cannot go on correctly: end
            // it, naming the reason, rather than carry on without the data.
            self.fatal(&format!("writing back evicted pages failed: {e}"))
        };
        std::thread::scope(|s| {
            let (detached, received) = std::sync::mpsc::sync_channel::<Detached>(1);
            s.spawn(move || {
                for d in received {
                    if let Err(e) = self.finish_detached(d) {
                        failed(e);
                    }
                    drop(self.cached.lock().unwrap());
                    self.room.notify_all();
                }
            });
            loop {
                let victims: Vec<u32> = {
                    let mut cached = self.cached.lock().unwrap();
                    let excess = cached.taken().saturating_sub(low).min(budget);
                    cached.sweep(excess.min(EVICTION_BATCH), |p| {
                        self.referenced.as_atomic_u8()[p as usize].swap(0, Ordering::Relaxed) != 0
                    })
                };
                if victims.is_empty() {
                    break;
                }
                budget = budget.saturating_sub(victims.len());
                let n = victims.len() as u64;
                let at = self.stats.evictions.fetch_add(n, Ordering::Relaxed) + n;
                for &p in &victims {
                    self.evicted_at.as_atomic_u64()[p as usize].store(at + 1, Ordering::Relaxed);
                }
                match self.detach(victims) {
                    Ok(d) => {
                        if detached.send(d).is_err() {
                            break;
                        }
                    }
                    Err(e) => failed(e),
                }
            }
        });
    }
}
