//! A small OpenID AuthZEN 1.0 decision point for the workbench and the tests: a policy table of
//! subject × action × resource prefix, answering `POST /access/v1/evaluation` as the
//! specification says (`{"decision": …}`, with a reason on a deny).

use serde_json::{json, Value};

use crate::test_server::{Reply, SeenRequest};

/// Where evaluations are POSTed (AuthZEN's default).
pub const EVALUATION_PATH: &str = "/access/v1/evaluation";

/// One permission: this subject may do this action on resources under this prefix (`*`: any
/// action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub subject: String,
    pub action: String,
    pub resource_prefix: String,
}

/// A table of permissions; anything not in it is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy(pub Vec<Permission>);

impl Policy {
    /// The demo's table: alice may do anything under `/todos`, bob may only read it, and
    /// anyone may read `/public`.
    pub fn demo() -> Policy {
        let allow = |subject: &str, action: &str, prefix: &str| Permission {
            subject: subject.to_owned(),
            action: action.to_owned(),
            resource_prefix: prefix.to_owned(),
        };
        Policy(vec![
            allow("alice", "*", "/todos"),
            allow("bob", "GET", "/todos"),
            allow("*", "GET", "/public"),
        ])
    }

    pub fn allows(&self, subject: &str, action: &str, resource: &str) -> bool {
        self.0.iter().any(|p| {
            (p.subject == "*" || p.subject == subject)
                && (p.action == "*" || p.action == action)
                && resource.starts_with(p.resource_prefix.as_str())
        })
    }

    /// The answer to one HTTP request, as a decision point gives it: 404 off the evaluation
    /// path, 400 for a request that is not an evaluation, otherwise 200 with the decision.
    pub fn answer(&self, request: &SeenRequest) -> Reply {
        if request.method != "POST" || request.path != EVALUATION_PATH {
            return Reply::status(404, "not an AuthZEN endpoint");
        }
        let Ok(evaluation) = serde_json::from_slice::<Value>(&request.body) else {
            return Reply::status(400, "the body is not JSON");
        };
        let text = |pointer: &str| evaluation.pointer(pointer).and_then(Value::as_str);
        let (Some(subject), Some(action), Some(resource)) = (
            text("/subject/id"),
            text("/action/name"),
            text("/resource/id"),
        ) else {
            return Reply::status(400, "subject.id, action.name and resource.id are required");
        };
        let answer = if self.allows(subject, action, resource) {
            json!({ "decision": true })
        } else {
            json!({
                "decision": false,
                "context": { "reason_user": { "en-403": format!("{subject} may not {action} {resource}") } }
            })
        };
        Reply::ok(answer.to_string()).header("content-type", "application/json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation(subject: &str, action: &str, resource: &str) -> SeenRequest {
        SeenRequest {
            method: "POST".into(),
            path: EVALUATION_PATH.into(),
            headers: Vec::new(),
            body: json!({"subject": {"type": "identity", "id": subject},
                         "action": {"name": action},
                         "resource": {"type": "route", "id": resource}})
            .to_string()
            .into_bytes(),
            trailers: Vec::new(),
        }
    }

    fn status_and_body(reply: Reply) -> (u16, Vec<u8>) {
        match reply {
            Reply::Answer { status, body, .. } => (status, body),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_demo_policy_allows_what_its_table_says_and_nothing_else() {
        let policy = Policy::demo();
        for (subject, action, resource, allowed) in [
            ("alice", "DELETE", "/todos/1", true),
            ("bob", "GET", "/todos/1", true),
            ("bob", "DELETE", "/todos/1", false),
            ("carol", "GET", "/public/a", true),
            ("carol", "GET", "/todos", false),
            ("alice", "GET", "/admin", false),
        ] {
            let (status, body) =
                status_and_body(policy.answer(&evaluation(subject, action, resource)));
            assert_eq!(status, 200);
            let answer: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                answer["decision"],
                json!(allowed),
                "{subject} {action} {resource}"
            );
        }
    }

    #[test]
    fn what_is_not_an_evaluation_is_refused() {
        let policy = Policy::demo();
        let mut wrong_path = evaluation("alice", "GET", "/todos");
        wrong_path.path = "/other".into();
        assert_eq!(status_and_body(policy.answer(&wrong_path)).0, 404);
        let mut not_json = evaluation("alice", "GET", "/todos");
        not_json.body = b"{".to_vec();
        assert_eq!(status_and_body(policy.answer(&not_json)).0, 400);
        let mut no_subject = evaluation("alice", "GET", "/todos");
        no_subject.body = br#"{"action": {"name": "GET"}, "resource": {"id": "/x"}}"#.to_vec();
        assert_eq!(status_and_body(policy.answer(&no_subject)).0, 400);
    }
}
