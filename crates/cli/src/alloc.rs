//! The global allocator: the system allocator, except that very large
//! requests are served by lazily backed anonymous mappings
//! (`MAP_NORESERVE`).
//!
//! Why: the message codec pre-sizes arrays from the length a client sends
//! (`Vec::with_capacity(n)` before reading `n` elements). A lying length of
//! two billion would ask for hundreds of GiB; with the plain allocator that
//! aborts the process. A lazy mapping of that size succeeds without
//! touching memory, the decode then fails on the missing bytes, and the
//! mapping is released: the client gets its connection closed and everyone
//! else carries on. Legitimate large buffers work the same way, only pages
//! actually written are backed.

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests at or above this size go to `mmap`.
const LAZY_BYTES_MIN: usize = 256 << 20;
const PAGE_BYTES: usize = 4096;

pub struct GuardedAlloc;

fn is_lazy(layout: &Layout) -> bool {
    layout.size() >= LAZY_BYTES_MIN && layout.align() <= PAGE_BYTES
}

unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_lazy(&layout) {
            // SAFETY: an anonymous private mapping with no fixed address.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            return ptr as *mut u8;
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_lazy(&layout) {
            // SAFETY: `ptr` came from `mmap` above with this size.
            unsafe { libc::munmap(ptr as *mut libc::c_void, layout.size()) };
            return;
        }
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align(new_size, layout.align()).expect("valid layout");
        if !is_lazy(&layout) && !is_lazy(&new_layout) {
            // SAFETY: both sizes stay with the system allocator.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: fresh allocation, copy of the overlapping prefix, release.
        unsafe {
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_capacity_does_not_abort() {
        // 2^31 elements of 128 bytes: far beyond this machine's memory.
        let v: Vec<[u8; 128]> = Vec::with_capacity(i32::MAX as usize);
        assert!(v.capacity() >= i32::MAX as usize);
    }
}
