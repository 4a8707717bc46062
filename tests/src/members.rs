//! Member accounts, as an organization has them. The test bed enters a member account as its
//! administrator would (through `OrganizationAccountAccessRole` from the management account,
//! which the simulator models as trusted), creates there the role `infra/modules/member`
//! creates, and its databases. moto keeps each account's resources apart by the account the
//! credentials belong to.

use crate::{emulator_url, sdk, ACCOUNT_ID};
use aws_config::SdkConfig;
use aws_sdk_sns::config::Credentials;

/// drpilot's hub runs in the management account of the test bed (the tests' own credentials).
pub const HUB: &str = ACCOUNT_ID;

pub struct MemberAccount {
    pub id: String,
    credentials: Credentials,
}

impl MemberAccount {
    /// Into account `id` as its administrator.
    pub async fn enter(id: &str) -> Self {
        let sts = aws_sdk_sts::Client::new(&sdk("us-east-1").await);
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{id}:role/OrganizationAccountAccessRole"))
            .role_session_name("drpilot-tests-admin")
            .send()
            .await
            .expect("the management account enters a member account");
        let c = out.credentials().expect("credentials");
        MemberAccount {
            id: id.to_string(),
            credentials: Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "drpilot-tests-admin",
            ),
        }
    }

    /// SDK configuration for `region` in this account.
    pub async fn sdk(&self, region: &str) -> SdkConfig {
        sdk(region)
            .await
            .into_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                self.credentials.clone(),
            ))
            .build()
    }

    /// The role `infra/modules/member` creates: drpilot's hub account may assume it, with
    /// `external_id`. Returns its ARN. (IAM's query API, sent as this account's administrator;
    /// the test bed has no IAM SDK client and needs only this one call.)
    /// A bucket of this account's in `region`; returns a path-style client on it.
    pub async fn create_bucket(&self, region: &str, name: &str) -> aws_sdk_s3::Client {
        crate::account::create_bucket_with(&self.sdk(region).await, region, name).await
    }

    /// A KMS key of this account's in `region` (its own DR key, as a module makes it); its ARN.
    pub async fn kms_key(&self, region: &str, description: &str) -> String {
        aws_sdk_kms::Client::new(&self.sdk(region).await)
            .create_key()
            .description(description)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .arn()
            .unwrap()
            .to_string()
    }

    pub async fn member_role(&self, name: &str, external_id: &str) -> String {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{HUB}:root")},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
            }]
        });
        let form = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            form(name),
            form(&policy.to_string())
        );
        let date = chrono::Utc::now().format("%Y%m%d");
        let answer = reqwest::Client::new()
            .post(format!("{}/", emulator_url()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{date}/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
                    self.credentials.access_key_id()
                ),
            )
            .header(
                "X-Amz-Security-Token",
                self.credentials.session_token().unwrap_or_default(),
            )
            .body(body)
            .send()
            .await
            .expect("IAM answers");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "CreateRole {name} in {}: {status} {text}", self.id);
        format!("arn:aws:iam::{}:role/{name}", self.id)
    }
}
