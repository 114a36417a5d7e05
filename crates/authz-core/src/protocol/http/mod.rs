//! The HTTP protocol: the auth call built from the request (`request`), and the answer read
//! through the host into an outcome (`answer`).

pub mod answer;
pub mod request;

pub use answer::read;
pub use request::{auth_headers, check_sendable, SentBody, PARTIAL_BODY};
