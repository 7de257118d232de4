//! Byte-granular dirty bitmap: one bit per byte of the shared region.
//!
//! Bit `o` (word `o / 64`, bit `o % 64`) says the byte at region offset `o`
//! was written since the last release. Marking is an atomic OR so threads of
//! one node never lose each other's bits. Writers must store the data first
//! and mark afterwards: a release takes (swaps out) a page's bits and then
//! reads the bytes, so a byte stored before its bit was taken is read fresh,
//! and one stored later is marked again for the next release.
//!
//! Beside the bits, one summary byte per 4 KiB says "this page has marks",
//! set after the bits, so that a release visits only pages that were
//! written instead of scanning the bitmap of every cached page.
//!
//! A third shadow, the *home* bytes, says which pages need no marks at all:
//! one byte per 4 KiB, 1 exactly while this node is home to the page (its
//! state is HOME, see region/), 0 otherwise. Releases only send marked
//! bytes of cached pages (a home's own writes to a page other nodes hold are
//! found by write-protect faults), so a store that lands in a home page is
//! not marked: compiled code reads the home byte after the store and skips
//! the marks when it is 1, and [`DirtyBitmap::mark`] skips home granules.
//! A page is HOME from the moment it is installed here as home until it
//! moves away (home migration, inside a barrier), so a thread between two
//! barriers that stored into a cached copy can never read 1 for it; a page
//! not present reads 0 (a store to it faults first, and lands in a home
//! page or in a cached copy that must be marked).
//!
//! All three live at fixed addresses derived from the data's address, so
//! that compiled code finds them with a shift and no table
//! (loco-pass/ABI.md): the bitmap byte of `addr` is at `addr >> 3`, its
//! summary byte at `addr >> 12`, its home byte at `(addr >> 12) +
//! DirtyBitmap::HOME_SHADOW_OFFSET`. Their windows are reserved for the
//! region's whole span; only what covers pages actually written (or, for
//! home bytes, present) gets backed by memory.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::sys::Mapping;

/// Granule of the summary and home bytes (fixed by the shadow layout,
/// whatever the page size).
const SUMMARY_SHIFT: u32 = 12;

pub struct DirtyBitmap {
    words: Mapping,
    summary: Mapping,
    home: Mapping,
    size: u64,
    /// Summary bytes (and home bytes) per page.
    summaries_per_page: usize,
}

impl DirtyBitmap {
    /// Where the home bytes are: the home byte of `addr` is at
    /// `(addr >> 12) + HOME_SHADOW_OFFSET` (loco-pass/ABI.md). 64 GiB:
    /// above the summary bytes of any region below `1 << 47` (at most
    /// `1 << 35`), clear of the bitmaps of regions based at or above
    /// 0.75 TiB, and far from where the kernel places mappings.
    pub const HOME_SHADOW_OFFSET: u64 = 1 << 36;

    /// The address of the home byte of `addr`.
    pub fn home_byte_address(addr: u64) -> u64 {
        (addr >> SUMMARY_SHIFT) + Self::HOME_SHADOW_OFFSET
    }

    /// The shadows of a region at `base` of `size` bytes (pages of
    /// `page_size` bytes), reserving room for `span` bytes of region.
    pub fn new(base: u64, size: u64, span: u64, page_size: u64) -> io::Result<DirtyBitmap> {
        let words = Mapping::reserve(base >> 3, (span >> 3) as usize)?;
        words.commit((size >> 3) as usize)?;
        let summary = Mapping::reserve(base >> SUMMARY_SHIFT, (span >> SUMMARY_SHIFT) as usize)?;
        summary.commit((size >> SUMMARY_SHIFT) as usize)?;
        let home = Mapping::reserve(
            Self::home_byte_address(base),
            (span >> SUMMARY_SHIFT) as usize,
        )?;
        home.commit((size >> SUMMARY_SHIFT) as usize)?;
        Ok(DirtyBitmap {
            words,
            summary,
            home,
            size,
            summaries_per_page: (page_size >> SUMMARY_SHIFT).max(1) as usize,
        })
    }

    fn summary(&self) -> &[AtomicU8] {
        self.summary
            .atomic_u8((self.size >> SUMMARY_SHIFT) as usize)
    }

    fn summaries(&self, page: usize) -> &[AtomicU8] {
        let k = self.summaries_per_page;
        &self.summary()[page * k..page * k + k]
    }

    fn home(&self) -> &[AtomicU8] {
        self.home.atomic_u8((self.size >> SUMMARY_SHIFT) as usize)
    }

    /// Sets the home bytes of `page`: `true` when it becomes HOME here
    /// (before the threads waiting for it run), `false` when it stops
    /// being HOME (before this node's threads may write it again).
    pub fn set_home(&self, page: usize, home: bool) {
        let k = self.summaries_per_page;
        for b in &self.home()[page * k..page * k + k] {
            b.store(home as u8, Ordering::Release);
        }
    }

    /// Whether the home byte of region offset `offset` says "home here".
    pub fn is_home(&self, offset: u64) -> bool {
        self.home()[(offset >> SUMMARY_SHIFT) as usize].load(Ordering::Acquire) != 0
    }

    /// Whether `page` may have marks (cheap; for skipping clean pages).
    pub fn page_has_marks(&self, page: usize) -> bool {
        self.summaries(page)
            .iter()
            .any(|s| s.load(Ordering::Acquire) != 0)
    }

    fn words(&self) -> &[AtomicU64] {
        self.words.atomic_u64((self.size >> 3) as usize)
    }

    /// Address of the first word, for compiled code that marks inline.
    pub fn base_ptr(&self) -> *mut u8 {
        self.words.ptr()
    }

    /// Marks bytes `offset .. offset+len` dirty, except those in pages
    /// this node is home to (their home bytes say so: see the top), which
    /// no release sends.
    #[inline]
    pub fn mark(&self, offset: u64, len: u64) {
        let end = offset + len;
        let mut at = offset;
        while at < end {
            // One 4 KiB granule at a time: its home byte, then its marks.
            let granule_end = ((at >> SUMMARY_SHIFT) + 1) << SUMMARY_SHIFT;
            let to = granule_end.min(end);
            if !self.is_home(at) {
                self.mark_granule(at, to);
            }
            at = to;
        }
    }

    /// Marks `offset .. end`, inside one 4 KiB granule.
    fn mark_granule(&self, offset: u64, end: u64) {
        let words = self.words();
        let mut at = offset;
        while at < end {
            let bit = at % 64;
            let n = (64 - bit).min(end - at);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            // Release: the data stored before this mark is visible to whoever
            // takes the bit. Never skip the OR when the bit looks set: the
            // store could still be in this core's store buffer while a
            // release takes the bit and reads the old byte.
            words[(at / 64) as usize].fetch_or(mask, Ordering::Release);
            at += n;
        }
        // After the bits: a release that sees the summary byte sees the bits.
        self.summary()[(offset >> SUMMARY_SHIFT) as usize].store(1, Ordering::Release);
    }

    /// Takes and clears the bits of `words_per_page` words starting at
    /// page `page`, into `out`. Returns whether any bit was set.
    pub fn take_page(&self, page: usize, out: &mut [u64]) -> bool {
        for s in self.summaries(page) {
            s.store(0, Ordering::Release);
        }
        // The clears above must be visible before the words are read. A
        // writer ORs its bits and then sets the summary byte; without the
        // fence x86 may hold our clear in the store buffer past the loads
        // below (store-load reordering): we read a word before the writer's
        // OR, the writer's summary store lands, then our clear overwrites
        // it, and the page carries marks no release will visit.
        std::sync::atomic::fence(Ordering::SeqCst);
        let words = self.words();
        let first = page * out.len();
        let mut any = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let w = &words[first + i];
            // A plain load first: most words of most pages are clean, and
            // swapping a zero word would dirty the bitmap's cache line for nothing.
            *slot = if w.load(Ordering::Relaxed) == 0 {
                0
            } else {
                w.swap(0, Ordering::Acquire)
            };
            any |= *slot != 0;
        }
        any
    }

    /// Whether the byte at `offset` is marked.
    pub fn is_marked(&self, offset: u64) -> bool {
        self.words()[(offset / 64) as usize].load(Ordering::Acquire) & (1 << (offset % 64)) != 0
    }
}

/// Calls `f(start, len)` for every run of consecutive set bits in `bits`.
pub fn for_each_run(bits: &[u64], mut f: impl FnMut(usize, usize)) {
    let total = bits.len() * 64;
    let mut i = 0;
    while i < total {
        let w = bits[i / 64] >> (i % 64);
        if w == 0 {
            i = (i / 64 + 1) * 64;
            continue;
        }
        let start = i + w.trailing_zeros() as usize;
        let mut end = start;
        while end < total {
            let bit = end % 64;
            let ones = ((!(bits[end / 64] >> bit)).trailing_zeros() as usize).min(64 - bit);
            end += ones;
            if ones < 64 - bit {
                break;
            }
        }
        f(start, end - start);
        i = end;
    }
}

/// Sets in `bits` every byte position where `a` and `b` differ.
pub fn mark_differences(a: &[u8], b: &[u8], bits: &mut [u64]) {
    for (w, word) in bits.iter_mut().enumerate() {
        *word |= differing_bytes(a, b, w);
    }
}

/// Clears the bits of bytes that are equal in `a` and `b`: a mark says a
/// byte was written, but only a byte that differs from what its home last
/// had (the twin) needs to travel. This also drops marks that outlived
/// their page (a store marked after an acquire had already sent the byte
/// and dropped the page): sending such a byte from a refetched copy could
/// undo a newer write another node made at the home.
pub fn keep_differences(a: &[u8], b: &[u8], bits: &mut [u64]) {
    for (w, word) in bits.iter_mut().enumerate() {
        if *word != 0 {
            *word &= differing_bytes(a, b, w);
        }
    }
}

/// Bit k set where bytes `64 * block + k` of `a` and `b` differ (eight
/// bytes at a time: a release compares whole pages with their twins).
fn differing_bytes(a: &[u8], b: &[u8], block: usize) -> u64 {
    let start = block * 64;
    let end = (start + 64).min(a.len()).min(b.len());
    let mut mask = 0u64;
    let mut at = start;
    while at + 8 <= end {
        let x = u64::from_le_bytes(a[at..at + 8].try_into().unwrap())
            ^ u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        if x != 0 {
            const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
            // The top bit of each byte of x that is not zero.
            let top = (((x & LOW7) + LOW7) | x) & !LOW7;
            // Those eight bits gathered into one byte, byte k's as bit k.
            let byte_bits = (top >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
            mask |= byte_bits << (at - start);
        }
        at += 8;
    }
    for i in at..end {
        if a[i] != b[i] {
            mask |= 1 << (i - start);
        }
    }
    mask
}

/// Longest gap between two runs that is sent along with them instead of
/// cutting the run (a run header on the wire is 12 bytes).
pub const MAX_BRIDGED_GAP: usize = 12;

/// Joins runs of `bits` separated by at most [`MAX_BRIDGED_GAP`] bytes
/// that are all set in `written` (bytes this node wrote, whose values
/// happen to be the old ones): sending those costs less than another run,
/// and they are this node's writes, so no other node's write to them can
/// be overwritten without a race. Gaps with any byte this node did not
/// write are never sent: another node may be writing it (false sharing).
/// A mark that outlived its page (see `keep_differences`) is no exception:
/// its thread marks before its next release, so the release that takes the
/// mark comes before any other node may write that byte without a race.
pub fn bridge_written_gaps(bits: &mut [u64], written: &[u64]) {
    // Inside a word this node wrote all of (a page filled with values
    // whose bytes often keep their old ones: hundreds of runs), gaps are
    // filled eight bytes at a time; the rest gap by gap.
    for (word, &w) in bits.iter_mut().zip(written) {
        if w == u64::MAX && *word != 0 {
            let low = word.trailing_zeros();
            let high = 63 - word.leading_zeros();
            let inner = (u64::MAX >> (63 - high)) & (u64::MAX << low);
            // A zero-run longer than MAX_BRIDGED_GAP survives that many
            // shifts; shorter ones vanish.
            let mut long = inner & !*word;
            for _ in 0..MAX_BRIDGED_GAP {
                long &= long >> 1;
            }
            if long == 0 {
                *word |= inner;
            }
        }
    }
    let is_set = |v: &[u64], i: usize| v[i / 64] & (1 << (i % 64)) != 0;
    let runs = bits.to_vec();
    let mut previous_end: Option<usize> = None;
    for_each_run(&runs, |start, len| {
        if let Some(end) = previous_end {
            if start - end <= MAX_BRIDGED_GAP && (end..start).all(|i| is_set(written, i)) {
                for i in end..start {
                    bits[i / 64] |= 1 << (i % 64);
                }
            }
        }
        previous_end = Some(start + len);
    });
}

/// Per 8-byte word of `page`, a mask of its bytes that differ from
/// `twin` (bit j: byte j of the word). Both have the same length, a
/// multiple of 8.
pub fn changed_byte_masks<'a>(page: &'a [u8], twin: &'a [u8]) -> impl Iterator<Item = u8> + 'a {
    page.chunks_exact(8)
        .zip(twin.chunks_exact(8))
        .map(|(a, b)| {
            let d = u64::from_le_bytes(a.try_into().unwrap())
                ^ u64::from_le_bytes(b.try_into().unwrap());
            if d == 0 {
                return 0;
            }
            // Each byte's bits folded into its lowest, then gathered.
            let mut f = d | (d >> 4);
            f |= f >> 2;
            f |= f >> 1;
            let low = f & 0x0101_0101_0101_0101;
            (low.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Unit tests run in one process: each bitmap gets its own imaginary region.
    const TEST_BASE: u64 = 0x5000_0000_0000;

    #[test]
    fn keep_differences_drops_marks_of_unchanged_bytes() {
        let twin = vec![7u8; 128];
        let mut page = twin.clone();
        page[3] = 1;
        page[70] = 2;
        let mut bits = vec![0u64; 2];
        // Marked: 3 (changed), 4 (unchanged), 70 (changed), 127 (unchanged).
        bits[0] = (1 << 3) | (1 << 4);
        bits[1] = (1 << 6) | (1 << 63);
        keep_differences(&page, &twin, &mut bits);
        assert_eq!(bits, vec![1 << 3, 1 << 6]);
    }

    fn runs(bits: &[u64]) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for_each_run(bits, |s, l| v.push((s, l)));
        v
    }

    #[test]
    fn runs_cross_word_boundaries() {
        let mut bits = [0u64; 4];
        for i in 60..70 {
            bits[i / 64] |= 1 << (i % 64);
        }
        bits[3] |= 1 << 63;
        assert_eq!(runs(&bits), vec![(60, 10), (255, 1)]);
        assert_eq!(runs(&[u64::MAX, u64::MAX]), vec![(0, 128)]);
        assert_eq!(runs(&[0, 0]), vec![]);
    }

    #[test]
    fn mark_and_take_round_trip() {
        let b = DirtyBitmap::new(TEST_BASE, 1 << 20, 1 << 20, 4096).unwrap();
        b.mark(4096 + 3, 2);
        b.mark(4096 + 60, 70);
        b.mark(3 * 4096 + 4095, 1);
        let mut out = [0u64; 64];
        assert!(b.page_has_marks(1) && b.page_has_marks(3) && !b.page_has_marks(2));
        assert!(b.take_page(1, &mut out));
        assert!(!b.page_has_marks(1));
        assert_eq!(runs(&out), vec![(3, 2), (60, 70)]);
        assert!(!b.take_page(1, &mut out), "take clears the bits");
        assert!(b.take_page(3, &mut out));
        assert_eq!(runs(&out), vec![(4095, 1)]);
    }

    #[test]
    fn concurrent_marks_of_neighbouring_bytes_all_survive() {
        let b = DirtyBitmap::new(TEST_BASE + (1 << 30), 1 << 16, 1 << 16, 4096).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let b = &b;
                // Thread t marks bytes t, t+4, t+8, ...: every word is shared.
                s.spawn(move || (0..4096 / 4).for_each(|i| b.mark(i * 4 + t, 1)));
            }
        });
        let mut out = [0u64; 64];
        b.take_page(0, &mut out);
        assert!(out.iter().all(|&w| w == u64::MAX));
    }

    /// A writer marks a byte while a release takes the page, both let go at
    /// the same instant, many times over. Whatever the interleaving, the
    /// mark must end up either taken or still visible through the summary
    /// byte: bits left behind a clear summary are bytes no release sends.
    /// (Store-load reordering of take_page's summary clear and word loads
    /// lost one in a few thousand rounds here before the fence.)
    #[test]
    fn a_mark_racing_a_take_is_taken_or_left_visible() {
        use std::sync::atomic::AtomicUsize;
        let b = DirtyBitmap::new(TEST_BASE + (1 << 31), 1 << 16, 1 << 16, 4096).unwrap();
        const ROUNDS: usize = 200_000;
        let go = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let mut lost = 0;
        std::thread::scope(|s| {
            let (b, go, done) = (&b, &go, &done);
            s.spawn(move || {
                for round in 1..=ROUNDS {
                    while go.load(Ordering::Acquire) < round {
                        std::hint::spin_loop();
                    }
                    b.mark(3, 1);
                    done.fetch_add(1, Ordering::AcqRel);
                }
            });
            let mut taken = [0u64; 64];
            let mut rest = [0u64; 64];
            for round in 1..=ROUNDS {
                go.store(round, Ordering::Release);
                let took = b.take_page(0, &mut taken);
                while done.load(Ordering::Acquire) < round {
                    std::hint::spin_loop();
                }
                let visible = b.page_has_marks(0);
                let left = b.take_page(0, &mut rest);
                if !took && left && !visible {
                    lost += 1;
                }
            }
        });
        assert_eq!(
            lost, 0,
            "marks left behind a clear summary byte in {lost} of {ROUNDS} rounds"
        );
    }

    /// Home pages take no marks, and their home bytes sit where compiled
    /// code reads them (loco-pass/ABI.md).
    #[test]
    fn home_pages_take_no_marks() {
        let base = TEST_BASE + (3 << 30);
        let b = DirtyBitmap::new(base, 1 << 20, 1 << 20, 4096).unwrap();
        let home_byte = |offset: u64| {
            let at = DirtyBitmap::home_byte_address(base + offset) as *const u8;
            // SAFETY: the home byte of a region offset below its size is
            // committed memory of `b`'s home shadow, alive while `b` is.
            unsafe { std::ptr::read_volatile(at) }
        };
        assert_eq!(home_byte(4096 + 100), 0);
        b.set_home(1, true);
        assert_eq!(
            (home_byte(4095), home_byte(4096), home_byte(8191)),
            (0, 1, 1)
        );
        assert!(b.is_home(4096) && !b.is_home(8192));
        // A write across pages 0, 1 (home) and 2.
        b.mark(4094, 4100);
        assert!(b.is_marked(4094) && b.is_marked(4095));
        assert!(!b.is_marked(4096) && !b.is_marked(8191));
        assert!(b.is_marked(8192) && b.is_marked(8193) && !b.is_marked(8194));
        assert!(b.page_has_marks(0) && !b.page_has_marks(1) && b.page_has_marks(2));
        b.set_home(1, false);
        assert_eq!(home_byte(4096), 0);
        b.mark(4096, 1);
        assert!(b.is_marked(4096) && b.page_has_marks(1));
    }

    /// With pages larger than 4 KiB, every granule of a home page says so.
    #[test]
    fn home_bytes_cover_large_pages() {
        let b = DirtyBitmap::new(TEST_BASE + (5 << 30), 1 << 20, 1 << 20, 16384).unwrap();
        b.set_home(1, true);
        assert!(!b.is_home(16383));
        assert!((16384..32768).step_by(4096).all(|o| b.is_home(o)));
        assert!(!b.is_home(32768));
        b.mark(16384, 16384);
        assert!(!b.page_has_marks(1));
    }

    proptest! {
        /// The word-at-a-time comparison marks and keeps exactly the bytes
        /// a byte-by-byte one does (pages whose bytes differ in any
        /// pattern, a tail shorter than a block included).
        #[test]
        fn differences_are_found_byte_for_byte(
            a in proptest::collection::vec(0u8..4, 200),
            b in proptest::collection::vec(0u8..4, 200),
            marks in proptest::collection::vec(any::<u64>(), 4),
        ) {
            let mut marked = [0u64; 4];
            mark_differences(&a, &b, &mut marked);
            let mut kept = [marks[0], marks[1], marks[2], marks[3]];
            keep_differences(&a, &b, &mut kept);
            for i in 0..256 {
                let (m, k) = (marked[i / 64] >> (i % 64) & 1, kept[i / 64] >> (i % 64) & 1);
                let differs = i < 200 && a[i] != b[i];
                prop_assert_eq!(m == 1, differs, "mark of byte {}", i);
                let was = marks[i / 64] >> (i % 64) & 1 == 1;
                prop_assert_eq!(k == 1, was && differs, "kept byte {}", i);
            }
        }

        /// Bridging only adds written bytes, only inside short gaps, and
        /// leaves no short all-written gap between two runs.
        #[test]
        fn bridging_adds_only_written_bytes_in_short_gaps(
            // Sparse enough that gaps both shorter and longer than
            // MAX_BRIDGED_GAP are common.
            changed in proptest::collection::vec(proptest::bool::weighted(0.15), 256),
            extra in proptest::collection::vec(any::<bool>(), 256),
            whole in proptest::collection::vec(any::<bool>(), 4),
        ) {
            let mut bits = [0u64; 4];
            let mut written = [0u64; 4];
            for i in 0..256 {
                if changed[i] { bits[i / 64] |= 1 << (i % 64); }
                // Some words written whole (the word-at-a-time path).
                if changed[i] || extra[i] || whole[i / 64] { written[i / 64] |= 1 << (i % 64); }
            }
            let before = bits;
            bridge_written_gaps(&mut bits, &written);
            for i in 0..256 {
                let (b, a, w) = (bits[i / 64] >> (i % 64) & 1, before[i / 64] >> (i % 64) & 1, written[i / 64] >> (i % 64) & 1);
                prop_assert!(a <= b, "byte {} lost", i);
                prop_assert!(b <= w, "byte {} sent but not written", i);
                if b == 1 && a == 0 {
                    // An added byte lies in a short gap between two runs.
                    let set = |j: usize| before[j / 64] >> (j % 64) & 1 == 1;
                    let left = (0..i).rev().find(|&j| set(j));
                    let right = (i + 1..256).find(|&j| set(j));
                    prop_assert!(
                        matches!((left, right), (Some(l), Some(r)) if r - l - 1 <= MAX_BRIDGED_GAP),
                        "byte {} added outside a short gap", i
                    );
                }
            }
            let mut out: Vec<(usize, usize)> = Vec::new();
            for_each_run(&bits, |s, l| out.push((s, l)));
            for pair in out.windows(2) {
                let (end, next) = (pair[0].0 + pair[0].1, pair[1].0);
                let all_written = (end..next).all(|i| written[i / 64] >> (i % 64) & 1 == 1);
                prop_assert!(!(next - end <= MAX_BRIDGED_GAP && all_written), "gap {}..{} left", end, next);
            }
        }

        #[test]
        fn runs_and_differences_agree_with_a_byte_model(
            a in proptest::collection::vec(any::<u8>(), 256),
            flips in proptest::collection::vec((0usize..256, 1u8..=255), 0..40),
        ) {
            let mut b = a.clone();
            for (i, x) in &flips {
                b[*i] ^= x;
            }
            let mut bits = [0u64; 4];
            mark_differences(&a, &b, &mut bits);
            let mut covered = vec![false; 256];
            for_each_run(&bits, |s, l| covered[s..s + l].iter_mut().for_each(|c| *c = true));
            for i in 0..256 {
                prop_assert_eq!(covered[i], a[i] != b[i], "byte {}", i);
            }
        }
    }

    #[test]
    fn changed_byte_masks_name_exactly_the_differing_bytes() {
        let mut rng = loco_testkit::Rng(7);
        for _ in 0..2000 {
            let twin: Vec<u8> = (0..64).map(|_| rng.below(4) as u8).collect();
            let mut page = twin.clone();
            for b in page.iter_mut() {
                if rng.below(3) == 0 {
                    *b = b.wrapping_add(1 + rng.below(255) as u8);
                }
            }
            let masks: Vec<u8> = changed_byte_masks(&page, &twin).collect();
            for (i, (p, t)) in page.iter().zip(&twin).enumerate() {
                let named = masks[i / 8] & (1 << (i % 8)) != 0;
                assert_eq!(named, p != t, "byte {i}");
            }
        }
    }
}
