//! Faults on demand, compiled only into the test build of the plugin (feature `test-switches`),
//! so the end-to-end tests can show what Envoy does when the VM traps or refuses a call.
//! Release builds have neither the code nor the configuration field.

use std::borrow::Cow;

/// `"test_switches": {"trap_on_request": bool, "drop_auth_header": ":authority"}`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestSwitches {
    /// Panic in the request callback; with `panic = "abort"` the VM traps.
    pub trap_on_request: bool,
    /// Leave this header out of the auth call (a missing pseudo-header makes Envoy refuse it).
    pub drop_auth_header: Option<String>,
}

impl TestSwitches {
    pub fn on_request(&self) {
        if self.trap_on_request {
            trap();
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
    panic!("test_switches.trap_on_request is set: trapping on purpose")
}
