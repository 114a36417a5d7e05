//! A deliberate trap, compiled only into test builds, to show what Envoy does when the VM fails.

/// Panics; with `panic = "abort"` the VM traps and Envoy applies the plugin's failure policy.
#[allow(clippy::panic)]
pub fn trap() -> ! {
    panic!("trap_on_request is set: trapping on purpose")
}
