//! The fault handlers: missing pages fetched from their home (with
//! read-ahead) or mapped as zeros, write-protect faults.

use super::*;

/// How many pages fetched since the page before a faulting one still make
/// the fault part of a scan (`read_ahead`).
const RECENT_FETCHES: u64 = 4 * MAX_READ_AHEAD as u64;

impl Inner {
    pub(super) fn fault_loop(self: Arc<Self>) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.uffd);
        let waiter = sys::ExclusiveWait::new(fd, self.wakeup.fd())
            .unwrap_or_else(|e| self.fatal(&format!("cannot wait for page faults (epoll): {e}")));
        // After a fault, look for the next one for a short while before
        // sleeping: faults come in runs (a loop walking remote pages), and a
        // handler that is awake saves the wake-up that dominates their cost.
        let linger = Duration::from_micros(self.linger_us);
        let mut last_event = std::time::Instant::now() - linger;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            if last_event.elapsed() >= linger {
                match waiter.wait() {
                    Ok((_, true)) => return,
                    Ok((false, false)) => continue,
                    Ok((true, false)) => {}
                    Err(e) => self.fatal(&format!("waiting for page faults failed: {e}")),
                }
            }
            match self.uffd.read_event() {
                Ok(Some(Event::Pagefault { kind, addr, .. })) => {
                    let Some(offset) = (addr as u64)
                        .checked_sub(self.layout.base)
                        .filter(|&o| o < self.layout.size)
                    else {
                        // Only the invalidation scratch is registered
                        // besides the region, and nothing touches it empty.
                        self.fatal(&format!(
                            "page fault at {addr:p}, outside the shared region"
                        ));
                    };
                    let page = self.layout.page_of_offset(offset);
                    let outcome = match kind {
                        // Minor: the page is in the region's file but not
                        // mapped here (HomeMemory::SharedFile). A home page
                        // is mapped from the file; another home's page is
                        // fetched like a missing one (the install drops
                        // the stale file page first).
                        FaultKind::Missing | FaultKind::Minor => self.resolve_missing(page),
                        FaultKind::WriteProtected => self.resolve_write_protect(page),
                    };
                    if let Err(e) = outcome {
                        self.fatal(&format!("cannot resolve the page fault at {addr:p}: {e}"));
                    }
                    last_event = std::time::Instant::now();
                }
                // Nothing yet (while lingering), another handler took the
                // event, or an event we did not ask for.
                Ok(_) => std::hint::spin_loop(),
                Err(e) => self.fatal(&format!("reading userfaultfd failed: {e}")),
            }
        }
    }

    pub(super) fn resolve_missing(&self, page: usize) -> Result<(), HeapError> {
        loop {
            match self.state(page).load(Ordering::Acquire) {
                MISSING => {
                    // SeqCst: see `export_found`.
                    if self
                        .state(page)
                        .compare_exchange(MISSING, FETCHING, Ordering::SeqCst, Ordering::Acquire)
                        .is_ok()
                    {
                        return timed(&self.stats.fault_ns, || self.fetch_and_install(page));
                    }
                }
                // Installing the page wakes every thread waiting on it.
                FETCHING => return Ok(()),
                INVALIDATING => self.wait_while_invalidating(page),
                // A home page, or a cached page whose invalidation failed
                // after unmapping it (`restore`; flagged written, so it is
                // compared at the next release).
                HOME | CACHED if self.file.is_some() => {
                    self.map_from_file(page)?;
                    // An exported home page must stay protected (its
                    // writes are noticed), before anyone may write it.
                    if self.state(page).load(Ordering::Acquire) == HOME {
                        self.protect_if_exported(page);
                    }
                    self.wake(page);
                    return Ok(());
                }
                _ => {
                    self.wake(page);
                    return Ok(());
                }
            }
        }
    }

    pub(super) fn fetch_and_install(&self, page: usize) -> Result<(), HeapError> {
        let home = match self.home_of(page) {
            Ok(h) => h,
            Err(e) => {
                self.state(page).store(MISSING, Ordering::Release);
                return Err(e);
            }
        };
        let dst = self.page_ptr(page);
        let size = self.page_size();
        // Every install leaves the faulting threads asleep until the page's
        // bookkeeping is done: a woken thread may release at once, and its
        // release must already see the page as cached.
        if home == self.rank {
            let run = self.home_run(page);
            // Before the zeros are mapped: this node may write them now.
            for q in page..page + run {
                self.mark_touched(q);
            }
            let installed = match self.zero_pages_exported_if_promised(page, run, false) {
                Ok(true) => Ok(()),
                Ok(false) => self.zero_pages(page, run),
                Err(e) => Err(e),
            };
            if let Err(e) = installed {
                for q in page..page + run {
                    self.state(q).store(MISSING, Ordering::Release);
                }
                let _ = self.uffd.wake(dst.cast(), run * size);
                return Err(e);
            }
            if !self.hold_install.is_zero() {
                std::thread::sleep(self.hold_install);
            }
            for q in page..page + run {
                self.protect_if_exported(q);
                self.bitmap.set_home(q, true);
                self.state(q).store(HOME, Ordering::Release);
            }
            self.stats.home_faults.fetch_add(1, Ordering::Relaxed);
            let _ = self.uffd.wake(dst.cast(), run * size);
            return Ok(());
        }
        let fresh = match self.fresh_epoch_of(page, home) {
            Ok(f) => f,
            Err(e) => {
                self.state(page).store(MISSING, Ordering::Release);
                self.wake(page);
                return Err(e);
            }
        };
        // Pages after this one that come in the same read (see read_ahead),
        // or that are zeros as well.
        let run = match fresh {
            Some(epoch) => self.claim_following(
                page,
                self.fitting_run(MAX_READ_AHEAD),
                self.layout.pages(),
                |q| self.layout.static_home(q) == Some(home) && self.still_fresh(q, epoch),
            ),
            None => self.read_ahead(page, home),
        };
        // Room in the cache first, before the gate: waiting for the
        // evictor while holding it could wait on an acquire that waits on it.
        self.reserve_room(run);
        self.fetch_run(page, run, home, fresh)
    }

    /// Reads the `run` pages from `page` on (claimed, and their room
    /// reserved, by the caller) from `home` and installs them. (A
    /// handler that went on to read the next window of a scan while the
    /// faulting thread used this one made the farmem scan no faster on
    /// 2 CPUs: 0.25-0.28 of the raw stream against 0.29-0.30.)
    ///
    /// `fresh`: the pages were found untouched in that acquire epoch; if it
    /// is still the current one they are installed as zeros, unread.
    fn fetch_run(
        &self,
        page: usize,
        run: usize,
        home: NodeId,
        fresh: Option<u64>,
    ) -> Result<(), HeapError> {
        let size = self.page_size();
        let gate = self.fetch_gate.read().unwrap();
        let len = run * size;
        let pages = page..page + run;
        let give_up = |why: HeapError| {
            self.cached.lock().unwrap().unreserve(run);
            for q in pages.clone() {
                self.state(q).store(MISSING, Ordering::Release);
            }
            // Threads that faulted on the read-ahead pages retry and fetch them.
            for q in pages.clone().skip(1) {
                self.wake(q);
            }
            Err(why)
        };
        let twin = self.twin_ptr(page);
        // SAFETY: the twins of pages page..page+run are contiguous, and only
        // this thread, which moved those pages to FETCHING, touches them
        // until they are CACHED.
        let twin_slice = unsafe { std::slice::from_raw_parts_mut(twin, len) };
        // Checked under the gate: an acquire since the map was read (which
        // takes the gate to start a new epoch) means reading them after all.
        // Statistics are counted before the install wakes the faulting
        // threads, which may read them at once.
        if fresh.is_some_and(|epoch| self.still_fresh(page, epoch)) {
            twin_slice.fill(0);
            self.stats
                .pages_zero_filled
                .fetch_add(run as u64, Ordering::Relaxed);
        } else {
            if let Err(e) = self.read_from_home(page, run, home, twin_slice) {
                return give_up(e);
            }
            for q in pages.clone() {
                self.forget_fresh(q);
            }
            self.stats
                .pages_read_ahead
                .fetch_add(run as u64 - 1, Ordering::Relaxed);
            self.stats
                .bytes_fetched
                .fetch_add(len as u64, Ordering::Relaxed);
        }
        self.stats.remote_faults.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.install_copies(page, run, gate) {
            return give_up(e);
        }
        Ok(())
    }

    /// Installs the `run` pages from `page` on, claimed (FETCHING) by the
    /// caller, from their twins (which hold the home's bytes), and lists
    /// them as cached in the places the caller reserved (`reserve_room`).
    /// `gate` is the caller's hold on `fetch_gate`, taken before it read
    /// the home. On error the pages are not installed (and the places
    /// stay reserved).
    pub(super) fn install_copies(
        &self,
        page: usize,
        run: usize,
        gate: std::sync::RwLockReadGuard<'_, ()>,
    ) -> Result<(), HeapError> {
        let size = self.page_size();
        let len = run * size;
        let pages = page..page + run;
        let dst = self.page_ptr(page);
        // Marks left from before the pages were last dropped were already covered.
        let mut scratch = vec![0u64; self.words_per_page];
        for q in pages.clone() {
            self.bitmap.take_page(q, &mut scratch);
            self.written(q).store(0, Ordering::Relaxed);
        }
        self.install(page, self.twin_ptr(page), len)?;
        if !self.hold_install.is_zero() {
            std::thread::sleep(self.hold_install);
        }
        // Back soon after its eviction: part of the working set.
        let evictions = self.stats.evictions.load(Ordering::Relaxed);
        let seq = self.fetch_seq.fetch_add(run as u64, Ordering::Relaxed) + run as u64;
        for q in pages.clone() {
            self.fetched_at.as_atomic_u64()[q].store(seq, Ordering::Relaxed);
            let at = self.evicted_at.as_atomic_u64()[q].load(Ordering::Relaxed);
            let recent = at != 0 && evictions + 1 - at <= self.cache_limit as u64;
            self.referenced.as_atomic_u8()[q].store(u8::from(recent), Ordering::Relaxed);
        }
        let over = {
            let mut cached = self.cached.lock().unwrap();
            for q in pages.clone() {
                self.track_chunk(q);
                self.state(q).store(CACHED, Ordering::Release);
                cached.push(q as u32);
            }
            cached.unreserve(run);
            cached.taken() > self.eviction_marks().0
        };
        drop(gate);
        let _ = self.uffd.wake(dst.cast(), len);
        if over {
            self.start_eviction();
        }
        Ok(())
    }

    /// How many of this node's never-touched home pages from `page` on
    /// (which the caller claimed) to map at once: the next ones that are
    /// known to be home here and untouched, up to `CLAIM_AHEAD`, each
    /// claimed (MISSING -> FETCHING) here. A loop that writes its part of
    /// an array then faults once per run instead of once per page (the
    /// zero page costs no memory until written). Not in the prefix (the
    /// stack's guard page lies there).
    pub(super) fn home_run(&self, page: usize) -> usize {
        if self.layout.page_offset(page) < self.layout.node0_prefix() {
            return 1;
        }
        let mine = |q: usize| self.home_if_known(q) == Some(self.rank);
        self.claim_following(page, CLAIM_AHEAD, self.layout.pages(), mine)
    }

    /// Claims (MISSING -> FETCHING) the pages after `page` (which the
    /// caller claimed) while `wanted` says so, up to `limit` pages in all
    /// and below page `end`; returns how many pages the run has.
    pub(super) fn claim_following(
        &self,
        page: usize,
        limit: usize,
        end: usize,
        wanted: impl Fn(usize) -> bool,
    ) -> usize {
        let mut run = 1;
        while run < limit && page + run < end {
            let q = page + run;
            if !wanted(q)
                || self
                    .state(q)
                    .compare_exchange(MISSING, FETCHING, Ordering::SeqCst, Ordering::Acquire)
                    .is_err()
            {
                break;
            }
            run += 1;
        }
        run
    }

    /// Maps the zero page at `count` home pages from `page` (claimed by
    /// the caller), leaving the threads that faulted on them asleep.
    pub(super) fn zero_pages(&self, page: usize, count: usize) -> Result<(), HeapError> {
        let size = self.page_size();
        // SAFETY: the pages are pages of our registered region, claimed
        // (FETCHING) by this thread, so nothing else maps them meanwhile.
        let all = unsafe {
            self.uffd
                .zeropage(self.page_ptr(page).cast(), count * size, false)
        };
        let eexist = |e: &userfaultfd::Error| matches!(e, userfaultfd::Error::ZeropageFailed(e) if *e as i32 == libc::EEXIST);
        // EAGAIN: the kernel mapped some of them, then stopped at one that
        // is there already.
        let stopped = |e: &userfaultfd::Error| matches!(e, userfaultfd::Error::ZeropageFailed(e) if *e as i32 == libc::EAGAIN);
        match all {
            Ok(_) => Ok(()),
            // One of them is mapped already (a write through another
            // mapping of it), or in the region's file: one by one (those
            // mapped already answer EEXIST).
            Err(e) if eexist(&e) || stopped(&e) => (page..page + count).try_for_each(|q| {
                // SAFETY: as above, for one page.
                match unsafe { self.uffd.zeropage(self.page_ptr(q).cast(), size, false) } {
                    Ok(_) => Ok(()),
                    Err(e) if eexist(&e) => self.map_from_file(q),
                    Err(e) => Err(HeapError::Userfaultfd(format!("UFFDIO_ZEROPAGE: {e}"))),
                }
            }),
            Err(e) => Err(HeapError::Userfaultfd(format!("UFFDIO_ZEROPAGE: {e}"))),
        }
    }

    /// Maps page `page`, found already in the region's file (a home page
    /// written through the transport's view, or populated when that view
    /// was pinned; a cached page put back after a failed invalidation),
    /// from the file; with no file, or already mapped (a fault resolved
    /// meanwhile: EEXIST), there is nothing to do.
    fn map_from_file(&self, page: usize) -> Result<(), HeapError> {
        if self.file.is_none() {
            return Ok(());
        }
        // Neither a home page nor a listed cached one is dropped from the
        // file, so it is still there.
        match self
            .uffd
            .r#continue(self.page_ptr(page).cast(), self.page_size(), false)
        {
            Ok(_) => Ok(()),
            Err(userfaultfd::Error::SystemError(e)) if e as i32 == libc::EEXIST => Ok(()),
            Err(e) => Err(HeapError::Userfaultfd(format!("UFFDIO_CONTINUE: {e}"))),
        }
    }

    /// Installs `len` bytes from `src` as the pages from `page` on (all
    /// claimed by this thread), write-protected in tracked mode, leaving the
    /// faulting threads asleep: all of them, or (on error) none.
    pub(super) fn install(&self, page: usize, src: *const u8, len: usize) -> Result<(), HeapError> {
        // SAFETY: src holds `len` readable bytes; the destination pages are
        // pages of the region, registered (in write-protect mode too) with
        // this userfaultfd, and claimed (FETCHING) by this thread, so
        // nothing else installs or drops them meanwhile.
        unsafe {
            sys::uffd_install(
                &self.uffd,
                src,
                self.page_ptr(page),
                len,
                self.page_size(),
                self.track,
                &|p, n| self.discard_pages(p, n),
            )
        }
        .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_COPY: {e}")))
    }

    /// At most `pages`, as many pages as one fetch may take: a run must
    /// fit in the cache with room to spare (`reserve_room` waits for its
    /// room, for ever if the cache could never hold it).
    fn fitting_run(&self, pages: usize) -> usize {
        pages.min(self.cache_limit / 4).max(1)
    }

    /// Where read-ahead from `page` must stop: in the prefix only over the
    /// globals (past them lie main's stack and the guard page below it,
    /// which its home must never be asked to read).
    fn scan_end(&self, page: usize) -> usize {
        if self.layout.page_offset(page) < self.layout.node0_prefix() {
            self.layout.page_of_offset(self.layout.globals())
        } else {
            self.layout.pages()
        }
    }

    /// How many pages from `page` on to fetch in one read: when the page
    /// before this one was fetched a moment ago (a sequential scan), a
    /// window of pages that live on the same home and nobody has yet, each
    /// claimed (MISSING -> FETCHING) here; otherwise just this one. Only
    /// pages whose home is already known count (read-ahead never claims a
    /// first-touch home).
    pub(super) fn read_ahead(&self, page: usize, home: NodeId) -> usize {
        // A scan: the page before was fetched a moment ago (by the last
        // fault of this scan, or in its window). A page before that has
        // been cached for long says nothing: random reads in a large cache
        // would read ahead for nothing.
        let recent = |q: usize| {
            let at = self.fetched_at.as_atomic_u64()[q].load(Ordering::Relaxed);
            at != 0 && self.fetch_seq.load(Ordering::Relaxed) - at < RECENT_FETCHES
        };
        let sequential =
            page > 0 && self.state(page - 1).load(Ordering::Acquire) == CACHED && recent(page - 1);
        let end = self.scan_end(page);
        if !sequential || page >= end || self.read_ahead <= 1 {
            return 1;
        }
        // The window grows with the scan behind it: as many pages as are
        // cached right before this one (the last window, and the ones
        // before), from `read_ahead` up to MAX_READ_AHEAD, so a long
        // sequential scan reads in large transfers and a short run of
        // neighbouring pages stays at the small window.
        let behind = (1..=MAX_READ_AHEAD.min(page))
            .take_while(|&k| self.state(page - k).load(Ordering::Acquire) == CACHED)
            .count();
        // (A LOCO_READ_AHEAD above the cap is taken as asked.)
        let most = MAX_READ_AHEAD.max(self.read_ahead);
        let window = behind.next_power_of_two().clamp(self.read_ahead, most);
        let limit = self.fitting_run(window);
        // Pages known to be untouched are left to their own fault, which
        // maps zeros rather than read them.
        self.claim_following(page, limit, end, |q| {
            self.home_if_known(q) == Some(home) && !self.known_fresh(q)
        })
    }

    pub(super) fn resolve_write_protect(&self, page: usize) -> Result<(), HeapError> {
        loop {
            match self.state(page).load(Ordering::Acquire) {
                INVALIDATING => self.wait_while_invalidating(page),
                CACHED => {
                    let _g = self.lock_page(page);
                    if self.state(page).load(Ordering::Acquire) != CACHED {
                        continue;
                    }
                    self.written(page).store(1, Ordering::Release);
                    self.referenced.as_atomic_u8()[page].store(1, Ordering::Relaxed);
                    self.stats.write_faults.fetch_add(1, Ordering::Relaxed);
                    self.uffd
                        .remove_write_protection(self.page_ptr(page).cast(), self.page_size(), true)
                        .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
                    return Ok(());
                }
                // An exported home page (write notices): noted, unprotected.
                HOME => {
                    self.stats.write_faults.fetch_add(1, Ordering::Relaxed);
                    self.note_home_fault(page);
                    return Ok(());
                }
                // Dropped or being fetched: retrying the write faults as missing.
                _ => {
                    self.wake(page);
                    return Ok(());
                }
            }
        }
    }
}
