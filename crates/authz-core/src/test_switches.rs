//! Faults on demand, compiled only into the test build of the plugin (feature `test-switches`),
//! so the end-to-end tests can show what Envoy does when the VM traps or refuses a call.
//! Release builds have neither the code nor the configuration field.

use std::borrow::Cow;

/// `"test_switches": {"trap_on_path": "/trap", "drop_auth_header": ":authority"}`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestSwitches {
    /// Panic in the request callback for this path; with `panic = "abort"` the VM traps.
    pub trap_on_path: Option<String>,
    /// Leave this header out of the auth call (a missing pseudo-header makes Envoy refuse it).
    pub drop_auth_header: Option<String>,
}

impl TestSwitches {
    pub fn on_request(&self, path: Option<&[u8]>) {
        if let (Some(trap_path), Some(path)) = (&self.trap_on_path, path) {
            if trap_path.as_bytes() == path {
                trap();
            }
        }
    }

    pub fn edit_auth_headers(&self, headers: &mut Vec<(&str, Cow<str>)>) {
        if let Some(name) = &self.drop_auth_header {
            headers.retain(|(n, _)| *n != name.as_str());
        }
    }
}

#[allow(clippy::panic)]
fn trap() -> ! {
    // The trap is the point; only the test build (feature test-switches) has this code.
    panic!("test_switches.trap_on_path matched: trapping on purpose") // allow-panic
}
