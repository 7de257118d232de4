//! Finding written pages without a fault per page (WP_ASYNC): the kernel
//! lifts a page's write protection itself on the first write, and a scan of
//! the page tables (PAGEMAP_SCAN) at the next release finds the pages whose
//! protection is gone.

use super::*;

/// Most pages nobody watches between two watched runs that one scan covers
/// (see `watched_runs`). Measured on 2 nodes: LULESH `-s 30 -i 100` took
/// 41 s with exact runs (about 200 scans per release), 28 s with gaps of
/// 8 pages, 24 s with 32 or 64; NAS MG class A ran 0.81-0.86 s with gaps
/// of 0 to 64 pages but 1.40 s when whole tracked chunks were scanned
/// (its private home pages, protected, then faulted on every write).
const WATCH_GAP: usize = 64;

impl Inner {
    /// Notes that `page` may need watching (it is cached, or an exported
    /// home page): the scans cover its chunk from now on.
    pub(super) fn track_chunk(&self, page: usize) {
        if !self.async_wp {
            return;
        }
        let chunk = page / TRACKED_CHUNK;
        let word = &self.tracked.as_atomic_u64()[chunk / 64];
        let bit = 1u64 << (chunk % 64);
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Release);
        }
    }

    /// The runs of tracked chunks, as (first page, pages).
    fn tracked_ranges(&self) -> Vec<(usize, usize)> {
        let pages = self.layout.pages();
        let mut chunks = Vec::new();
        for (w, word) in self.tracked.as_atomic_u64().iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                chunks.push(w * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        contiguous(&chunks)
            .into_iter()
            .map(|(first, count)| {
                let start = first * TRACKED_CHUNK;
                (start, (count * TRACKED_CHUNK).min(pages - start))
            })
            .collect()
    }

    /// The runs of watched pages in the tracked chunks: cached pages (and
    /// pages being fetched, present a moment before they are cached) and
    /// exported home pages, runs less than `WATCH_GAP` pages apart joined.
    /// Scanning (and so protecting) only these leaves the other home pages
    /// unprotected, so this node's writes to its own private data cost
    /// nothing; a page in a joined gap costs an in-kernel fault (about a
    /// microsecond) when this node next writes it.
    fn watched_runs(&self) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (first, count) in self.tracked_ranges() {
            for page in first..first + count {
                let watched = match self.state(page).load(Ordering::Acquire) {
                    CACHED | FETCHING => true,
                    HOME => self.exported(page).load(Ordering::Acquire) != 0,
                    _ => false,
                };
                if !watched {
                    continue;
                }
                match runs.last_mut() {
                    // A short gap joins the run: one ioctl costs more than
                    // walking (and protecting) a few pages nobody watches.
                    Some((start, n)) if page - (*start + *n) <= WATCH_GAP => *n = page + 1 - *start,
                    _ => runs.push((page, 1)),
                }
            }
        }
        runs
    }

    /// With WP_ASYNC: flags every watched page written since its protection
    /// last came on, as a write-protect fault would have (a cached page
    /// gets its `written` flag, so the release compares it with its twin;
    /// an exported home page is listed for `log_home_writes`), and
    /// protects it again, in the scan itself. A write after the protection
    /// unprotects the page again and is found by the next scan; one before
    /// it is in the page when the caller reads it, after this returns.
    /// Only watched pages are scanned (`watched_runs`). Caller holds
    /// `consistency`.
    pub(super) fn scan_writes(&self) -> Result<(), HeapError> {
        let Some(scanner) = &self.scanner else {
            return Ok(());
        };
        let size = self.page_size();
        let mut ranges = Vec::new();
        for (first, count) in self.watched_runs() {
            scanner
                .take_written(self.page_ptr(first), count * size, &mut ranges)
                .map_err(|e| HeapError::Userfaultfd(format!("PAGEMAP_SCAN: {e}")))?;
        }
        let mut found = 0u64;
        let mut home_listed: Vec<u32> = Vec::new();
        let base = self.map.ptr() as u64;
        for (start, end) in ranges {
            let first = ((start - base) / size as u64) as usize;
            let last = ((end - base) / size as u64) as usize;
            for page in first..last {
                match self.state(page).load(Ordering::Acquire) {
                    CACHED if self.track => {
                        self.written(page).store(1, Ordering::Release);
                        self.referenced.as_atomic_u8()[page].store(1, Ordering::Relaxed);
                        found += 1;
                    }
                    // Installed a moment before it becomes CACHED (its
                    // fetch cleared the flag before installing it), and
                    // written since by a thread that found it present.
                    // Not a home page being mapped here (zeros, reported
                    // as written since they are not protected): flagged,
                    // it would become HOME with `written` already set, and
                    // its writes would never be listed for a notice again.
                    FETCHING if self.track && self.home_if_known(page) != Some(self.rank) => {
                        self.written(page).store(1, Ordering::Release);
                        found += 1;
                    }
                    HOME if self.exported(page).load(Ordering::Acquire) != 0 => {
                        if self.written(page).swap(1, Ordering::AcqRel) == 0 {
                            home_listed.push(page as u32);
                        }
                        found += 1;
                    }
                    _ => {}
                }
            }
        }
        if !home_listed.is_empty() {
            self.home_written.lock().unwrap().extend(home_listed);
        }
        self.stats.write_faults.fetch_add(found, Ordering::Relaxed);
        Ok(())
    }
}
