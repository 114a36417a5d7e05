//! What the plugin answers itself: the failure policy (`failure_mode_allow`,
//! `status_on_error`) and the seed rule's deny reply.

use super::fields::{headers, status};
use super::json::Object;
use super::validate::Checked;

pub const DEFAULT_STATUS_ON_ERROR: u32 = 403;
pub const DEFAULT_DENY_STATUS: u32 = 403;
pub const DEFAULT_DENY_BODY: &str = "access forbidden";
pub const DEFAULT_DENY_HEADER: (&str, &str) = ("powered-by", "http_auth_random");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePolicy {
    pub allow: bool,
    pub add_header: bool,
    pub status_on_error: u16,
}

/// A response the plugin sends itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub fn failure_policy(root: &Object) -> Checked<FailurePolicy> {
    Ok(FailurePolicy {
        allow: root.bool("failure_mode_allow")?.unwrap_or(false),
        add_header: root.bool("failure_mode_allow_header_add")?.unwrap_or(true),
        status_on_error: status(root, "status_on_error", DEFAULT_STATUS_ON_ERROR)?,
    })
}

/// `deny`: the reply when the seed's rule denies.
pub fn deny(root: &Object) -> Checked<LocalReply> {
    let default_headers = || {
        vec![(
            DEFAULT_DENY_HEADER.0.to_owned(),
            DEFAULT_DENY_HEADER.1.to_owned(),
        )]
    };
    Ok(match root.object("deny", &["status", "body", "headers"])? {
        None => LocalReply {
            status: 403,
            headers: default_headers(),
            body: DEFAULT_DENY_BODY.to_owned(),
        },
        Some(deny) => LocalReply {
            status: status(&deny, "status", DEFAULT_DENY_STATUS)?,
            headers: match deny.list("headers")? {
                Some(list) => headers(list)?,
                None => default_headers(),
            },
            body: deny.string("body")?.unwrap_or(DEFAULT_DENY_BODY).to_owned(),
        },
    })
}
