//! What became of one request, for the access log and the filters after this one: the
//! verdict, why, what the cache did, and how long the auth service took.

/// The verdict as it was applied (`shadow`: one that was not enforced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    Error,
    Overload,
    Exempt,
    Shadow,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Error => "error",
            Verdict::Overload => "overload",
            Verdict::Exempt => "exempt",
            Verdict::Shadow => "shadow",
        }
    }
}

/// What the decision cache did for the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache, or the request was not looked up.
    #[default]
    None,
    Hit,
    Miss,
    /// An expired allow served while the auth service was down.
    Stale,
    /// The request waited for another's call with the same key.
    Coalesced,
}

impl CacheUse {
    pub fn name(self) -> &'static str {
        match self {
            CacheUse::None => "none",
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
            CacheUse::Stale => "stale",
            CacheUse::Coalesced => "coalesced",
        }
    }
}

/// One request's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub verdict: Verdict,
    /// Why, in a word or two (`status_403`, `call_failed`, `max_calls_in_flight`, …).
    pub reason: String,
    pub cache: CacheUse,
    /// The auth call's duration, when this request waited for one.
    pub auth_ms: Option<u64>,
    /// The `routes` rule the request fell under, if any.
    pub rule: Option<String>,
}

impl Record {
    /// The record as named fields, in a fixed order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("verdict", self.verdict.name().to_owned()),
            ("reason", self.reason.clone()),
            ("cache", self.cache.name().to_owned()),
        ];
        if let Some(ms) = self.auth_ms {
            fields.push(("auth_ms", ms.to_string()));
        }
        if let Some(rule) = &self.rule {
            fields.push(("rule", rule.clone()));
        }
        fields
    }

    /// The record in one line of `name=value` pairs, for hosts that keep one string.
    pub fn line(&self) -> String {
        let mut line = String::new();
        for (name, value) in self.fields() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(name);
            line.push('=');
            line.push_str(&value);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_as_named_fields_and_one_line() {
        let record = Record {
            verdict: Verdict::Deny,
            reason: "status_403".into(),
            cache: CacheUse::Miss,
            auth_ms: Some(3),
            rule: Some("admin".into()),
        };
        assert_eq!(
            record.line(),
            "verdict=deny reason=status_403 cache=miss auth_ms=3 rule=admin"
        );
        let exempt = Record {
            verdict: Verdict::Exempt,
            reason: "exempt".into(),
            cache: CacheUse::None,
            auth_ms: None,
            rule: None,
        };
        assert_eq!(exempt.fields().len(), 3);
    }
}
