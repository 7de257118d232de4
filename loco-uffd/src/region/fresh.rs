//! Pages nobody has written: a fault on one maps zeros instead of reading
//! its home (a program's first pass over a fresh array, which with a
//! small cache would otherwise read every page once just to overwrite it).
//!
//! Every home keeps a byte per page, its *touched map*, registered with
//! the transport: 0 while no write can have reached the page, set before
//! one can. A node that faults on another home's page reads the map for a
//! window of pages around it once (one round trip per `FRESH_WINDOW`
//! pages), and until its next acquire installs the untouched ones as
//! zeros. A touched page stays touched, so that answer is kept for good,
//! as it is for a page this node has read from its home or sends bytes
//! to (`forget_fresh`).
//!
//! Why a zero copy stays right: a write another node must see reaches it
//! through a release and an acquire. A remote write sets the byte before
//! it lands (`prepare_home`, Write). The home's own writes: a page it
//! faults in itself is marked touched first; a page it made present for
//! other nodes is exported (its writes are found and logged as write
//! notices, `log_home_writes` marks it touched before logging). A page a
//! reader was told is untouched is *promised* (the map's prepare hook):
//! when the home later makes it present (its own fault, or serving a
//! write), it maps it write-protected and exported, so that its writes
//! become notices that drop the reader's zero copy at its next acquire.
//!
//! Only with write notices (`selective`: the tcp transport, whose serving
//! threads see every access) and pages with a fixed home (not first-touch
//! ones, whose home may move), outside the prefix (main's stack).

use super::*;

/// Pages whose touched bytes one read of a home's map asks for (16 MiB
/// of 4 KB pages).
const FRESH_WINDOW: usize = 4096;

/// `fresh` value of a page known to be touched (for good).
const KNOWN_TOUCHED: u64 = u64::MAX;

impl Inner {
    /// This node's touched-map byte for home page `page`.
    pub(super) fn touched(&self, page: usize) -> &AtomicU8 {
        assert!(
            page < self.touched_map.len(),
            "page {page} outside the region"
        );
        // SAFETY: in bounds (asserted: one byte per page of the region);
        // the map lives as long as `self` (an Arc of it is kept here) and
        // is only ever accessed atomically or by the transport's copies.
        unsafe { &*(self.touched_map.as_ptr().add(page) as *const AtomicU8) }
    }

    fn promised(&self, page: usize) -> &AtomicU8 {
        &self.promised.as_atomic_u8()[page]
    }

    /// What this node knows of another home's page `page`: `KNOWN_TOUCHED`,
    /// the acquire epoch in which it was found untouched, or 0.
    fn fresh(&self, page: usize) -> &AtomicU64 {
        &self.fresh.as_atomic_u64()[page]
    }

    /// Home side: a write may reach home page `page` from now on. Before
    /// the write: a reader that finds the byte clear read it before this.
    pub(super) fn mark_touched(&self, page: usize) {
        if self.fresh_pages {
            self.touched(page).store(1, Ordering::SeqCst);
        }
    }

    /// Home side, about to map zeros at home pages `page .. page+count`
    /// (claimed, and marked touched if a write is coming): if a reader was
    /// told one of them is untouched (and may hold zeros for it), or
    /// `export` says so, they are mapped write-protected and exported, so
    /// that this node's every write to them becomes a write notice; true
    /// if so (the caller wakes the threads waiting for them). Zeros mapped
    /// writable first and protected after would let another thread of this
    /// node write them unseen in between.
    pub(super) fn zero_pages_exported_if_promised(
        &self,
        page: usize,
        count: usize,
        export: bool,
    ) -> Result<bool, HeapError> {
        // SeqCst, against the hook's promise then read of the byte.
        if !self.fresh_pages
            || !(export
                || (page..page + count).any(|q| self.promised(q).load(Ordering::SeqCst) != 0))
        {
            return Ok(false);
        }
        let zeros = vec![0u8; count * self.page_size()];
        // SAFETY: `zeros` holds the bytes; the pages are pages of our
        // registered region, claimed (FETCHING) by the caller.
        unsafe {
            sys::uffd_install(
                &self.uffd,
                zeros.as_ptr(),
                self.page_ptr(page),
                zeros.len(),
                self.page_size(),
                true,
                &|p, n| self.discard_pages(p, n),
            )
        }
        .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_COPY: {e}")))?;
        for q in page..page + count {
            // What `export` records; no serving thread reaches a page
            // still FETCHING.
            self.protected(q).store(1, Ordering::Release);
            self.track_chunk(q);
            self.exported(q).store(1, Ordering::Release);
        }
        Ok(true)
    }

    /// Home side, the touched map's prepare hook: another node is about to
    /// read the bytes of pages `first .. first+count`. Those of ours still
    /// clear are promised before the bytes are read.
    pub(super) fn promise_untouched(&self, first: usize, count: usize) {
        if !self.fresh_pages {
            return;
        }
        for q in first..(first + count).min(self.layout.pages()) {
            if self.layout.static_home(q) == Some(self.rank)
                && self.touched(q).load(Ordering::SeqCst) == 0
            {
                self.promised(q).store(1, Ordering::SeqCst);
            }
        }
        // The serving thread reads the bytes after this, with plain loads.
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Reader side: whether another home's page `page` (homed at `home`)
    /// is known untouched in this acquire epoch; `Some(epoch)` if so. Asks
    /// the home's map for the page's window when this node does not know.
    pub(super) fn fresh_epoch_of(
        &self,
        page: usize,
        home: NodeId,
    ) -> Result<Option<u64>, HeapError> {
        if !self.fresh_pages
            || self.layout.static_home(page) != Some(home)
            || self.layout.page_offset(page) < self.layout.node0_prefix()
        {
            return Ok(None);
        }
        let known = self.fresh(page).load(Ordering::Acquire);
        if known == KNOWN_TOUCHED {
            return Ok(None);
        }
        // Taken before the map is read: an acquire that begins meanwhile
        // makes the answer stale, and it is recorded as of this epoch.
        let epoch = self.fresh_epoch.load(Ordering::Acquire);
        if known == epoch {
            return Ok(Some(epoch));
        }
        let start = page - page % FRESH_WINDOW;
        let end = (start + FRESH_WINDOW).min(self.layout.pages());
        let mut bytes = vec![0u8; end - start];
        self.transport
            .read(home, self.touched_region, start as u64, &mut bytes)
            .map_err(HeapError::Transport)?;
        for (q, &b) in (start..end).zip(&bytes) {
            if self.layout.static_home(q) != Some(home) {
                continue;
            }
            let value = if b != 0 { KNOWN_TOUCHED } else { epoch };
            // An install (KNOWN_TOUCHED) that came first wins.
            let _ = self
                .fresh(q)
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    (v != KNOWN_TOUCHED).then_some(value)
                });
        }
        Ok((bytes[page - start] == 0).then_some(epoch))
    }

    /// Whether page `page` is still known untouched as of `epoch`.
    pub(super) fn still_fresh(&self, page: usize, epoch: u64) -> bool {
        self.fresh(page).load(Ordering::Acquire) == epoch
            && self.fresh_epoch.load(Ordering::Acquire) == epoch
    }

    /// Whether page `page` is known untouched in the current epoch.
    pub(super) fn known_fresh(&self, page: usize) -> bool {
        self.fresh_pages
            && self.fresh(page).load(Ordering::Acquire) == self.fresh_epoch.load(Ordering::Acquire)
    }

    /// Reader side: page `page` was read from its home, or this node is
    /// about to send it bytes: the home may no longer hold zeros. (A page
    /// mapped as zeros stays known untouched until this node writes it
    /// back: dropped unwritten, it is mapped as zeros again.)
    pub(super) fn forget_fresh(&self, page: usize) {
        self.fresh(page).store(KNOWN_TOUCHED, Ordering::Release);
    }

    /// An acquire: what this node learned of untouched pages is stale.
    /// Called with `fetch_gate` held exclusively.
    pub(super) fn new_fresh_epoch(&self) {
        self.fresh_epoch.fetch_add(1, Ordering::AcqRel);
    }
}
