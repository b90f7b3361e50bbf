//! Fixed-size buffers in their own anonymous mappings, so an idle monitor can
//! hand their pages back to the kernel (`MADV_DONTNEED`) and a node with a
//! thousand quiet containers does not pay for a thousand full buffers.

use std::ptr::NonNull;

pub struct PageBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
    /// Pages were written since the last release.
    dirty: bool,
}

impl PageBuf {
    /// Map `cap` bytes (rounded up to pages). Pages cost nothing until touched.
    pub fn new(cap: usize) -> std::io::Result<PageBuf> {
        let cap = cap.div_ceil(4096) * 4096;
        // SAFETY: anonymous private mapping; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast())
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(PageBuf {
            ptr,
            cap,
            len: 0,
            dirty: false,
        })
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The whole buffer, for reading into.
    pub fn space(&mut self) -> &mut [u8] {
        self.dirty = true;
        // SAFETY: ptr is valid for cap bytes for the mapping's lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }

    /// The unfilled part, to be written in place and then [`PageBuf::advance`]d over.
    pub fn spare(&mut self) -> &mut [u8] {
        self.dirty = true;
        // SAFETY: ptr is valid for cap bytes and len <= cap; the range does
        // not overlap the filled part, which stays borrowed through &mut self.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len), self.cap - self.len)
        }
    }

    /// `n` more bytes of the spare part are filled.
    pub fn advance(&mut self, n: usize) {
        debug_assert!(self.len + n <= self.cap);
        self.len = (self.len + n).min(self.cap);
    }

    /// The filled part.
    pub fn filled(&self) -> &[u8] {
        // SAFETY: ptr is valid for cap >= len bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Append; the caller guarantees it fits (checked in debug builds, truncated otherwise).
    #[inline]
    pub fn extend_from_slice(&mut self, s: &[u8]) {
        debug_assert!(self.len + s.len() <= self.cap);
        let n = s.len().min(self.cap - self.len);
        // SAFETY: the destination range lies inside the mapping and does not overlap s.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), self.ptr.as_ptr().add(self.len), n) };
        self.len += n;
        self.dirty = true;
    }

    #[inline]
    pub fn push(&mut self, b: u8) {
        self.extend_from_slice(&[b]);
    }

    /// Give the pages back while idle (contents are lost; only when empty).
    pub fn release(&mut self) {
        if self.dirty && self.len == 0 {
            // SAFETY: advising our own mapping.
            unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.cap, libc::MADV_DONTNEED) };
            self.dirty = false;
        }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping we created.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.cap) };
    }
}

#[cfg(test)]
mod tests {
    use super::PageBuf;

    #[test]
    fn append_release() {
        let mut b = PageBuf::new(10).unwrap();
        assert_eq!(b.capacity(), 4096);
        b.extend_from_slice(b"abc");
        b.push(b'd');
        assert_eq!(b.filled(), b"abcd");
        b.clear();
        b.release();
        assert!(b.is_empty());
        assert_eq!(b.space()[0], 0, "released pages read back as zero");
    }
}
