//! Owning wrappers around the libibverbs objects the verbs backend uses.
//!
//! Every wrapper owns one verbs object and releases it exactly once in `Drop`.
//! A child holds an `Arc` of its parent (a queue pair its protection domain
//! and completion queue, a protection domain its device context, a memory
//! registration its protection domain and the memory itself), so the objects
//! are always torn down in the order libibverbs requires: queue pairs, then
//! completion queues, then memory registrations, then the protection domain,
//! then the device, and registered memory is unmapped only after it has been
//! deregistered.
//!
//! All `unsafe` of the backend lives here or in `post_send`/`poll`; each
//! block says why it holds.

use std::ffi::CStr;
use std::io;
use std::os::raw::c_int;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use rdma_sys::*;

use crate::{MemoryRegion, Result, TransportError};

/// `IBV_LINK_LAYER_ETHERNET` from <infiniband/verbs.h>: an anonymous enum there,
/// so bindgen's allowlist does not export it.
pub(super) const LINK_LAYER_ETHERNET: u8 = 2;

/// Turns a failed verbs call into the error the caller sees.
pub(super) fn verbs_error(call: &str, context: &str, err: io::Error) -> TransportError {
    if context.is_empty() {
        TransportError::Verbs(format!("{call} failed: {err}"))
    } else {
        TransportError::Verbs(format!("{call} ({context}) failed: {err}"))
    }
}

/// The error of a verbs call that returns an int: most return the errno value
/// itself, a few return -1 and set errno.
fn rc_error(rc: c_int) -> io::Error {
    if rc > 0 {
        io::Error::from_raw_os_error(rc)
    } else {
        io::Error::last_os_error()
    }
}

fn check_rc(rc: c_int, call: &str, context: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(verbs_error(call, context, rc_error(rc)))
    }
}

/// Copies a static string libibverbs returned (a `*_str` function).
fn static_text(text: *const std::os::raw::c_char, fallback: impl FnOnce() -> String) -> String {
    if text.is_null() {
        return fallback();
    }
    // SAFETY: the `ibv_*_str` functions return NULL or a pointer to a static
    // NUL-terminated string; it is copied out at once.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// Text for a work completion status, from libibverbs.
pub(super) fn wc_status_text(status: ibv_wc_status::Type) -> String {
    // SAFETY: ibv_wc_status_str accepts any value (it answers "unknown" for
    // values it does not know) and returns a static string.
    let text = unsafe { ibv_wc_status_str(status) };
    static_text(text, || format!("status {status}"))
}

/// Text for a port state, from libibverbs.
pub(super) fn port_state_text(state: ibv_port_state::Type) -> String {
    // SAFETY: as for ibv_wc_status_str: any value, static result.
    let text = unsafe { ibv_port_state_str(state) };
    static_text(text, || format!("state {state}"))
}

/// The array ibv_get_device_list returns; freed on drop.
struct DeviceList {
    list: NonNull<*mut ibv_device>,
    len: usize,
}

impl DeviceList {
    /// `wanted` only serves the error message.
    fn get(wanted: Option<&str>) -> Result<DeviceList> {
        let mut num: c_int = 0;
        // SAFETY: `num` is a valid out-pointer for the duration of the call.
        let list = unsafe { ibv_get_device_list(&mut num) };
        match NonNull::new(list) {
            Some(list) => Ok(DeviceList {
                list,
                len: usize::try_from(num).unwrap_or(0),
            }),
            None => Err(TransportError::NoDevice(format!(
                "ibv_get_device_list cannot list RDMA devices{}: {} (usually: this machine \
                 has no RDMA device or driver); use transport = \"tcp\" in the cluster \
                 description",
                wanted
                    .map(|w| format!(" to find {w:?} (rdma_device in the cluster description)"))
                    .unwrap_or_default(),
                io::Error::last_os_error()
            ))),
        }
    }

    fn devices(&self) -> Vec<*mut ibv_device> {
        // SAFETY: ibv_get_device_list returned an array of `len` device
        // pointers (followed by a NULL); it stays valid until freed in Drop,
        // and we copy the pointers out instead of keeping a borrow.
        unsafe { std::slice::from_raw_parts(self.list.as_ptr(), self.len) }.to_vec()
    }
}

impl Drop for DeviceList {
    fn drop(&mut self) {
        // SAFETY: the list came from ibv_get_device_list and is freed once.
        // Contexts opened from its devices stay valid after the list is freed
        // (ibv_get_device_list(3)).
        unsafe { ibv_free_device_list(self.list.as_ptr()) }
    }
}

fn device_name(device: *mut ibv_device) -> String {
    // SAFETY: `device` is an entry of a live device list; the name it returns
    // is a NUL-terminated string inside the device structure.
    let name = unsafe { ibv_get_device_name(device) };
    if name.is_null() {
        return "(unnamed)".into();
    }
    // SAFETY: non-null and NUL-terminated (see above); copied out at once.
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

/// An open RDMA device.
pub(super) struct Context {
    ptr: NonNull<ibv_context>,
    name: String,
}

// SAFETY: libibverbs is thread safe: a device context may be used from any
// thread, concurrently (libibverbs(7), "all verbs are thread safe"). The
// pointer is owned by this value and closed once, in Drop.
unsafe impl Send for Context {}
// SAFETY: see Send; no method hands out anything that aliases mutable state.
unsafe impl Sync for Context {}

impl Context {
    /// Opens the device called `wanted`, or the first device when `None`.
    pub fn open(wanted: Option<&str>) -> Result<Arc<Context>> {
        let list = DeviceList::get(wanted)?;
        let devices = list.devices();
        let names: Vec<String> = devices.iter().map(|&d| device_name(d)).collect();
        let index = match wanted {
            _ if devices.is_empty() => {
                return Err(TransportError::NoDevice(format!(
                    "ibv_get_device_list lists no RDMA device on this machine{}; use \
                     transport = \"tcp\" in the cluster description",
                    wanted
                        .map(|w| format!(", but the cluster description asks for {w:?}"))
                        .unwrap_or_default()
                )))
            }
            None => 0,
            Some(w) => names.iter().position(|n| n == w).ok_or_else(|| {
                TransportError::NoDevice(format!(
                    "RDMA device {w:?} (rdma_device in the cluster description) does not \
                     exist on this machine; it has: {}",
                    names.join(", ")
                ))
            })?,
        };
        let name = names[index].clone();
        // SAFETY: the device pointer comes from the live list `list`.
        let ctx = unsafe { ibv_open_device(devices[index]) };
        let ptr = NonNull::new(ctx)
            .ok_or_else(|| verbs_error("ibv_open_device", &name, io::Error::last_os_error()))?;
        // The context stays valid after the list is freed (dropped here).
        drop(list);
        Ok(Arc::new(Context { ptr, name }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn query_device(&self) -> Result<ibv_device_attr> {
        // SAFETY: ibv_device_attr is a plain C struct of integers and arrays;
        // all zeroes is a valid value.
        let mut attr: ibv_device_attr = unsafe { std::mem::zeroed() };
        // SAFETY: the context is open; `attr` is a valid out-pointer.
        let rc = unsafe { ibv_query_device(self.ptr.as_ptr(), &mut attr) };
        check_rc(rc, "ibv_query_device", &self.name)?;
        Ok(attr)
    }

    pub fn query_port(&self, port: u8) -> Result<ibv_port_attr> {
        // SAFETY: ibv_port_attr is a plain C struct of integers; all zeroes is
        // valid (and is what the C inline wrapper memsets it to).
        let mut attr: ibv_port_attr = unsafe { std::mem::zeroed() };
        // SAFETY: the context is open; `attr` is a valid out-pointer of the
        // full current struct, which is what ___ibv_query_port (rdma-sys's
        // port of the C inline wrapper that ibv_query_port is a macro for)
        // passes on together with its size.
        let rc = unsafe { ___ibv_query_port(self.ptr.as_ptr(), port, &mut attr) };
        check_rc(rc, "ibv_query_port", &format!("{} port {port}", self.name))?;
        Ok(attr)
    }

    pub fn query_gid(&self, port: u8, index: u8) -> Result<[u8; 16]> {
        let mut gid = ibv_gid { raw: [0; 16] };
        // SAFETY: the context is open; `gid` is a valid out-pointer.
        let rc = unsafe { ibv_query_gid(self.ptr.as_ptr(), port, c_int::from(index), &mut gid) };
        check_rc(
            rc,
            "ibv_query_gid",
            &format!("{} port {port} gid_index {index}", self.name),
        )?;
        // SAFETY: both union members are plain bytes; every bit pattern is a
        // valid [u8; 16].
        Ok(unsafe { gid.raw })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was opened by ibv_open_device and is closed once;
        // every child object holds an Arc of it, so none is left.
        let rc = unsafe { ibv_close_device(self.ptr.as_ptr()) };
        report_drop_failure(rc, "ibv_close_device", &self.name);
    }
}

/// A failure while releasing a verbs object cannot be returned from Drop;
/// say so on stderr rather than hide it.
fn report_drop_failure(rc: c_int, call: &str, context: &str) {
    if rc != 0 {
        eprintln!("loco-rdma: {call} ({context}) failed: {}", rc_error(rc));
    }
}

/// A protection domain: every memory registration and queue pair of the node.
pub(super) struct ProtectionDomain {
    ptr: NonNull<ibv_pd>,
    ctx: Arc<Context>,
}

// SAFETY: as for Context: verbs objects may be used from any thread; the
// pointer is owned and deallocated once.
unsafe impl Send for ProtectionDomain {}
// SAFETY: see Send.
unsafe impl Sync for ProtectionDomain {}

impl ProtectionDomain {
    pub fn alloc(ctx: &Arc<Context>) -> Result<Arc<ProtectionDomain>> {
        // SAFETY: the context is open (we hold an Arc of it).
        let pd = unsafe { ibv_alloc_pd(ctx.ptr.as_ptr()) };
        let ptr = NonNull::new(pd)
            .ok_or_else(|| verbs_error("ibv_alloc_pd", &ctx.name, io::Error::last_os_error()))?;
        Ok(Arc::new(ProtectionDomain {
            ptr,
            ctx: ctx.clone(),
        }))
    }
}

impl Drop for ProtectionDomain {
    fn drop(&mut self) {
        // SAFETY: allocated by ibv_alloc_pd and deallocated once; queue pairs
        // and memory registrations hold an Arc of it, so none is left.
        let rc = unsafe { ibv_dealloc_pd(self.ptr.as_ptr()) };
        report_drop_failure(rc, "ibv_dealloc_pd", &self.ctx.name);
    }
}

/// Access rights of a memory registration.
pub(super) fn access_local() -> ibv_access_flags {
    ibv_access_flags::IBV_ACCESS_LOCAL_WRITE
}

pub(super) fn access_remote() -> ibv_access_flags {
    ibv_access_flags::IBV_ACCESS_LOCAL_WRITE
        | ibv_access_flags::IBV_ACCESS_REMOTE_READ
        | ibv_access_flags::IBV_ACCESS_REMOTE_WRITE
        | ibv_access_flags::IBV_ACCESS_REMOTE_ATOMIC
}

/// A [`MemoryRegion`] registered with the NIC (pinned; has an lkey and rkey).
pub(super) struct MemoryRegistration {
    ptr: NonNull<ibv_mr>,
    lkey: u32,
    rkey: u32,
    pd: Arc<ProtectionDomain>,
    /// Deregistered before this is dropped (field order), so the NIC never
    /// touches memory that has been unmapped.
    memory: Arc<MemoryRegion>,
}

// SAFETY: as for Context; the ibv_mr is only read (lkey/rkey copied at
// creation) and deregistered once.
unsafe impl Send for MemoryRegistration {}
// SAFETY: see Send.
unsafe impl Sync for MemoryRegistration {}

impl MemoryRegistration {
    pub fn new(
        pd: &Arc<ProtectionDomain>,
        memory: Arc<MemoryRegion>,
        access: ibv_access_flags,
    ) -> Result<MemoryRegistration> {
        // ibv_reg_mr's access argument is a C int; the flags all fit.
        let access = access.0 as c_int;
        // SAFETY: the protection domain is live (we hold an Arc); the range is
        // the region's own memory, mapped for as long as `memory` lives, which
        // this value keeps alive until after ibv_dereg_mr. Registered memory is
        // only ever touched through raw pointers (MemoryRegion never hands out
        // references), so the NIC writing it cannot break Rust's aliasing rules.
        let mr = unsafe {
            ibv_reg_mr(
                pd.ptr.as_ptr(),
                memory.as_ptr().cast(),
                memory.len(),
                access,
            )
        };
        let Some(ptr) = NonNull::new(mr) else {
            let err = io::Error::last_os_error();
            let hint = match err.raw_os_error() {
                Some(libc::ENOMEM) | Some(libc::EPERM) => {
                    "; registered memory is pinned: check the locked-memory limit (ulimit -l)"
                }
                _ => "",
            };
            return Err(TransportError::Verbs(format!(
                "ibv_reg_mr ({} bytes at {:p} on {}) failed: {err}{hint}",
                memory.len(),
                memory.as_ptr(),
                pd.ctx.name
            )));
        };
        // SAFETY: ibv_reg_mr returned a valid ibv_mr, which stays valid until
        // ibv_dereg_mr; lkey and rkey are plain integers read once.
        let (lkey, rkey) = unsafe { ((*ptr.as_ptr()).lkey, (*ptr.as_ptr()).rkey) };
        Ok(MemoryRegistration {
            ptr,
            lkey,
            rkey,
            pd: pd.clone(),
            memory,
        })
    }

    pub fn lkey(&self) -> u32 {
        self.lkey
    }

    pub fn rkey(&self) -> u32 {
        self.rkey
    }

    pub fn addr(&self) -> u64 {
        self.memory.as_ptr() as u64
    }

    pub fn memory(&self) -> &MemoryRegion {
        &self.memory
    }
}

impl Drop for MemoryRegistration {
    fn drop(&mut self) {
        // SAFETY: registered by ibv_reg_mr and deregistered once; the memory
        // is still mapped (the Arc is dropped after this).
        let rc = unsafe { ibv_dereg_mr(self.ptr.as_ptr()) };
        report_drop_failure(rc, "ibv_dereg_mr", &self.pd.ctx.name);
    }
}

/// A completion queue.
pub(super) struct CompletionQueue {
    ptr: NonNull<ibv_cq>,
    ctx: Arc<Context>,
}

// SAFETY: as for Context; polling is done by one thread at a time (the owner
// of the peer's lock).
unsafe impl Send for CompletionQueue {}
// SAFETY: see Send.
unsafe impl Sync for CompletionQueue {}

impl CompletionQueue {
    pub fn create(ctx: &Arc<Context>, entries: u32) -> Result<Arc<CompletionQueue>> {
        let entries = c_int::try_from(entries).unwrap_or(c_int::MAX);
        // SAFETY: the context is open; no completion channel (we poll).
        let cq = unsafe {
            ibv_create_cq(
                ctx.ptr.as_ptr(),
                entries,
                ptr::null_mut(),
                ptr::null_mut(),
                0,
            )
        };
        let ptr = NonNull::new(cq)
            .ok_or_else(|| verbs_error("ibv_create_cq", &ctx.name, io::Error::last_os_error()))?;
        Ok(Arc::new(CompletionQueue {
            ptr,
            ctx: ctx.clone(),
        }))
    }

    /// Takes one completion off the queue, if there is one.
    pub fn poll(&self) -> Result<Option<ibv_wc>> {
        // SAFETY: ibv_wc is a plain C struct (integers, a union of integers);
        // all zeroes is a valid value.
        let mut wc: ibv_wc = unsafe { std::mem::zeroed() };
        // SAFETY: the queue is live; `wc` has room for the one entry asked for.
        let n = unsafe { ibv_poll_cq(self.ptr.as_ptr(), 1, &mut wc) };
        match n {
            0 => Ok(None),
            1 => Ok(Some(wc)),
            _ => Err(TransportError::Verbs(format!(
                "ibv_poll_cq ({}) failed: it returned {n}",
                self.ctx.name
            ))),
        }
    }
}

impl Drop for CompletionQueue {
    fn drop(&mut self) {
        // SAFETY: created by ibv_create_cq and destroyed once; the queue pair
        // using it holds an Arc of it and is destroyed first.
        let rc = unsafe { ibv_destroy_cq(self.ptr.as_ptr()) };
        report_drop_failure(rc, "ibv_destroy_cq", &self.ctx.name);
    }
}

/// Where a queue pair's peer is, as exchanged through the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub qp_num: u32,
    pub lid: u16,
    /// First packet sequence number (24 bits).
    pub psn: u32,
    /// The port's active MTU (an `ibv_mtu` value).
    pub mtu: u32,
    pub gid: [u8; 16],
}

/// This side of a connection: what the RTR/RTS transitions need locally.
#[derive(Debug, Clone, Copy)]
pub(super) struct LocalPort {
    pub port: u8,
    pub gid_index: u8,
    /// RoCE (Ethernet link layer): address by GID through a GRH.
    pub global: bool,
    pub max_rd_atomic: u8,
    pub max_dest_rd_atomic: u8,
}

/// Connection attributes of the RC queue pairs: the values usual for RC.
const TIMEOUT: u8 = 14; // 4.096 us * 2^14 = 67 ms per try
const RETRY_CNT: u8 = 7;
const RNR_RETRY: u8 = 7;
const MIN_RNR_TIMER: u8 = 12;
const HOP_LIMIT: u8 = 64;

/// The path MTU both ends can use.
pub(super) fn path_mtu(local: u32, remote: u32) -> u32 {
    local.min(remote).max(ibv_mtu::IBV_MTU_256)
}

/// A reliable-connected queue pair with its send completion queue.
pub(super) struct QueuePair {
    ptr: NonNull<ibv_qp>,
    qp_num: u32,
    /// What the device granted (at least what was asked).
    max_send_wr: u32,
    cq: Arc<CompletionQueue>,
    pd: Arc<ProtectionDomain>,
}

// SAFETY: as for Context; posting is done by one thread at a time (the owner
// of the peer's lock).
unsafe impl Send for QueuePair {}
// SAFETY: see Send.
unsafe impl Sync for QueuePair {}

impl QueuePair {
    pub fn create_rc(
        pd: &Arc<ProtectionDomain>,
        cq: Arc<CompletionQueue>,
        max_send_wr: u32,
    ) -> Result<QueuePair> {
        // SAFETY: ibv_qp_init_attr is a plain C struct of integers and raw
        // pointers; all zeroes (null pointers) is a valid value.
        let mut init: ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        init.send_cq = cq.ptr.as_ptr();
        init.recv_cq = cq.ptr.as_ptr();
        init.cap = ibv_qp_cap {
            max_send_wr,
            // Nothing is ever received (one-sided operations only), but some
            // devices refuse an empty receive queue.
            max_recv_wr: 1,
            max_send_sge: 1,
            max_recv_sge: 1,
            max_inline_data: 0,
        };
        init.qp_type = ibv_qp_type::IBV_QPT_RC;
        // Only the work requests we flag are signaled.
        init.sq_sig_all = 0;
        // SAFETY: the protection domain and completion queue are live (Arcs
        // held by the returned value); `init` is a valid in/out pointer.
        let qp = unsafe { ibv_create_qp(pd.ptr.as_ptr(), &mut init) };
        let ptr = NonNull::new(qp).ok_or_else(|| {
            verbs_error("ibv_create_qp", &pd.ctx.name, io::Error::last_os_error())
        })?;
        // SAFETY: a valid queue pair; qp_num is a plain integer read once.
        let qp_num = unsafe { (*ptr.as_ptr()).qp_num };
        Ok(QueuePair {
            ptr,
            qp_num,
            max_send_wr: init.cap.max_send_wr.max(1),
            cq,
            pd: pd.clone(),
        })
    }

    pub fn qp_num(&self) -> u32 {
        self.qp_num
    }

    pub fn max_send_wr(&self) -> u32 {
        self.max_send_wr
    }

    pub fn cq(&self) -> &CompletionQueue {
        &self.cq
    }

    fn modify(&self, attr: &mut ibv_qp_attr, mask: ibv_qp_attr_mask, what: &str) -> Result<()> {
        // The mask is a C int; all IBV_QP_* bits fit.
        let mask = mask.0 as c_int;
        // SAFETY: the queue pair is live; `attr` is a valid pointer for the call.
        let rc = unsafe { ibv_modify_qp(self.ptr.as_ptr(), attr, mask) };
        check_rc(rc, "ibv_modify_qp", what)
    }

    fn zeroed_attr() -> ibv_qp_attr {
        // SAFETY: ibv_qp_attr is a plain C struct of integers (the GID union
        // included); all zeroes is a valid value.
        unsafe { std::mem::zeroed() }
    }

    /// RESET -> INIT: bound to the port, remote peers may read, write and
    /// update memory atomically (subject to each registration's rights).
    pub fn to_init(&self, port: u8, peer: usize) -> Result<()> {
        let mut attr = Self::zeroed_attr();
        attr.qp_state = ibv_qp_state::IBV_QPS_INIT;
        attr.pkey_index = 0;
        attr.port_num = port;
        attr.qp_access_flags = access_remote().0;
        self.modify(
            &mut attr,
            ibv_qp_attr_mask::IBV_QP_STATE
                | ibv_qp_attr_mask::IBV_QP_PKEY_INDEX
                | ibv_qp_attr_mask::IBV_QP_PORT
                | ibv_qp_attr_mask::IBV_QP_ACCESS_FLAGS,
            &format!("queue pair to node {peer}, to INIT"),
        )
    }

    /// INIT -> RTR: connected to `remote`, ready to receive.
    pub fn to_rtr(
        &self,
        local: &LocalPort,
        local_mtu: u32,
        remote: &Endpoint,
        peer: usize,
    ) -> Result<()> {
        let mut attr = Self::zeroed_attr();
        attr.qp_state = ibv_qp_state::IBV_QPS_RTR;
        attr.path_mtu = path_mtu(local_mtu, remote.mtu);
        attr.dest_qp_num = remote.qp_num;
        attr.rq_psn = remote.psn;
        attr.max_dest_rd_atomic = local.max_dest_rd_atomic;
        attr.min_rnr_timer = MIN_RNR_TIMER;
        attr.ah_attr.dlid = remote.lid;
        attr.ah_attr.sl = 0;
        attr.ah_attr.src_path_bits = 0;
        attr.ah_attr.port_num = local.port;
        if local.global {
            attr.ah_attr.is_global = 1;
            attr.ah_attr.grh = ibv_global_route {
                dgid: ibv_gid { raw: remote.gid },
                flow_label: 0,
                sgid_index: local.gid_index,
                hop_limit: HOP_LIMIT,
                traffic_class: 0,
            };
        }
        self.modify(
            &mut attr,
            ibv_qp_attr_mask::IBV_QP_STATE
                | ibv_qp_attr_mask::IBV_QP_AV
                | ibv_qp_attr_mask::IBV_QP_PATH_MTU
                | ibv_qp_attr_mask::IBV_QP_DEST_QPN
                | ibv_qp_attr_mask::IBV_QP_RQ_PSN
                | ibv_qp_attr_mask::IBV_QP_MAX_DEST_RD_ATOMIC
                | ibv_qp_attr_mask::IBV_QP_MIN_RNR_TIMER,
            &format!("queue pair to node {peer}, to RTR"),
        )
    }

    /// RTR -> RTS: ready to send, starting at `psn`.
    pub fn to_rts(&self, local: &LocalPort, psn: u32, peer: usize) -> Result<()> {
        let mut attr = Self::zeroed_attr();
        attr.qp_state = ibv_qp_state::IBV_QPS_RTS;
        attr.timeout = TIMEOUT;
        attr.retry_cnt = RETRY_CNT;
        attr.rnr_retry = RNR_RETRY;
        attr.sq_psn = psn;
        attr.max_rd_atomic = local.max_rd_atomic;
        self.modify(
            &mut attr,
            ibv_qp_attr_mask::IBV_QP_STATE
                | ibv_qp_attr_mask::IBV_QP_TIMEOUT
                | ibv_qp_attr_mask::IBV_QP_RETRY_CNT
                | ibv_qp_attr_mask::IBV_QP_RNR_RETRY
                | ibv_qp_attr_mask::IBV_QP_SQ_PSN
                | ibv_qp_attr_mask::IBV_QP_MAX_QP_RD_ATOMIC,
            &format!("queue pair to node {peer}, to RTS"),
        )
    }

    /// Posts `wrs` as one chain, `wrs[i]` using `sges[i]` as its only
    /// scatter/gather entry. Links the chain itself: the caller fills in
    /// everything but `next`, `sg_list` and `num_sge`.
    ///
    /// Every `sges[i]` must name memory of a registration made on this queue
    /// pair's protection domain (the NIC checks the lkey and the bounds, so a
    /// wrong entry fails the work request rather than touching other memory).
    pub fn post_send(&self, wrs: &mut [ibv_send_wr], sges: &mut [ibv_sge]) -> io::Result<()> {
        if wrs.is_empty() || wrs.len() != sges.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "post_send needs one scatter/gather entry per work request",
            ));
        }
        let sge_base = sges.as_mut_ptr();
        let last = wrs.len() - 1;
        for i in 0..wrs.len() {
            let next = if i == last {
                ptr::null_mut()
            } else {
                wrs.as_mut_ptr().wrapping_add(i + 1)
            };
            let wr = &mut wrs[i];
            wr.sg_list = sge_base.wrapping_add(i);
            wr.num_sge = 1;
            wr.next = next;
        }
        // Derived last, so no Rust access to `wrs` follows it before the post.
        let wr_base = wrs.as_mut_ptr();
        let mut bad: *mut ibv_send_wr = ptr::null_mut();
        // SAFETY: the queue pair is live; the chain is linked above to point
        // only into `wrs` and `sges`, which outlive the call (libibverbs copies
        // the requests into the send queue before returning). The memory the
        // entries name is registered, never referenced by Rust code while the
        // NIC may access it (the caller holds the peer's lock until the
        // completion), and the NIC enforces the registration's bounds.
        let rc = unsafe { ibv_post_send(self.ptr.as_ptr(), wr_base, &mut bad) };
        if rc == 0 {
            Ok(())
        } else {
            Err(rc_error(rc))
        }
    }
}

impl Drop for QueuePair {
    fn drop(&mut self) {
        // SAFETY: created by ibv_create_qp and destroyed once; its completion
        // queue and protection domain are released after this (Arc fields).
        let rc = unsafe { ibv_destroy_qp(self.ptr.as_ptr()) };
        report_drop_failure(rc, "ibv_destroy_qp", &self.pd.ctx.name);
    }
}

/// A send work request with every field zero (no chain, no flags).
pub(super) fn zeroed_send_wr() -> ibv_send_wr {
    // SAFETY: ibv_send_wr is a C struct of integers, raw pointers and unions
    // of those; all zeroes (null pointers) is a valid value.
    unsafe { std::mem::zeroed() }
}
