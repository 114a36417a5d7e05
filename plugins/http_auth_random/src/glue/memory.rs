//! The VM's side of memory the host hands over: the allocator export the host calls before it
//! copies data in, and taking ownership of what it wrote.

use std::alloc::{alloc, Layout};
use std::ptr::NonNull;

/// The host calls this to get room for data it is about to copy into the VM. It returns null
/// when the VM is out of memory, and the host then fails that host call with
/// `InvalidMemoryAccess`, instead of the VM aborting as an infallible allocation would.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    if size == 0 {
        return NonNull::<u8>::dangling().as_ptr();
    }
    match Layout::from_size_align(size, 1) {
        // SAFETY: the layout has a non-zero size; a null result is passed on, not used.
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Takes ownership of `size` bytes the host wrote at `data` (allocated above).
///
/// # Safety
/// `data` must be null, or come from `proxy_on_memory_allocate(size)` and not be owned yet.
pub unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: allocated with align 1 and exactly `size` bytes, which is Vec<u8>'s own layout for
    // capacity `size`; the caller guarantees nobody else owns it.
    unsafe { Vec::from_raw_parts(data, size, size) }
}
