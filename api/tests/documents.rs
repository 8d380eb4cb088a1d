//! The documents committed for integrators are the ones the code makes:
//! each test regenerates one and fails, with the command that refreshes
//! it, when the committed copy has drifted.

use std::path::PathBuf;

use eventsys_api::docs;

#[test]
fn the_committed_openapi_document_is_the_one_the_handlers_describe() {
    matches_committed("openapi.json", docs::openapi_text());
}

#[test]
fn the_committed_postman_collection_is_made_from_the_openapi_document() {
    let openapi: serde_json::Value =
        serde_json::from_str(docs::openapi_text()).expect("the OpenAPI document is JSON");
    let collection = docs::postman::collection(&openapi);
    matches_committed("eventsys.postman_collection.json", &pretty(&collection));
}

#[test]
fn the_committed_asyncapi_document_is_the_one_the_messages_describe() {
    matches_committed("asyncapi.json", &pretty(&docs::asyncapi::document()));
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// Compares `generated` with the committed file; with
/// `EVENTSYS_BLESS_DOCUMENTS=1` it writes the file instead.
fn matches_committed(file: &str, generated: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
    if std::env::var_os("EVENTSYS_BLESS_DOCUMENTS").is_some() {
        std::fs::write(&path, generated).expect("writing the document");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "api/{file} is not what the code describes; refresh it with \
         `EVENTSYS_BLESS_DOCUMENTS=1 cargo test -p eventsys-api --test documents` and commit it"
    );
}
