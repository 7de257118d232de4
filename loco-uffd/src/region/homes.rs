//! Home pages: where a page lives (placement, the first-touch directory),
//! making home pages present for serving threads, and noticing this
//! node's writes to home pages other nodes may cache (write notices).

use super::*;

impl Inner {
    /// The page's home under first-touch placement, once known here: 0
    /// unknown, `CLAIMING` while a thread of this node asks the directory,
    /// else home + 1.
    pub(super) fn known_home(&self, page: usize) -> &AtomicU64 {
        &self.home_cache.as_atomic_u64()[page]
    }

    pub(super) fn home_of(&self, page: usize) -> Result<NodeId, HeapError> {
        if let Some(home) = self.layout.static_home(page) {
            return Ok(home);
        }
        let known = self.known_home(page);
        loop {
            match known.load(Ordering::Acquire) {
                0 => {}
                CLAIMING => {
                    std::thread::yield_now();
                    continue;
                }
                k => return Ok((k - 1) as NodeId),
            }
            // Announced before the directory is asked: once our claim wins,
            // other nodes may read the page from us before we record the
            // answer, and our serving threads must know to wait for it
            // (is_home) rather than take the page for someone else's.
            if known
                .compare_exchange(0, CLAIMING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let dir = self
                .directory
                .expect("first-touch placement has a directory");
            let me = self.rank as u64 + 1;
            let fail = |e: HeapError| {
                known.store(0, Ordering::Release);
                Err(e)
            };
            // After a page whose home is known (a loop walking an array),
            // the next pages' entries come in the same round trip: up to
            // CLAIM_AHEAD of them, first-touch pages only.
            let previous = if page > 0 {
                self.known_home(page - 1).load(Ordering::Acquire)
            } else {
                0
            };
            let run = if previous == 0 || previous == CLAIMING {
                1
            } else {
                (page + 1..self.layout.pages())
                    .take(CLAIM_AHEAD - 1)
                    .take_while(|&q| self.layout.static_home(q).is_none())
                    .count()
                    + 1
            };
            let found = if previous == me {
                // Initialising its own part: claim them all, until one is
                // someone's already.
                match self
                    .transport
                    .compare_swap_run(0, dir, page as u64 * 8, run as u32, 0, me)
                {
                    Ok(found) if !found.is_empty() => found,
                    Ok(_) => {
                        return fail(HeapError::Invalid(
                            "the first-touch directory answered nothing".into(),
                        ))
                    }
                    Err(e) => return fail(HeapError::Transport(e)),
                }
            } else {
                // Reading another node's data: learn the homes the next pages
                // already have (so faults can read ahead), claim only this one.
                let mut found = vec![0u64; run];
                if run > 1 {
                    let mut bytes = vec![0u8; run * 8];
                    // Entries only ever change one low byte (homes are node
                    // numbers + 1 < 256), so a word read while it is
                    // claimed reads as before or as after, never as a mix.
                    if let Err(e) = self.transport.read(0, dir, page as u64 * 8, &mut bytes) {
                        return fail(HeapError::Transport(e));
                    }
                    for (f, b) in found.iter_mut().zip(bytes.chunks_exact(8)) {
                        *f = u64::from_le_bytes(b.try_into().unwrap());
                    }
                    // Unclaimed pages after this one stay unknown.
                    if let Some(end) = found.iter().skip(1).position(|&f| f == 0) {
                        found.truncate(end + 1);
                    }
                }
                if found[0] == 0 {
                    match self.transport.compare_swap(0, dir, page as u64 * 8, 0, me) {
                        Ok(f) => found[0] = f,
                        Err(e) => return fail(HeapError::Transport(e)),
                    }
                }
                found
            };
            // The pages after it that the run claimed (or found taken) are
            // known now; a thread of ours claiming one of them meanwhile
            // finds the same answer in the directory.
            for (j, &f) in found.iter().enumerate().skip(1) {
                let value = if f == 0 { me } else { f };
                let _ = self.known_home(page + j).compare_exchange(
                    0,
                    value,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            let home = if found[0] == 0 {
                self.rank
            } else {
                (found[0] - 1) as NodeId
            };
            known.store(home as u64 + 1, Ordering::Release);
            return Ok(home);
        }
    }

    /// The page's home if this node knows it without asking anyone.
    pub(super) fn home_if_known(&self, page: usize) -> Option<NodeId> {
        match self.layout.static_home(page) {
            Some(home) => Some(home),
            None => match self.known_home(page).load(Ordering::Acquire) {
                0 | CLAIMING => None,
                k => Some((k - 1) as NodeId),
            },
        }
    }

    /// Whether a page another node asks this node for (a serving thread's
    /// question) is home here. Nodes ask the home the directory named, so a
    /// first-touch page not yet known here is one a claim of ours has just
    /// won or lost: a single page being claimed (`CLAIMING`), or a page of a
    /// claim-ahead run, recorded here only after the directory answered.
    /// The directory says which, without waiting for the claimer (a serving
    /// thread that waited for it could wait for a node whose serving threads
    /// wait for ours). Serving a page of ours as someone else's would skip
    /// `export`, and this node's later writes to it would go unnoticed.
    pub(super) fn is_home(&self, page: usize) -> bool {
        let me = self.rank as u64 + 1;
        if let Some(home) = self.layout.static_home(page) {
            return home == self.rank;
        }
        let known = self.known_home(page);
        match known.load(Ordering::Acquire) {
            0 | CLAIMING => {}
            k => return k == me,
        }
        let dir = self
            .directory
            .expect("first-touch placement has a directory");
        let mut entry = [0u8; 8];
        if let Err(e) = self.transport.read(0, dir, page as u64 * 8, &mut entry) {
            self.fatal(&format!(
                "cannot read the first-touch directory for a page another node asks for: {e}"
            ));
        }
        let entry = u64::from_le_bytes(entry);
        if entry == 0 {
            return false;
        }
        // Recorded for later questions; a claim of ours under way records
        // the same answer.
        let _ = known.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Acquire);
        entry == me
    }

    /// Makes this node's home pages in `offset .. offset+len` present (as
    /// zeros if never touched), from the calling (serving) thread; then,
    /// for write notices, a page another node reads becomes exported and a
    /// write to an exported page is noted (see `export`, `note_home_write`).
    pub(super) fn prepare_home(
        self: Arc<Self>,
        offset: u64,
        len: usize,
        access: Access,
    ) -> Option<Finish> {
        if !self.demand_paged {
            // Every page is home and filled by the kernel on first touch.
            return None;
        }
        let first = self.layout.page_of_offset(offset);
        let last = self.layout.page_of_offset(offset + len as u64 - 1);
        // A memory node runs no program code: nothing of its own writes its
        // home pages, so there is nothing to notice (no export, no note).
        let notice = self.selective && !self.transport.is_memory_node(self.rank);
        let mut serving = Vec::new();
        let mut to_export = Vec::new();
        for page in first..=last {
            if !self.is_home(page) {
                continue;
            }
            if access == Access::Write {
                self.mark_touched(page);
            }
            loop {
                match self.state(page).load(Ordering::Acquire) {
                    MISSING => {
                        if self
                            .state(page)
                            .compare_exchange(
                                MISSING,
                                FETCHING,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_err()
                        {
                            continue;
                        }
                        match self.map_served_zeros(page, notice && access == Access::Read) {
                            Ok(wake) => {
                                self.bitmap.set_home(page, true);
                                self.state(page).store(HOME, Ordering::Release);
                                self.stats.home_faults.fetch_add(1, Ordering::Relaxed);
                                if wake {
                                    self.wake(page);
                                }
                            }
                            Err(why) => self.leave_to_fault_handlers(page, &why),
                        }
                        break;
                    }
                    // A handler is installing it right now: a short wait.
                    FETCHING => std::thread::yield_now(),
                    _ => break,
                }
            }
            if notice && self.state(page).load(Ordering::Acquire) == HOME {
                match access {
                    Access::Read => {
                        if self.exported(page).load(Ordering::Acquire) == 0 {
                            to_export.push(page);
                        }
                    }
                    // Another node's write or atomic: that node logs it, but
                    // the page must not be write-protected under a serving
                    // thread (a fault there could wait on handlers that wait
                    // on other nodes). Taken as this node's write: one more
                    // notice at most.
                    Access::Write => {
                        self.note_home_write(page);
                        serving.push(page);
                    }
                }
            }
        }
        // Before the read: a write either lands before it (and is read) or
        // faults and is noted.
        self.export_all(&to_export);
        if serving.is_empty() {
            return None;
        }
        Some(Box::new(move || {
            for page in serving {
                self.serving(page).fetch_sub(1, Ordering::AcqRel);
            }
        }))
    }

    /// Per home page: accesses by serving threads that write it under way
    /// (counted by `note_home_write`). Protection must not come back on
    /// under one: a serving thread must never fault (it could wait for
    /// fault handlers that wait for other nodes that wait for it).
    pub(super) fn serving(&self, page: usize) -> &AtomicU64 {
        &self.serving.as_atomic_u64()[page]
    }

    /// Takes `page`'s lock once no serving thread writes the page (none
    /// starts while the lock is held). The lock is not held while waiting:
    /// a serving thread that counts as writing the page may still have to
    /// take it (a scatter prepares all its runs, several of which may lie
    /// in the page, before it writes any), and would wait for the lock
    /// while the lock's holder waited for it.
    pub(super) fn lock_unserved(&self, page: usize) -> MutexGuard<'_, ()> {
        loop {
            let g = self.lock_page(page);
            if self.serving(page).load(Ordering::Acquire) == 0 {
                return g;
            }
            drop(g);
            std::thread::yield_now();
        }
    }

    /// Maps zeros at home page `page` (claimed, FETCHING) for a serving
    /// thread. A page another node will read (`export`), or one a reader
    /// may hold as zeros, is mapped write-protected and exported from the
    /// start (fresh.rs); then the threads that faulted on it meanwhile
    /// still sleep and the answer is true (the caller wakes them once the
    /// page is HOME). Otherwise the zero page wakes them as it is mapped.
    fn map_served_zeros(&self, page: usize, export: bool) -> Result<bool, String> {
        if self
            .zero_pages_exported_if_promised(page, 1, export)
            .map_err(|e| e.to_string())?
        {
            return Ok(true);
        }
        // SAFETY: a page of our registered region, claimed by the caller.
        let zeroed = unsafe {
            self.uffd
                .zeropage(self.page_ptr(page).cast(), self.page_size(), true)
        };
        match zeroed {
            Ok(_) => Ok(false),
            // Mapped already (a write through another mapping of it).
            Err(userfaultfd::Error::ZeropageFailed(e)) if e as i32 == libc::EEXIST => Ok(true),
            Err(e) => Err(format!("UFFDIO_ZEROPAGE: {e}")),
        }
    }

    /// A serving thread could not make home page `page` (claimed, FETCHING)
    /// present: it says why and leaves the page to the fault handlers.
    /// Threads that faulted meanwhile saw FETCHING and wait for an install
    /// that will not come: they are woken to fault again.
    fn leave_to_fault_handlers(&self, page: usize, why: &dyn std::fmt::Display) {
        eprintln!(
            "loco: node {}: making a served page present: {why}",
            self.rank
        );
        self.state(page).store(MISSING, Ordering::Release);
        self.wake(page);
    }

    pub(super) fn exported(&self, page: usize) -> &AtomicU8 {
        &self.exported.as_atomic_u8()[page]
    }

    /// See `Inner::protected`.
    pub(super) fn protected(&self, page: usize) -> &AtomicU8 {
        &self.protected.as_atomic_u8()[page]
    }

    /// Another node is about to read home page `page`, so it may cache it:
    /// from now on this node's writes to it must be noticed. It is
    /// write-protected (before the read, so a write either lands before it
    /// and is read, or faults and is noted) unless it already was.
    pub(super) fn export(&self, page: usize) {
        if self.exported(page).load(Ordering::Acquire) != 0 {
            return;
        }
        let _g = self.lock_unserved(page);
        if self.exported(page).load(Ordering::Acquire) != 0 {
            return;
        }
        self.protect_exported(page, 1);
        self.exported(page).store(1, Ordering::Release);
    }

    /// `export` for every page of `pages` (ascending home pages about to be
    /// read), with one write-protect ioctl per run of neighbouring pages
    /// instead of one per page: a read-ahead window of 256 pages cost the
    /// serving thread 256 ioctls, each with its TLB flush. The pages' locks
    /// are taken together (in stripe order, so two such calls cannot wait
    /// on each other), once no serving thread writes any of them.
    pub(super) fn export_all(&self, pages: &[usize]) {
        for run in pages.chunk_by(|a, b| a + 1 == *b) {
            if run.len() == 1 {
                self.export(run[0]);
                continue;
            }
            let mut stripes: Vec<usize> = run.iter().map(|p| p % PAGE_LOCK_STRIPES).collect();
            stripes.sort_unstable();
            stripes.dedup();
            let _guards = loop {
                let guards: Vec<MutexGuard<'_, ()>> = stripes
                    .iter()
                    .map(|&s| self.page_locks[s].lock().unwrap())
                    .collect();
                if run
                    .iter()
                    .all(|&p| self.serving(p).load(Ordering::Acquire) == 0)
                {
                    break guards;
                }
                drop(guards);
                std::thread::yield_now();
            };
            let todo: Vec<usize> = run
                .iter()
                .copied()
                .filter(|&p| self.exported(p).load(Ordering::Acquire) == 0)
                .collect();
            for (first, count) in contiguous(&todo) {
                self.protect_exported(first, count);
                for p in first..first + count {
                    self.exported(p).store(1, Ordering::Release);
                }
            }
        }
    }

    /// Write-protects the `count` exported home pages from `first` (the
    /// caller holds their locks, or has them to itself: claimed and not
    /// yet HOME) and has the write-tracking scans watch them.
    fn protect_exported(&self, first: usize, count: usize) {
        if let Err(e) = self
            .uffd
            .write_protect(self.page_ptr(first).cast(), count * self.page_size())
        {
            self.fatal(&format!("cannot write-protect exported home pages: {e}"));
        }
        for page in first..first + count {
            self.protected(page).store(1, Ordering::Release);
            self.track_chunk(page);
        }
    }

    /// A write fault on exported home page `page`: flagged and listed for
    /// the next release, then unprotected, then (if a release cleared the
    /// flag meanwhile) flagged and listed again, and only then is the
    /// faulting thread woken. Without the page lock: the thread holding it
    /// may be the one that faulted (a release protects the pages of the
    /// stack `main` runs on, which lives in the region, and that thread
    /// keeps using its stack). Counted in `handling`, so that a release
    /// neither takes the list nor clears and protects the page in the
    /// middle of this (another thread may write the page as soon as it is
    /// unprotected: the page must be on a list the release takes, or on
    /// the next one, by then).
    pub(super) fn note_home_fault(&self, page: usize) {
        self.home_faults_active.fetch_add(1, Ordering::AcqRel);
        self.handling(page).fetch_add(1, Ordering::AcqRel);
        let flag = |me: &Self| {
            if me.written(page).swap(1, Ordering::AcqRel) == 0 {
                me.home_written.lock().unwrap().push(page as u32);
            }
        };
        flag(self);
        if let Err(e) =
            self.uffd
                .remove_write_protection(self.page_ptr(page).cast(), self.page_size(), false)
        {
            self.fatal(&format!("cannot unprotect a written home page: {e}"));
        }
        // Before `handling` drops: a release that protects the page again
        // waits for that, so this cannot overwrite its 1.
        self.protected(page).store(0, Ordering::Release);
        flag(self);
        self.handling(page).fetch_sub(1, Ordering::AcqRel);
        self.home_faults_active.fetch_sub(1, Ordering::AcqRel);
        self.wake(page);
    }

    /// Per home page: write faults being resolved (`note_home_fault`).
    pub(super) fn handling(&self, page: usize) -> &AtomicU64 {
        &self.handling.as_atomic_u64()[page]
    }

    /// Another node's write or atomic on home page `page`: counted as under
    /// way (see `serving`) and, if the page is exported, listed for the
    /// next release to log and protect again, and unprotected until then.
    pub(super) fn note_home_write(&self, page: usize) {
        let _g = self.lock_page(page);
        self.serving(page).fetch_add(1, Ordering::AcqRel);
        if self.exported(page).load(Ordering::Acquire) == 0 {
            return;
        }
        if self.written(page).swap(1, Ordering::AcqRel) == 0 {
            self.home_written.lock().unwrap().push(page as u32);
        }
        // Every protection came on under the page lock, which this thread
        // holds, and was recorded before it was released; a 0 was stored
        // after the ioctl that lifted it. With WP_ASYNC the serving
        // thread's write lifts it by itself, without a fault message.
        if self.async_wp || self.protected(page).load(Ordering::Acquire) == 0 {
            return;
        }
        if let Err(e) =
            self.uffd
                .remove_write_protection(self.page_ptr(page).cast(), self.page_size(), true)
        {
            self.fatal(&format!("cannot unprotect a written home page: {e}"));
        }
        self.protected(page).store(0, Ordering::Release);
    }

    /// Reads pages `page .. page+run` from `home` into `buf`. With home
    /// memory in a file, the read first marks them in the home's export
    /// map (unless this node already has, once for all): a NIC serves the
    /// read without the home's CPU, so this mark, in place before the
    /// read, is how the home learns that its later writes to those pages
    /// need notices (`discover_exports`). Both in one round trip where the
    /// transport can (`write_then_read`). Memory nodes are not told: they
    /// write nothing of their own.
    pub(super) fn read_from_home(
        &self,
        page: usize,
        run: usize,
        home: NodeId,
        buf: &mut [u8],
    ) -> Result<(), HeapError> {
        let offset = self.layout.page_offset(page);
        let announce = match &self.export_map {
            Some((_, map)) if self.selective && !self.transport.is_memory_node(home) => {
                let announced = &self.announced.as_atomic_u8()[page..page + run];
                (!announced.iter().all(|a| a.load(Ordering::Relaxed) != 0))
                    .then_some((*map, announced))
            }
            _ => None,
        };
        let Some((map, announced)) = announce else {
            return self
                .transport
                .read(home, self.data, offset, buf)
                .map_err(HeapError::Transport);
        };
        let marks = vec![1u8; run];
        self.transport
            .write_then_read(home, (map, page as u64, &marks), self.data, offset, buf)
            .map_err(HeapError::Transport)?;
        for a in announced {
            a.store(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Home memory in a file, at a release: the home pages other nodes
    /// marked in this node's export map since the last one become
    /// exported here (`export_found`).
    fn discover_exports(&self) -> Result<(), HeapError> {
        let Some((map, _)) = &self.export_map else {
            return Ok(());
        };
        if !self.selective {
            return Ok(());
        }
        let exported = self.exported.as_atomic_u8();
        let take = |page: usize, mark: u8| {
            if mark != 0 && exported[page].load(Ordering::Acquire) == 0 {
                self.export_found(page);
            }
        };
        // Only the pages that can be home here are ever marked (readers
        // mark at a page's home): the served span, in whole words.
        let page_size = self.layout.page_size;
        let first = (self.served.start / page_size) as usize / 8;
        let pages = (self.served.end / page_size) as usize;
        // Eight pages a word: a release compares that part of the map (a
        // byte a page) with what is known exported, most of it equal.
        let known = self.exported.as_atomic_u64();
        for (w, known) in known.iter().enumerate().take(pages / 8).skip(first) {
            // SAFETY: the map is a byte per page of the region, in
            // page-aligned memory that lives as long as `self` (an `Arc`
            // here); word `w` covers pages below the served span's end, so
            // it lies inside it, and is aligned. Other nodes write it through the
            // transport meanwhile: an atomic load reads each byte as before
            // or after their write.
            let marks = unsafe { AtomicU64::from_ptr(map.as_ptr().add(w * 8).cast::<u64>()) }
                .load(Ordering::Acquire);
            if marks & !known.load(Ordering::Acquire) == 0 {
                continue;
            }
            for (b, mark) in marks.to_le_bytes().into_iter().enumerate() {
                take(w * 8 + b, mark);
            }
        }
        let tail = pages / 8 * 8;
        let mut marks = vec![0u8; pages - tail];
        map.read(tail as u64, &mut marks)
            .map_err(HeapError::Invalid)?;
        for (b, mark) in marks.into_iter().enumerate() {
            take(tail + b, mark);
        }
        Ok(())
    }

    /// Home page `page`, which another node has said it reads, becomes
    /// exported: from now on this node's writes to it are noticed, and
    /// if it is mapped here it is listed as written now, since this node
    /// may have written it after that node read it and before this point
    /// (one notice too many at worst). A page not mapped here has not
    /// been written here; the fault that maps it protects it
    /// (`protect_if_exported`). Both sides store their flag before they
    /// look at the other's (the export flag here, FETCHING there), so at
    /// least one of them protects the page.
    fn export_found(&self, page: usize) {
        self.exported(page).store(1, Ordering::SeqCst);
        loop {
            match self.state(page).load(Ordering::SeqCst) {
                // Being mapped here: its fault protects it, or it is HOME
                // in a moment.
                FETCHING => std::thread::yield_now(),
                HOME => break,
                _ => return,
            }
        }
        let _g = self.lock_page(page);
        self.protect_exported(page, 1);
        if self.written(page).swap(1, Ordering::AcqRel) == 0 {
            self.home_written.lock().unwrap().push(page as u32);
        }
    }

    /// Home memory in a file: home page `page`, just mapped here (not yet
    /// HOME, its faulting threads still asleep), is write-protected if
    /// another node has said it reads it, so this node's writes to it
    /// are noticed. See `export_found` for the order of the flags.
    pub(super) fn protect_if_exported(&self, page: usize) {
        if self.export_map.is_some() && self.exported(page).load(Ordering::SeqCst) != 0 {
            self.protect_exported(page, 1);
        }
    }

    /// At a release: the exported home pages written since the last one are
    /// protected again and logged. Caller holds `consistency`.
    pub(super) fn log_home_writes(&self) -> Result<(), HeapError> {
        self.discover_exports()?;
        // Write faults being resolved finish listing their pages first.
        while self.home_faults_active.load(Ordering::Acquire) != 0 {
            std::thread::yield_now();
        }
        let pages = std::mem::take(&mut *self.home_written.lock().unwrap());
        if pages.is_empty() {
            return Ok(());
        }
        let interval = self.home_intervals.fetch_add(1, Ordering::Relaxed) + 1;
        let mut still_hot = Vec::new();
        for &page in &pages {
            let page = page as usize;
            let _g = self.lock_unserved(page);
            if self.state(page).load(Ordering::Acquire) != HOME {
                // Its home moved away (apply_moves) after it was listed.
                continue;
            }
            while self.handling(page).load(Ordering::Acquire) != 0 {
                std::thread::yield_now();
            }
            if self.async_wp {
                // The scan that found it protected it again (a page listed
                // by a served write is found by that scan too).
                self.written(page).store(0, Ordering::Release);
                continue;
            }
            if self.stays_unprotected(page, interval) {
                // Written in every recent interval: listed (and logged) again
                // at the next release without a fault to find it.
                still_hot.push(page as u32);
                continue;
            }
            // Cleared before protecting: a write after this faults and
            // flags the page again for the next release.
            self.written(page).store(0, Ordering::Release);
            self.uffd
                .write_protect(self.page_ptr(page).cast(), self.page_size())
                .map_err(|e| HeapError::Userfaultfd(format!("UFFDIO_WRITEPROTECT: {e}")))?;
            self.protected(page).store(1, Ordering::Release);
        }
        self.home_written.lock().unwrap().extend(still_hot);
        // Before they are logged: a node that sees the notice reads the
        // touched map after it.
        for &page in &pages {
            self.mark_touched(page as usize);
        }
        self.notices.append(pages);
        Ok(())
    }

    /// Whether exported home page `page`, written in this release interval
    /// (`interval`), stays unprotected and listed for the next one. A page
    /// the home writes in interval after interval (data it updates every
    /// iteration, the stack `main` runs on) would otherwise cost a write
    /// fault each time; after `HOT_STREAK` intervals in a row it is taken
    /// as written in every interval (one notice each, no fault) and
    /// protected again every `HOT_RECHECK` intervals to see if it still is.
    pub(super) fn stays_unprotected(&self, page: usize, interval: u64) -> bool {
        const HOT_STREAK: u64 = 3;
        const HOT_RECHECK: u64 = 32;
        // Per page: the last interval it was listed in (high bits) and
        // how many in a row (low 16 bits).
        let record = &self.home_streaks.as_atomic_u64()[page];
        let r = record.load(Ordering::Relaxed);
        let (last, streak) = (r >> 16, r & 0xffff);
        let streak = if last + 1 == interval {
            (streak + 1).min(0xffff)
        } else {
            1
        };
        record.store(interval << 16 | streak, Ordering::Relaxed);
        streak >= HOT_STREAK && streak % HOT_RECHECK != 0
    }
}
