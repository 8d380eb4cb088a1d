//! A Postman collection (format 2.1) made from the OpenAPI document, so
//! that the two never disagree: one request per operation, grouped by tag,
//! with the bearer token, the base URL and every path parameter as
//! collection variables, and a body built from each request's schema.

use serde_json::{Map, Value, json};

const FORMAT: &str = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json";
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The collection for `openapi`, a serialised OpenAPI document.
pub fn collection(openapi: &Value) -> Value {
    let mut folders: Vec<(String, String, Vec<Value>)> = list(&openapi["tags"])
        .iter()
        .map(|tag| (text(&tag["name"]), text(&tag["description"]), Vec::new()))
        .collect();
    let mut variables = vec![
        variable("baseUrl", "http://127.0.0.1:8080"),
        variable("token", ""),
    ];
    let empty = Map::new();
    for (path, item) in openapi["paths"].as_object().unwrap_or(&empty) {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            for name in path_parameters(path) {
                if !variables.iter().any(|v| v["key"] == name) {
                    variables.push(variable(&name, ""));
                }
            }
            let tag = operation["tags"][0].as_str().unwrap_or("other").to_owned();
            let request = request(openapi, method, path, operation);
            match folders.iter_mut().find(|(name, ..)| *name == tag) {
                Some((.., requests)) => requests.push(request),
                None => folders.push((tag, String::new(), vec![request])),
            }
        }
    }
    json!({
        "info": {
            "name": text(&openapi["info"]["title"]),
            "description": text(&openapi["info"]["description"]),
            "version": text(&openapi["info"]["version"]),
            "schema": FORMAT,
        },
        "auth": bearer(),
        "variable": variables,
        "item": folders
            .into_iter()
            .filter(|(.., requests)| !requests.is_empty())
            .map(|(name, description, requests)| json!({
                "name": name,
                "description": description,
                "item": requests,
            }))
            .collect::<Vec<_>>(),
    })
}

fn request(openapi: &Value, method: &str, path: &str, operation: &Value) -> Value {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|segment| match segment.strip_prefix('{') {
            Some(name) => format!(":{}", name.trim_end_matches('}')),
            None => segment.to_owned(),
        })
        .collect();
    let parameters = list(&operation["parameters"]);
    let of = |place: &'static str| parameters.iter().filter(move |p| p["in"] == place);
    let query: Vec<Value> = of("query")
        .map(|p| {
            json!({
                "key": text(&p["name"]),
                "value": example(openapi, &p["schema"], 0).to_string().trim_matches('"'),
                "description": text(&p["description"]),
                "disabled": p["required"] != true,
            })
        })
        .collect();
    let mut headers: Vec<Value> = of("header")
        .map(|p| {
            // A fresh idempotency key per send is what a client should do.
            let value = if text(&p["name"]).eq_ignore_ascii_case("idempotency-key") {
                "{{$guid}}".to_owned()
            } else {
                example(openapi, &p["schema"], 0)
                    .to_string()
                    .trim_matches('"')
                    .to_owned()
            };
            json!({
                "key": text(&p["name"]),
                "value": value,
                "description": text(&p["description"]),
                "disabled": p["required"] != true,
            })
        })
        .collect();
    let query_text = query
        .iter()
        .filter(|q| q["disabled"] != true)
        .map(|q| format!("{}={}", text(&q["key"]), text(&q["value"])))
        .collect::<Vec<_>>()
        .join("&");
    let mut raw = format!("{{{{baseUrl}}}}/{}", segments.join("/"));
    if !query_text.is_empty() {
        raw = format!("{raw}?{query_text}");
    }
    let description = [text(&operation["summary"]), text(&operation["description"])]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let variables: Vec<Value> = path_parameters(path)
        .into_iter()
        .map(|name| json!({ "key": name, "value": format!("{{{{{name}}}}}") }))
        .collect();
    let mut request = json!({
        "method": method.to_uppercase(),
        "description": description,
        "url": {
            "raw": raw,
            "host": ["{{baseUrl}}"],
            "path": segments,
            "query": query,
            "variable": variables,
        },
    });
    if let Some(schema) = operation["requestBody"]["content"]["application/json"].get("schema") {
        headers.push(json!({ "key": "Content-Type", "value": "application/json" }));
        let body = serde_json::to_string_pretty(&example(openapi, schema, 0)).unwrap_or_default();
        request["body"] = json!({
            "mode": "raw",
            "raw": body,
            "options": { "raw": { "language": "json" } },
        });
    }
    request["header"] = Value::Array(headers);
    if is_anonymous(operation) {
        request["auth"] = json!({ "type": "noauth" });
    }
    let name = match text(&operation["summary"]) {
        summary if summary.is_empty() => format!("{} {path}", method.to_uppercase()),
        summary => summary,
    };
    json!({ "name": name, "request": request })
}

/// An operation that takes no token at all (its only requirement is none).
fn is_anonymous(operation: &Value) -> bool {
    let requirements = list(&operation["security"]);
    !requirements.is_empty()
        && requirements
            .iter()
            .all(|r| r.as_object().is_some_and(Map::is_empty))
}

/// A value that fits `schema`: its example or default if it has one, else
/// the required fields (or all, if none is required) filled in by type.
fn example(openapi: &Value, schema: &Value, depth: usize) -> Value {
    let schema = resolve(openapi, schema);
    for key in ["example", "default", "const"] {
        if let Some(value) = schema.get(key) {
            return value.clone();
        }
    }
    if let Some(first) = schema["examples"].get(0).or(schema["enum"].get(0)) {
        return first.clone();
    }
    if depth > 6 {
        return Value::Null;
    }
    let alternatives: Vec<&Value> = list(&schema["oneOf"])
        .iter()
        .chain(list(&schema["anyOf"]))
        .collect();
    // What to send, rather than null, where a body may also be null.
    if let Some(first) = alternatives
        .iter()
        .find(|a| a["type"] != "null")
        .or(alternatives.first())
    {
        return example(openapi, first, depth + 1);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(fields) = example(openapi, part, depth + 1) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    match type_of(schema) {
        "object" => {
            let required: Vec<&str> = list(&schema["required"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let empty = Map::new();
            let fields = schema["properties"].as_object().unwrap_or(&empty);
            Value::Object(
                fields
                    .iter()
                    .filter(|(name, _)| required.is_empty() || required.contains(&name.as_str()))
                    .map(|(name, field)| (name.clone(), example(openapi, field, depth + 1)))
                    .collect(),
            )
        }
        "array" => json!([example(openapi, &schema["items"], depth + 1)]),
        "integer" => schema.get("minimum").cloned().unwrap_or(json!(1)),
        "number" => schema.get("minimum").cloned().unwrap_or(json!(1.0)),
        "boolean" => json!(true),
        "string" => json!(match schema["format"].as_str() {
            Some("date-time") => "2030-06-01T18:00:00Z",
            Some("uuid") => "00000000-0000-7000-8000-000000000000",
            _ => "text",
        }),
        _ => Value::Null,
    }
}

/// The first type a schema allows other than null.
fn type_of(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(one) => one,
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "",
    }
}

fn resolve<'a>(openapi: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..20 {
        let Some(reference) = schema["$ref"].as_str() else {
            break;
        };
        match reference.strip_prefix('#').and_then(|p| openapi.pointer(p)) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

fn variable(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": value })
}

fn bearer() -> Value {
    json!({ "type": "bearer", "bearer": [{ "key": "token", "value": "{{token}}", "type": "string" }] })
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_built_from_required_fields_and_examples() {
        let openapi = json!({
            "components": { "schemas": { "Order": {
                "type": "object",
                "required": ["quantity", "at"],
                "properties": {
                    "quantity": { "type": "integer", "minimum": 1 },
                    "at": { "type": "string", "format": "date-time" },
                    "note": { "type": ["string", "null"] },
                },
            }}},
        });
        let body = example(
            &openapi,
            &json!({ "$ref": "#/components/schemas/Order" }),
            0,
        );
        assert_eq!(body, json!({ "quantity": 1, "at": "2030-06-01T18:00:00Z" }));
    }

    #[test]
    fn path_parameters_become_variables_and_anonymous_operations_take_no_token() {
        let openapi = json!({
            "info": { "title": "t", "version": "1" },
            "tags": [{ "name": "events", "description": "d" }],
            "paths": { "/v1/events/{event_id}": { "get": {
                "tags": ["events"], "summary": "Read one", "security": [{}],
            }}},
        });
        let collection = collection(&openapi);
        let request = &collection["item"][0]["item"][0]["request"];
        assert_eq!(request["url"]["raw"], "{{baseUrl}}/v1/events/:event_id");
        assert_eq!(request["url"]["variable"][0]["value"], "{{event_id}}");
        assert_eq!(request["auth"]["type"], "noauth");
        assert!(
            collection["variable"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["key"] == "event_id"))
        );
    }
}
