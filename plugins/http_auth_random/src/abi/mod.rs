//! The proxy-wasm ABI 0.2.1 as data: status codes, enum values and the header-map wire format,
//! and how each maps to the core's own types. Pure, so every way a host call can fail is mapped
//! and tested natively.

use authz_core::host::{Action, BodyAction, Failure, MetricKind};

mod pairs;

pub use pairs::{decode_pairs, encode_pairs, PairsError};

/// A host call's result code. Codes the ABI does not define are kept, never trusted as success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    /// `BadExpression` in the spec; kept for completeness.
    BadExpression,
    InvalidMemoryAccess,
    Empty,
    CasMismatch,
    ResultMismatch,
    InternalFailure,
    BrokenConnection,
    Unimplemented,
    /// A code this plugin does not know.
    Unknown(u32),
}

impl Status {
    /// Maps a host's return code: `Ok(())` for 0, an error for anything else.
    pub fn check(code: u32) -> Result<(), Status> {
        Err(match code {
            0 => return Ok(()),
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            5 => Status::BadExpression,
            6 => Status::InvalidMemoryAccess,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            9 => Status::ResultMismatch,
            10 => Status::InternalFailure,
            11 => Status::BrokenConnection,
            12 => Status::Unimplemented,
            other => Status::Unknown(other),
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Unknown(code) => write!(f, "unknown status {code}"),
            known => write!(f, "{known:?}"),
        }
    }
}

/// `proxy_get_header_map_*` map types.
pub mod map_type {
    pub const REQUEST_HEADERS: u32 = 0;
    pub const REQUEST_TRAILERS: u32 = 1;
    pub const RESPONSE_HEADERS: u32 = 2;
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
}

/// `proxy_get_buffer_bytes` buffer types.
pub mod buffer_type {
    pub const HTTP_REQUEST_BODY: u32 = 0;
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    pub const GRPC_RECEIVE_BUFFER: u32 = 5;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// `proxy_continue_stream` stream types.
pub mod stream_type {
    pub const HTTP_REQUEST: u32 = 0;
}

/// `proxy_define_metric`'s kind codes.
pub fn metric_kind(kind: MetricKind) -> u32 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
    }
}

/// A request callback's return code: 0 lets the stream go on, 1 stops it here.
pub fn action_code(action: Action) -> u32 {
    match action {
        Action::Continue => 0,
        Action::Pause => 1,
    }
}

/// A body callback's return code: continue, stop and buffer, or stop under flow control
/// (`StopIterationAndWatermark`).
pub fn body_action_code(action: BodyAction) -> u32 {
    match action {
        BodyAction::Continue => 0,
        BodyAction::Buffer => 1,
        BodyAction::Watermark => 2,
    }
}

impl Status {
    /// What the filter's core makes of a failed host call.
    pub fn failure(self) -> Failure {
        match self {
            Status::NotFound => Failure::NotFound,
            Status::BadArgument => Failure::BadArgument,
            Status::InvalidMemoryAccess => Failure::OutOfMemory,
            Status::CasMismatch => Failure::CasMismatch,
            // Envoy refuses a call inline this way when its cluster's circuit breaker
            // overflowed or it has no healthy host.
            Status::InternalFailure => Failure::Unavailable,
            Status::SerializationFailure => Failure::Other(3),
            Status::ParseFailure => Failure::Other(4),
            Status::BadExpression => Failure::Other(5),
            Status::Empty => Failure::Other(7),
            Status::ResultMismatch => Failure::Other(9),
            Status::BrokenConnection => Failure::Other(11),
            Status::Unimplemented => Failure::Other(12),
            Status::Unknown(code) => Failure::Other(code),
        }
    }
}

/// proxy-wasm log levels, in the host's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// The host's level code; anything above Critical is read as Critical (log nothing below).
    pub fn from_code(code: u32) -> LogLevel {
        match code {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_the_only_success() {
        assert_eq!(Status::check(0), Ok(()));
        for code in 1..=12 {
            assert!(Status::check(code).is_err(), "{code}");
        }
    }

    #[test]
    fn unknown_codes_are_errors_that_keep_the_code() {
        assert_eq!(Status::check(13), Err(Status::Unknown(13)));
        assert_eq!(Status::check(u32::MAX), Err(Status::Unknown(u32::MAX)));
        assert_eq!(Status::Unknown(42).to_string(), "unknown status 42");
        assert_eq!(Status::check(6), Err(Status::InvalidMemoryAccess));
    }

    #[test]
    fn every_status_maps_to_a_failure_and_only_internal_failure_is_unavailable() {
        for code in 1..=13 {
            let Err(status) = Status::check(code) else {
                unreachable!("only 0 is success")
            };
            let failure = status.failure();
            assert_eq!(failure == Failure::Unavailable, code == 10, "{code}");
            assert_eq!(failure == Failure::OutOfMemory, code == 6, "{code}");
        }
    }

    #[test]
    fn log_levels_past_the_known_ones_log_least() {
        assert_eq!(LogLevel::from_code(1), LogLevel::Debug);
        assert_eq!(LogLevel::from_code(99), LogLevel::Critical);
    }
}
