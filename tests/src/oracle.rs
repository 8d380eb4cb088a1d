//! Reads what the store really holds, bypassing eventsys: the DynamoDB
//! tables through the SDK, or the embedded store's file directly. Scans are
//! fine here: test data is tiny.

use std::path::PathBuf;

use aws_sdk_dynamodb::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    types::AttributeValue,
};
use redb::{ReadableDatabase, ReadableTable};
use serde_json::Value;

pub enum Oracle {
    DynamoDb { client: Client, prefix: String },
    Embedded { path: PathBuf },
}

impl Oracle {
    pub fn dynamodb(endpoint: &str, prefix: &str) -> Self {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
            .build();
        Self::DynamoDb {
            client: Client::from_conf(config),
            prefix: prefix.to_owned(),
        }
    }

    pub fn embedded(path: PathBuf) -> Self {
        Self::Embedded { path }
    }

    /// Records of `table` whose string field `attr` equals `value`.
    pub async fn count(&self, table: &str, attr: &str, value: &str) -> usize {
        self.matching(table, Some((attr, value))).await
    }

    /// Every record of `table`.
    pub async fn all(&self, table: &str) -> usize {
        self.matching(table, None).await
    }

    async fn matching(&self, table: &str, filter: Option<(&str, &str)>) -> usize {
        match self {
            Self::DynamoDb { client, prefix } => {
                let mut count = 0;
                let mut start = None;
                loop {
                    let mut scan = client
                        .scan()
                        .table_name(format!("{prefix}{table}"))
                        .set_exclusive_start_key(start);
                    if let Some((attr, value)) = filter {
                        scan = scan
                            .filter_expression("#a = :v")
                            .expression_attribute_names("#a", attr)
                            .expression_attribute_values(":v", AttributeValue::S(value.to_owned()));
                    }
                    let out = scan.send().await.expect("scanning a table");
                    count += out.items().len();
                    start = out.last_evaluated_key;
                    if start.is_none() {
                        return count;
                    }
                }
            }
            Self::Embedded { path } => {
                let db = redb::ReadOnlyDatabase::open(path).expect("opening the embedded store");
                let txn = db.begin_read().expect("a read transaction");
                let definition = redb::TableDefinition::<&str, &[u8]>::new(table);
                let records = txn.open_table(definition).expect("the table exists");
                records
                    .iter()
                    .expect("reading the table")
                    .filter(|entry| {
                        let Ok((_, value)) = entry else { return false };
                        let record: Value =
                            serde_json::from_slice(value.value()).unwrap_or(Value::Null);
                        filter.is_none_or(|(attr, wanted)| record[attr] == wanted)
                    })
                    .count()
            }
        }
    }
}
