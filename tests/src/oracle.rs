//! Reads the DynamoDB tables directly, bypassing eventsys, to count what
//! was really written. Scans are fine here: test tables are tiny.

use aws_sdk_dynamodb::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    types::AttributeValue,
};

use crate::System;

pub struct Oracle {
    client: Client,
    prefix: String,
}

impl Oracle {
    pub fn new(system: &System) -> Self {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&system.dynamodb)
            .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
            .build();
        Self {
            client: Client::from_conf(config),
            prefix: system.table_prefix.clone(),
        }
    }

    /// Items of `table` whose string attribute `attr` equals `value`.
    pub async fn count(&self, table: &str, attr: &str, value: &str) -> usize {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(format!("{}{table}", self.prefix))
                .filter_expression("#a = :v")
                .expression_attribute_names("#a", attr)
                .expression_attribute_values(":v", AttributeValue::S(value.to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scanning a table");
            count += out.items().len();
            start = out.last_evaluated_key;
            if start.is_none() {
                return count;
            }
        }
    }

    /// Every item of `table`.
    pub async fn all(&self, table: &str) -> usize {
        let out = self
            .client
            .scan()
            .table_name(format!("{}{table}", self.prefix))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .expect("scanning a table");
        usize::try_from(out.count()).unwrap_or(0)
    }
}
