//! The global allocator (cargo feature `mimalloc`, on by default).
//!
//! The engine allocates many short-lived buffers. With glibc's malloc about a third of the
//! small-op benchmark (W1) went to allocation, and large buffers went back to the OS on free so
//! every large op paid its page faults again (about 20% of W2). mimalloc with purging disabled
//! keeps freed pages for the next step.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in `mimalloc.h` (index 15 in both v2 and the v3 that libmimalloc-sys
/// builds by default; the Rust bindings lack the name).
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

static INIT: std::sync::Once = std::sync::Once::new();

/// Configures the allocator once per process (called when the first tensor is made).
#[inline]
pub(crate) fn init() {
    INIT.call_once(|| {
        // SAFETY: mi_option_set only writes an option word; -1 = never purge.
        #[cfg(feature = "mimalloc")]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1)
        };
    });
}
