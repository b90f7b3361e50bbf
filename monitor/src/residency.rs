//! Idle residency of the monitor's own binary.
//!
//! The binary's read-only segments (ELF headers and dynamic tables, text,
//! rodata, unwind tables) are file-backed: once start-up has run, the kernel's
//! fault-around has mapped nearly the whole file into this process, 64 KiB
//! around every page touched, and every mapped page counts in the monitor's
//! Pss for as long as it runs. An idle monitor needs a few KiB of that.
//!
//! When the event loop goes idle it zaps those page-table entries
//! (`MADV_DONTNEED` on a private file mapping that was never written: the
//! pages stay in the page cache, shared with every other monitor and the next
//! one to start, and a later access maps them again with a minor fault).
//! Only whole pages inside `PT_LOAD` segments without write permission are
//! touched, never a page that also holds writable or RELRO data (whose
//! contents are process-private after relocation).
//!
//! The same goes for the main thread's stack below the idle loop's frames:
//! start-up (argument parsing, the runtime's spawn, 8 KiB read buffers) went
//! deeper than the event loop ever does, and those pages are dead.

use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::time::Duration;

const MAX_RANGES: usize = 4;

#[derive(Default)]
struct Ranges {
    r: [(usize, usize); MAX_RANGES],
    n: usize,
}

static RANGES: OnceLock<Ranges> = OnceLock::new();

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// The main program's read-only segments, as whole pages.
fn find_ranges() -> Ranges {
    /// # Safety
    /// Called by `dl_iterate_phdr` only, with a valid `info` and `data`
    /// pointing at the `Ranges` below.
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the
        // call, and data is the &mut Ranges given below. The first object it
        // reports is the main program.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<Ranges>()) };
        let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
            &[]
        } else {
            // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        let page = page_size();
        let base = info.dlpi_addr as usize;
        let span = |p: &libc::Elf64_Phdr| {
            let start = base + p.p_vaddr as usize;
            (start, start + p.p_memsz as usize)
        };
        // Page-rounded outward: any page a writable or RELRO byte lives on.
        let keep: Vec<(usize, usize)> = phdrs
            .iter()
            .filter(|p| {
                (p.p_type == libc::PT_LOAD && p.p_flags & libc::PF_W != 0)
                    || p.p_type == libc::PT_GNU_RELRO
            })
            .map(|p| {
                let (s, e) = span(p);
                (s & !(page - 1), (e + page - 1) & !(page - 1))
            })
            .collect();
        for p in phdrs {
            if p.p_type != libc::PT_LOAD || p.p_flags & libc::PF_W != 0 || out.n == MAX_RANGES {
                continue;
            }
            // Page-rounded inward: only pages wholly inside the segment.
            let (s, e) = span(p);
            let s = (s + page - 1) & !(page - 1);
            let e = e & !(page - 1);
            if s < e && keep.iter().all(|&(ks, ke)| e <= ks || s >= ke) {
                out.r[out.n] = (s, e);
                out.n += 1;
            }
        }
        1 // the main program only
    }
    let mut r = Ranges::default();
    // SAFETY: cb matches the callback type and only uses data as &mut Ranges,
    // which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(cb), (&mut r as *mut Ranges).cast()) };
    r
}

/// Locate the segments (call once before going idle, e.g. at loop set-up).
pub fn init() {
    RANGES.get_or_init(find_ranges);
}

/// Unmap this process's view of its own read-only binary pages, then sleep
/// until the event loop's epoll fd `epfd` has events (without consuming them)
/// or `timeout` passes. One small function, so that the sleeping monitor maps
/// back only the code it sleeps in; the rest returns on access, from the page
/// cache, when something happens.
#[inline(never)]
pub fn release_own_text_and_wait(epfd: RawFd, timeout: Option<Duration>) {
    let ms = timeout.map_or(-1, |t| {
        let ms = t.as_nanos().div_ceil(1_000_000);
        i32::try_from(ms).unwrap_or(i32::MAX)
    });
    // Keep the pages this function runs on: returning from madvise into a
    // dropped page would fault, and the kernel maps a whole window of
    // neighbouring pages around every fault.
    let page = page_size();
    let p_marker = 0u8;
    let here = (release_own_text_and_wait as fn(RawFd, Option<Duration>) as usize) & !(page - 1);
    let (ks, ke) = (here, here + 2 * page);
    if let Some(r) = RANGES.get() {
        for &(s, e) in &r.r[..r.n] {
            for (s, e) in [(s, e.min(ks)), (s.max(ke), e)] {
                if s < e {
                    // SAFETY: [s, e) is whole pages of a non-writable,
                    // non-RELRO segment of our own file-backed private
                    // mapping; never written, so dropping the page-table
                    // entries loses nothing.
                    unsafe { libc::madvise(s as *mut libc::c_void, e - s, libc::MADV_DONTNEED) };
                }
            }
        }
    }
    release_dead_stack(&p_marker as *const u8 as usize, page);
    let mut p = libc::pollfd {
        fd: epfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd. An epoll fd polls readable while it has
    // events ready; poll(2) does not consume them.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// How far below the current frame dead stack pages are dropped.
const STACK_SPAN: usize = 256 * 1024;

/// Drop the main thread's stack pages well below the current frame (at
/// `marker`, a local of the caller): start-up went deeper than the idle loop
/// ever does, and those pages are dead. The page holding `marker` and the one
/// under it are kept, for the rest of the caller's small frame and the calls
/// still to come (madvise uses no stack, libc's poll wrapper < 1 KiB); a range
/// partly below the stack mapping is fine: madvise skips holes, and nothing is
/// mapped there (the kernel keeps its mmap area at least 128 MiB below the
/// stack top, and the stack guard gap free).
fn release_dead_stack(marker: usize, page: usize) {
    let top = (marker & !(page - 1)).saturating_sub(page);
    let bottom = top.saturating_sub(STACK_SPAN);
    if bottom < top {
        // SAFETY: [bottom, top) lies below every live frame of this (only)
        // thread, and signal handlers cannot run during the call; anonymous
        // private pages read back as zeros if the stack grows there again.
        unsafe {
            libc::madvise(
                bottom as *mut libc::c_void,
                top - bottom,
                libc::MADV_DONTNEED,
            )
        };
    }
}
