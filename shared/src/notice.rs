//! What responders read: a short subject for the phone, a plain body, and message
//! attributes that subscriptions can filter on.

use serde::Serialize;
use std::collections::BTreeMap;

/// SNS limits a subject to 100 characters.
pub const MAX_SUBJECT: usize = 100;
/// One SMS.
pub const MAX_SMS: usize = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub subject: String,
    pub body: String,
    pub severity: Severity,
    /// Extra message attributes (the severity and the emitting function are always sent).
    pub attributes: BTreeMap<String, String>,
    /// A text message for SMS subscribers (sent as the `sms` protocol's message).
    pub sms: Option<String>,
    /// Where it goes when not to the responders' topic: a recovery plan's automation topic
    /// (in the same region).
    pub topic: Option<String>,
}

impl Notice {
    pub fn new(severity: Severity, subject: impl Into<String>, body: impl Into<String>) -> Self {
        let mut subject: String = subject.into();
        // SNS subjects: printable ASCII, no line breaks, at most 100 characters.
        subject = subject
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '-' })
            .collect();
        if subject.len() > MAX_SUBJECT {
            subject.truncate(MAX_SUBJECT - 3);
            subject.push_str("...");
        }
        Notice {
            subject,
            body: body.into(),
            severity,
            attributes: BTreeMap::new(),
            sms: None,
            topic: None,
        }
    }

    /// SMS-sized text: at most 140 characters.
    pub fn with_sms(mut self, text: impl Into<String>) -> Self {
        let mut text: String = text.into();
        if text.chars().count() > MAX_SMS {
            text = text.chars().take(MAX_SMS - 3).collect::<String>() + "...";
        }
        self.sms = Some(text);
        self
    }

    pub fn with_attribute(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(key.to_string(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_sns_safe() {
        let n = Notice::new(
            Severity::Warning,
            format!("drpilot: {}\nline → two", "x".repeat(120)),
            "b",
        );
        assert!(n.subject.len() <= MAX_SUBJECT);
        assert!(n.subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(n.subject.ends_with("..."));
    }
}
