//! SNS: notices to the responders' topic.

use super::aws_error;
use crate::error::{Error, Result};
use crate::notice::Notice;
use crate::ports::Notifier;
use aws_config::SdkConfig;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
    /// Which drpilot function speaks, sent as the `source` message attribute.
    source: String,
}

impl SnsNotifier {
    /// Publishes through the topic's own region, whatever region the function runs in.
    pub fn new(sdk: &SdkConfig, topic_arn: &str, source: &str) -> Self {
        let region = crate::model::arn_region(topic_arn).unwrap_or_default().to_string();
        let conf = aws_sdk_sns::config::Builder::from(sdk)
            .region(aws_sdk_sns::config::Region::new(region))
            .build();
        Self::with_client(Client::from_conf(conf), topic_arn, source)
    }

    pub fn with_client(client: Client, topic_arn: &str, source: &str) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.to_string(),
            source: source.to_string(),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| Error::BadEvent(format!("invalid SNS message attribute: {e}")))
}

impl Notifier for SnsNotifier {
    async fn notify(&self, notice: &Notice) -> Result<()> {
        let publish = self
            .client
            .publish()
            .topic_arn(notice.topic.as_deref().unwrap_or(&self.topic_arn))
            .subject(&notice.subject);
        // With an SMS text, one message per protocol: SMS subscribers get the short one.
        let publish = match &notice.sms {
            Some(sms) => publish
                .message_structure("json")
                .message(serde_json::json!({"default": notice.body, "sms": sms}).to_string()),
            None => publish.message(&notice.body),
        };
        let mut publish = publish
            .message_attributes("severity", attribute(notice.severity.as_str())?)
            .message_attributes("source", attribute(&self.source)?);
        for (k, v) in &notice.attributes {
            publish = publish.message_attributes(k, attribute(v)?);
        }
        publish.send().await.map_err(|e| aws_error("Publish", e))?;
        Ok(())
    }
}
