//! The check as it travels on an HTTP/2 stream, for a host that has streams but no gRPC client
//! (a native module): the request's headers, the message's length prefix, and the answer read
//! back from the stream's headers, data and trailers.

use super::{METHOD, SERVICE};

/// gRPC's length prefix: a compression flag and a big-endian length.
const PREFIX: usize = 5;

/// gRPC status codes the filter names.
pub const OK: u32 = 0;
pub const UNKNOWN: u32 = 2;
pub const PERMISSION_DENIED: u32 = 7;
pub const UNIMPLEMENTED: u32 = 12;
pub const INTERNAL: u32 = 13;
pub const UNAVAILABLE: u32 = 14;
pub const UNAUTHENTICATED: u32 = 16;

/// The check's request headers. No `grpc-timeout`: the stream's own timeout ends the call, so
/// a service never races its deadline against the filter's.
pub fn request_headers(cluster: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "POST".to_owned()),
        (":path", format!("/{SERVICE}/{METHOD}")),
        (":authority", cluster.to_owned()),
        (":scheme", "http".to_owned()),
        ("content-type", "application/grpc".to_owned()),
        ("te", "trailers".to_owned()),
    ]
}

/// The message with its length prefix (uncompressed); `None` past gRPC's 4 GiB frame.
pub fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let length = u32::try_from(message.len()).ok()?;
    let mut framed = Vec::with_capacity(PREFIX + message.len());
    framed.push(0);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    Some(framed)
}

/// How a check's stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The service answered OK with this message.
    Message(Vec<u8>),
    /// The service answered OK with a message of this many bytes, over the limit: not kept.
    Oversized(usize),
    /// The call failed with this gRPC status.
    Status(u32),
}

/// A check's answer as the stream delivers it: data is kept up to a limit, the status comes
/// from the trailers (or, for a trailers-only answer, the headers).
#[derive(Debug, Default)]
pub struct Answer {
    http_status: Option<u16>,
    grpc_status: Option<u32>,
    data: Vec<u8>,
    /// Bytes of data received in all, kept or not.
    total: usize,
    max: usize,
}

impl Answer {
    /// An answer keeping at most `max_message` bytes of message.
    pub fn new(max_message: usize) -> Answer {
        Answer {
            max: max_message.saturating_add(PREFIX),
            ..Answer::default()
        }
    }

    /// The answer's headers: `:status`, and, in a trailers-only answer (headers that end the
    /// stream), `grpc-status`. A `grpc-status` in headers that data follows is not final.
    pub fn headers<'a>(
        &mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        end_of_stream: bool,
    ) {
        for (name, value) in headers {
            match name {
                ":status" => self.http_status = digits(value).and_then(|n| u16::try_from(n).ok()),
                "grpc-status" if end_of_stream => self.grpc_status = Some(status_value(value)),
                _ => {}
            }
        }
    }

    /// The answer's trailers: `grpc-status`.
    pub fn trailers<'a>(&mut self, trailers: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
        for (name, value) in trailers {
            if name == "grpc-status" {
                self.grpc_status = Some(status_value(value));
            }
        }
    }

    pub fn data(&mut self, chunk: &[u8]) {
        self.total = self.total.saturating_add(chunk.len());
        let room = self.max.saturating_sub(self.data.len());
        self.data
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }

    /// Bytes of data received so far, kept or not.
    pub fn size(&self) -> usize {
        self.total
    }

    /// The ending, once the stream is complete. As Envoy's own gRPC client, anything but an
    /// HTTP 200 fails the call, whatever `grpc-status` says.
    pub fn end(self) -> Ended {
        let status = match (self.http_status, self.grpc_status) {
            (Some(200), Some(status)) => status,
            (Some(http), _) if http != 200 => status_for_http(http),
            // No status at all, or a 200 that ended without a grpc-status: not a whole answer.
            _ => INTERNAL,
        };
        if status != OK {
            return Ended::Status(status);
        }
        let Some(header) = self.data.get(..PREFIX) else {
            return Ended::Status(INTERNAL);
        };
        let mut length = [0u8; 4];
        length.copy_from_slice(header.get(1..PREFIX).unwrap_or(&[0; 4]));
        let length = u32::from_be_bytes(length) as usize;
        if header.first() != Some(&0) {
            // A compressed message: the filter never asked for compression.
            return Ended::Status(INTERNAL);
        }
        if length.saturating_add(PREFIX) > self.max {
            return Ended::Oversized(length);
        }
        match self.data.get(PREFIX..PREFIX + length) {
            Some(message) if self.total == PREFIX + length => Ended::Message(message.to_vec()),
            // Short, or more than one message: not a unary answer.
            _ => Ended::Status(INTERNAL),
        }
    }
}

/// A header value that is ASCII digits only (no sign, no spaces), as a number.
fn digits(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A `grpc-status` value; anything but digits is UNKNOWN, never OK.
fn status_value(value: &[u8]) -> u32 {
    digits(value).unwrap_or(UNKNOWN)
}

/// The gRPC status for an HTTP status, as gRPC's spec maps them
/// (doc/http-grpc-status-mapping.md).
pub fn status_for_http(http: u16) -> u32 {
    match http {
        400 => INTERNAL,
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        404 => UNIMPLEMENTED,
        429 | 502 | 503 | 504 => UNAVAILABLE,
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(headers: &[(&str, &str)], data: &[&[u8]], trailers: &[(&str, &str)]) -> Ended {
        let mut answer = Answer::new(16);
        let trailers_only = data.is_empty() && trailers.is_empty();
        answer.headers(
            headers.iter().map(|(n, v)| (*n, v.as_bytes())),
            trailers_only,
        );
        for chunk in data {
            answer.data(chunk);
        }
        answer.trailers(trailers.iter().map(|(n, v)| (*n, v.as_bytes())));
        answer.end()
    }

    #[test]
    fn a_framed_message_comes_back_whole_even_in_pieces() {
        let framed = frame(b"hello").unwrap_or_default();
        let (a, b) = framed.split_at(3);
        let ok = [(":status", "200")];
        assert_eq!(
            answered(&ok, &[a, b], &[("grpc-status", "0")]),
            Ended::Message(b"hello".to_vec())
        );
    }

    #[test]
    fn statuses_come_from_trailers_or_a_trailers_only_answer_or_the_http_status() {
        assert_eq!(
            answered(&[(":status", "200"), ("grpc-status", "7")], &[], &[]),
            Ended::Status(PERMISSION_DENIED)
        );
        assert_eq!(
            answered(&[(":status", "503")], &[], &[]),
            Ended::Status(UNAVAILABLE)
        );
        assert_eq!(
            answered(&[(":status", "200")], &[], &[("grpc-status", "x")]),
            Ended::Status(UNKNOWN)
        );
        assert_eq!(
            answered(&[(":status", "200")], &[], &[]),
            Ended::Status(INTERNAL)
        );
    }

    #[test]
    fn an_oversized_short_compressed_or_doubled_message_is_never_read() {
        let ok = [(":status", "200")];
        let end = [("grpc-status", "0")];
        let big = frame(&[1; 40]).unwrap_or_default();
        assert_eq!(answered(&ok, &[&big], &end), Ended::Oversized(40));
        let short = frame(b"hello").unwrap_or_default();
        assert_eq!(
            answered(&ok, &[short.get(..6).unwrap_or_default()], &end),
            Ended::Status(INTERNAL)
        );
        let mut compressed = frame(b"hi").unwrap_or_default();
        compressed[0] = 1;
        assert_eq!(answered(&ok, &[&compressed], &end), Ended::Status(INTERNAL));
        let one = frame(b"hi").unwrap_or_default();
        assert_eq!(answered(&ok, &[&one, &one], &end), Ended::Status(INTERNAL));
    }

    #[test]
    fn only_an_http_200_with_a_final_ok_status_reads_a_message() {
        let ok = frame(b"").unwrap_or_default();
        assert_eq!(
            answered(&[(":status", "500")], &[&ok], &[("grpc-status", "0")]),
            Ended::Status(UNKNOWN)
        );
        // grpc-status in the headers of an answer that goes on to send data is not final.
        assert_eq!(
            answered(&[(":status", "200"), ("grpc-status", "0")], &[&ok], &[]),
            Ended::Status(INTERNAL)
        );
        for odd in ["+0", " 0", "0x0", "", "00000000000"] {
            assert_eq!(
                answered(&[(":status", "200")], &[&ok], &[("grpc-status", odd)]),
                Ended::Status(UNKNOWN),
                "{odd:?}"
            );
        }
        assert_eq!(
            answered(&[(":status", "200")], &[&ok], &[("grpc-status", "0")]),
            Ended::Message(Vec::new())
        );
    }

    #[test]
    fn the_request_names_the_check_and_carries_no_deadline() {
        let headers = request_headers("authz");
        assert!(headers.contains(&(":path", "/envoy.service.auth.v3.Authorization/Check".into())));
        assert!(headers.contains(&(":authority", "authz".into())));
        assert!(!headers.iter().any(|(n, _)| *n == "grpc-timeout"));
    }
}
